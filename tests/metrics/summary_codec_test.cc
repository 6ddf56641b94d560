// Tests for the exact JSON encodings (exact_json.h) and the Summary codec: awkward
// values (rounding, denormals, signed zeros, NaNs of either sign and with payloads,
// infinities, escapes and bytes that are not UTF-8) come back bit for bit; enums and
// vectors of structs round-trip; malformed input is an InputError naming the source
// and the field's path.
#include "sim/metrics/summary_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "sim/core/check.h"
#include "sim/core/enum_table.h"
#include "sim/core/json_value.h"
#include "tests/testing/input_error.h"

namespace kvsim {
namespace {

using ::kvsim::testing::InputErrorMessage;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr double kInf = std::numeric_limits<double>::infinity();

double FromBits(uint64_t bits) { return std::bit_cast<double>(bits); }
uint64_t Bits(double v) { return std::bit_cast<uint64_t>(v); }

// A summary with every field away from its default, most of them awkward. Some values
// are unique in the text, for the malformed-input tests to edit: requests_rejected
// 12345, queue_s.p99 0.625.
Summary AwkwardSummary() {
  Summary s;
  s.kv_manager = "vattention \"quoted\" \\ tab\t line\nbreak \x01 caf\xC3\xA9 \xFF";
  s.requests_total = std::numeric_limits<int64_t>::min();
  s.requests_completed = std::numeric_limits<int64_t>::max();
  s.requests_rejected = 12345;
  s.requests_truncated = 4;
  s.makespan_s = 1e15;  // written as an integer literal
  s.requests_per_s = 1.0 / 3;
  s.output_tokens_per_s = std::numeric_limits<double>::max();
  s.total_tokens_per_s = std::numeric_limits<double>::min();
  s.ttft_s = {0.1 + 0.2, 1e-300, std::numeric_limits<double>::denorm_min(), -0.0, 5};
  s.tbt_s = {FromBits(0xfff8000000000000), -kInf, FromBits(0x7ff800000000beef),
             FromBits(0xfffc000000000001), 1};
  s.tpot_s = {2.5e-7, -1.5e-7, 123456789.125, 9007199254740993.0, 6};
  s.e2e_s = {1e22, 1e23, kInf, -4.9406564584124654e-324, 7};
  s.queue_s = {0.001, 0.002, 0.003, 0.625, 8};
  s.preemptions = 9;
  s.prompt_tokens = 10;
  s.prefix_hit_tokens = 11;
  s.prefix_hit_requests = 12;
  s.recomputed_tokens = 13;
  s.prefix_caching = true;
  s.kv_bytes_per_token = 131072;
  s.kv_capacity_bytes = 68719476736;
  s.peak_allocated_bytes = 14;
  s.mean_allocated_bytes = 2.2250738585072009e-308;  // largest denormal
  s.mean_live_bytes = 0.1;
  s.mean_cached_bytes = std::numeric_limits<double>::quiet_NaN();
  s.fragmentation = 1.0 - 0.9;
  s.max_running = 15;
  s.mean_running = 3.14159;
  s.iterations = 16;
  s.is_vattention = true;
  s.page_bytes = 65536;
  s.map_calls = 17;
  s.unmap_calls = 18;
  s.exposed_overhead_s = 1e-9;
  s.hidden_overhead_s = 3e-9;
  s.wall_s = 0.123456789012345678;
  s.events = 19;
  s.percentiles_exact = false;
  s.offered_qps = 12.000000000000002;
  s.queue_first_quarter_s = 0.5;
  s.queue_last_quarter_s = 4.25;
  s.overloaded = true;
  s.skipped_rows = "2 failed rows skipped";
  return s;
}

Summary Decode(const std::string& text, const std::string& where = "rank 2") {
  return DecodeSummary(ParseJson(text, where), where);
}

// `text` with its only occurrence of `from` replaced by `to`.
std::string Edited(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  EXPECT_EQ(text.find(from, at + 1), std::string::npos) << from << " occurs twice";
  return at == std::string::npos ? text : text.replace(at, from.size(), to);
}

// --- Summary round trips ---------------------------------------------------------------

TEST(SummaryCodec, GivesBackEveryFieldBitForBit) {
  const Summary a = AwkwardSummary();
  const std::string text = EncodeSummary(a);
  const Summary b = Decode(text);
  // The encoding writes every field, doubles by their bits: equal texts, equal fields.
  EXPECT_EQ(EncodeSummary(b), text);
  EXPECT_EQ(b.kv_manager, a.kv_manager);
  EXPECT_EQ(b.requests_total, a.requests_total);
  EXPECT_EQ(b.requests_completed, a.requests_completed);
  EXPECT_EQ(Bits(b.ttft_s.p90), Bits(a.ttft_s.p90));  // the smallest denormal
  EXPECT_EQ(Bits(b.ttft_s.p99), Bits(-0.0));
  EXPECT_EQ(Bits(b.tbt_s.mean), 0xfff8000000000000);  // the negative quiet NaN
  EXPECT_EQ(Bits(b.tbt_s.p90), 0x7ff800000000beef);   // a NaN with a payload
  EXPECT_EQ(Bits(b.tbt_s.p99), 0xfffc000000000001);
  EXPECT_EQ(b.tbt_s.p50, -kInf);
  EXPECT_EQ(Bits(b.tpot_s.p99), Bits(9007199254740993.0));
  EXPECT_EQ(Bits(b.wall_s), Bits(a.wall_s));
  EXPECT_TRUE(std::isnan(b.mean_cached_bytes));
  EXPECT_EQ(b.queue_s.count, 8);
  EXPECT_FALSE(b.percentiles_exact);
  EXPECT_TRUE(b.overloaded);
  EXPECT_EQ(b.skipped_rows, a.skipped_rows);
}

TEST(SummaryCodec, DefaultSummaryRoundTrips) {
  const std::string text = EncodeSummary(Summary{});
  EXPECT_EQ(EncodeSummary(Decode(text)), text);
}

TEST(SummaryCodec, WritesOneLineStartingWithTheVersion) {
  const std::string text = EncodeSummary(AwkwardSummary());
  EXPECT_THAT(text, StartsWith("{\"version\":1,\"kv_manager\":"));
  EXPECT_EQ(text.find('\n'), std::string::npos);
  EXPECT_EQ(text.back(), '}');
}

// --- Malformed input -------------------------------------------------------------------

TEST(SummaryCodec, RejectsAnotherVersion) {
  const std::string text = Edited(EncodeSummary(Summary{}), "\"version\":1", "\"version\":2");
  EXPECT_THAT(InputErrorMessage([&] { Decode(text); }),
              HasSubstr("rank 2:1: 'version': encoding version 2; this kvsim reads version 1"));
}

TEST(SummaryCodec, RejectsAMissingFieldNamingItsPath) {
  const std::string text = Edited(EncodeSummary(AwkwardSummary()), "\"p99\":0.625,", "");
  EXPECT_THAT(InputErrorMessage([&] { Decode(text); }), HasSubstr("'queue_s.p99': missing field"));
}

TEST(SummaryCodec, RejectsAnUnknownField) {
  const std::string text =
      Edited(EncodeSummary(AwkwardSummary()), "\"p99\":0.625,", "\"p99\":0.625,\"p999\":1,");
  EXPECT_THAT(InputErrorMessage([&] { Decode(text); }), HasSubstr("'queue_s.p999': unknown field"));
}

TEST(SummaryCodec, RejectsAMistypedOrFractionalInteger) {
  const std::string text = EncodeSummary(AwkwardSummary());
  EXPECT_THAT(
      InputErrorMessage([&] {
        Decode(Edited(text, "\"requests_rejected\":12345", "\"requests_rejected\":\"12345\""));
      }),
      HasSubstr("'requests_rejected': expected an integer, got a string"));
  EXPECT_THAT(
      InputErrorMessage([&] {
        Decode(Edited(text, "\"requests_rejected\":12345", "\"requests_rejected\":12345.5"));
      }),
      HasSubstr("'requests_rejected': expected an integer literal"));
}

TEST(SummaryCodec, RejectsAStringThatIsNoDouble) {
  const std::string text =
      Edited(EncodeSummary(AwkwardSummary()), "\"p99\":0.625", "\"p99\":\"Inf\"");
  EXPECT_THAT(InputErrorMessage([&] { Decode(text); }),
              HasSubstr("'queue_s.p99': expected a number, \"Infinity\""));
}

TEST(SummaryCodec, RejectsSomethingOtherThanAnObject) {
  EXPECT_THAT(InputErrorMessage([&] { Decode("[1, 2]"); }),
              HasSubstr("rank 2:1: expected an object (an encoded summary), got an array"));
}

// --- The machinery on enums and vectors --------------------------------------------------

enum class Shade { kLight, kDark };
inline constexpr auto kShades =
    MakeEnumTable<Shade>({{"light", Shade::kLight}, {"dark", Shade::kDark}});
// Found by argument-dependent lookup, as exact_json.h asks.
constexpr const auto& TableOf(Shade) { return kShades; }

struct Swatch {
  std::vector<Shade> shades;
  std::vector<Percentiles> spans;
  std::string name;
};

}  // namespace
}  // namespace kvsim

