// Summary's exact JSON encoding (summary_codec.h).
#include "sim/metrics/summary_codec.h"

namespace kvsim {

std::string EncodeSummary(const Summary& s) { return exact_json::Encode(s, kSummaryCodecVersion); }

Summary DecodeSummary(const JsonValue& v, const std::string& where) {
  return exact_json::Decode<Summary>(v, where, kSummaryCodecVersion, "an encoded summary");
}

}  // namespace kvsim
