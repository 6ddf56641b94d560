// Admission (see admission.h).
#include "sim/cluster/admission.h"

#include "sim/core/check.h"

namespace kvsim {

Admission::Admission(int64_t max_model_len_tokens, Metrics& metrics)
    : max_model_len_tokens_(max_model_len_tokens), metrics_(metrics) {
  KVSIM_CHECK(max_model_len_tokens_ > 0, "an admission window of no tokens");
}

bool Admission::Admit(RequestSpec& spec) {
  metrics_.CountOffered(spec.arrival);
  if (spec.prompt_tokens >= max_model_len_tokens_) {
    metrics_.CountRejected();
    return false;
  }
  if (spec.prompt_tokens + spec.output_tokens > max_model_len_tokens_) {
    spec.output_tokens = max_model_len_tokens_ - spec.prompt_tokens;
    metrics_.CountTruncated();
  }
  return true;
}

}  // namespace kvsim
