// Tests for the exact JSON encodings (exact_json.h) and the Summary codec: awkward
// values (rounding, denormals, signed zeros, NaNs of either sign and with payloads,
// infinities, escapes and bytes that are not UTF-8) come back bit for bit; enums and
// vectors of structs round-trip; malformed input is an InputError naming the source
// and the field's path.
#include "sim/metrics/summary_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "sim/core/check.h"
#include "sim/core/enum_table.h"
#include "sim/core/json_value.h"
#include "tests/testing/exact_json_cases.h"
#include "tests/testing/input_error.h"

namespace kvsim {
namespace {

using ::kvsim::testing::AwkwardSummary;
using ::kvsim::testing::Bits;
using ::kvsim::testing::ExpectSameSummary;
using ::kvsim::testing::InputErrorMessage;
using ::kvsim::testing::ReplacedOnce;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr double kInf = std::numeric_limits<double>::infinity();

Summary Decode(const std::string& text, const std::string& where = "rank 2") {
  return DecodeSummary(ParseJson(text, where), where);
}

// --- Summary round trips ---------------------------------------------------------------

TEST(SummaryCodec, GivesBackEveryFieldBitForBit) {
  const Summary a = AwkwardSummary();
  const std::string text = EncodeSummary(a);
  const Summary b = Decode(text);
  ExpectSameSummary(a, b);
  EXPECT_EQ(EncodeSummary(b), text);
  // Spot checks against the original values, not the codec's own round trip.
  EXPECT_EQ(b.ttft_s.p90, 4.9406564584124654e-324);  // the smallest denormal
  EXPECT_EQ(Bits(b.ttft_s.p99), Bits(-0.0));
  EXPECT_EQ(Bits(b.tbt_s.mean), 0xfff8000000000000);  // the negative quiet NaN
  EXPECT_EQ(Bits(b.tbt_s.p90), 0x7ff800000000beef);   // a NaN with a payload
  EXPECT_EQ(Bits(b.tbt_s.p99), 0xfffc000000000001);
  EXPECT_EQ(b.tbt_s.p50, -kInf);
  EXPECT_EQ(b.tpot_s.p99, 9007199254740993.0);
  EXPECT_TRUE(std::isnan(b.mean_cached_bytes));
  EXPECT_EQ(b.queue_s.count, 8);
  EXPECT_EQ(b.requests_completed, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(b.skipped_rows, "2 failed rows skipped");
}

TEST(SummaryCodec, DefaultSummaryRoundTrips) {
  const std::string text = EncodeSummary(Summary{});
  const Summary b = Decode(text);
  ExpectSameSummary(Summary{}, b);
  EXPECT_EQ(EncodeSummary(b), text);
}

TEST(SummaryCodec, WritesOneLineStartingWithTheVersion) {
  const std::string text = EncodeSummary(AwkwardSummary());
  EXPECT_THAT(text, StartsWith("{\"version\":2,\"kv_manager\":"));
  EXPECT_EQ(text.find('\n'), std::string::npos);
  EXPECT_EQ(text.back(), '}');
}

// --- Malformed input -------------------------------------------------------------------

TEST(SummaryCodec, RejectsAnotherVersion) {
  const std::string text = ReplacedOnce(EncodeSummary(Summary{}), "\"version\":2", "\"version\":3");
  EXPECT_THAT(InputErrorMessage([&] { Decode(text); }),
              HasSubstr("rank 2:1: 'version': encoding version 3; this kvsim reads version 2"));
}

TEST(SummaryCodec, RejectsAMissingFieldNamingItsPath) {
  const std::string text = ReplacedOnce(EncodeSummary(AwkwardSummary()), "\"p99\":0.625,", "");
  EXPECT_THAT(InputErrorMessage([&] { Decode(text); }), HasSubstr("'queue_s.p99': missing field"));
}

TEST(SummaryCodec, RejectsAnUnknownField) {
  const std::string text =
      ReplacedOnce(EncodeSummary(AwkwardSummary()), "\"p99\":0.625,", "\"p99\":0.625,\"p999\":1,");
  EXPECT_THAT(InputErrorMessage([&] { Decode(text); }), HasSubstr("'queue_s.p999': unknown field"));
}

TEST(SummaryCodec, RejectsAMistypedOrFractionalInteger) {
  const std::string text = EncodeSummary(AwkwardSummary());
  EXPECT_THAT(InputErrorMessage([&] {
                Decode(ReplacedOnce(text, "\"requests_rejected\":12345",
                                    "\"requests_rejected\":\"12345\""));
              }),
              HasSubstr("'requests_rejected': expected an integer, got a string"));
  EXPECT_THAT(
      InputErrorMessage([&] {
        Decode(ReplacedOnce(text, "\"requests_rejected\":12345", "\"requests_rejected\":12345.5"));
      }),
      HasSubstr("'requests_rejected': expected an integer literal"));
}

TEST(SummaryCodec, RejectsAStringThatIsNoDouble) {
  const std::string text =
      ReplacedOnce(EncodeSummary(AwkwardSummary()), "\"p99\":0.625", "\"p99\":\"Inf\"");
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