namespace kvsim::exact_json {
template <>
struct FieldList<Swatch> {
  using S = Swatch;
  static constexpr auto kFields =
      std::make_tuple(KVSIM_EXACT_FIELD(shades), KVSIM_EXACT_FIELD(spans), KVSIM_EXACT_FIELD(name));
};
static_assert(ListsEveryMember<Swatch>());
}  // namespace kvsim::exact_json

namespace kvsim {
namespace {

TEST(ExactJson, EnumsAndVectorsOfStructsRoundTrip) {
  Swatch a;
  a.shades = {Shade::kDark, Shade::kLight, Shade::kDark};
  a.spans = {{0.5, 1, 2, 3, 4}, {-0.0, kInf, 0.1, 0.2, 5}};
  a.name = "swatch";
  const std::string text = exact_json::Encode(a, 7);
  EXPECT_THAT(text, HasSubstr("\"shades\":[\"dark\",\"light\",\"dark\"]"));
  const Swatch b = exact_json::Decode<Swatch>(ParseJson(text, "t"), "t", 7, "a swatch");
  EXPECT_EQ(b.shades, a.shades);
  ASSERT_EQ(b.spans.size(), 2u);
  EXPECT_EQ(Bits(b.spans[1].mean), Bits(-0.0));
  EXPECT_EQ(b.spans[1].p50, kInf);
  EXPECT_EQ(exact_json::Encode(b, 7), text);
}

TEST(ExactJson, RejectsAnUnknownEnumNameListingTheValidOnes) {
  const std::string text = "{\"version\":7,\"shades\":[\"dim\"],\"spans\":[],\"name\":\"\"}";
  EXPECT_THAT(InputErrorMessage(
                  [&] { exact_json::Decode<Swatch>(ParseJson(text, "t"), "t", 7, "a swatch"); }),
              HasSubstr("'shades[0]': unknown value 'dim'; valid: light, dark"));
}

TEST(ExactJson, CountsTheMembersOfAnAggregate) {
  static_assert(exact_json::MemberCount<Swatch>() == 3);
  static_assert(exact_json::MemberCount<Percentiles>() == 5);
  EXPECT_TRUE(exact_json::ListsEveryMember<Summary>());
}

}  // namespace
}  // namespace kvsim
