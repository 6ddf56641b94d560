// Tests for the CandidateResult codec: awkward values (rounding, denormals, signed
// zeros, NaNs of either sign and with payloads, infinities, escapes and non-ASCII
// text) come back bit for bit; a real plan's candidates, encoded one per line as in a
// shard file and decoded, give byte-identical plan outputs; malformed input is an
// InputError naming the source and the field's path.
#include "sim/planner/candidate_codec.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "sim/config/plan_config.h"
#include "sim/core/check.h"
#include "sim/core/json_value.h"
#include "tests/testing/exact_json_cases.h"
#include "tests/testing/input_error.h"
#include "tests/testing/temp_dir.h"

namespace kvsim {
namespace {

using ::kvsim::testing::AwkwardSummary;
using ::kvsim::testing::ExpectSameSummary;
using ::kvsim::testing::InputErrorMessage;
using ::kvsim::testing::ReplacedOnce;
using ::kvsim::testing::Same;
using ::kvsim::testing::TempDir;
using ::testing::HasSubstr;

constexpr const char* kQuickstart = KVSIM_SOURCE_DIR "/configs/quickstart.yaml";
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int64_t kMinInt = std::numeric_limits<int64_t>::min();

// A candidate with every field away from its default, most of them awkward, at_max
// the awkward summary. A few values are unique in the text, for the malformed-input
// tests to edit: replicas 12345, search.steps[1] {qps 7.75, meets true}, and
// AwkwardSummary's.
CandidateResult AwkwardCandidate() {
  CandidateResult c;
  c.name =
      "H100/tp2 \"quoted\" \\ tab\t line\nbreak \x01 caf\xC3\xA9 \xE5\x90\x8D \xF0\x9F\x9A\x80";
  c.gpu = "H100-SXM";
  c.scenario = 3;
  c.tensor_parallel = 2;
  c.kv = {KvManagerType::kVAttention, 32, 2 << 20};
  c.scheduler = {SchedulerType::kSarathi, 128, 8192, 512};
  c.feasible = false;
  c.note = "note \xE2\x9C\x93";
  c.timing_caveats = {"", "caveat \xCE\xB1", "\x7F"};
  c.timing_assumptions = {"assumption"};
  c.timing_line = "timing: roofline";
  c.search.status = SearchStatus::kMeetsAtAllTried;
  c.search.max_qps = 0.1 + 0.2;
  c.search.first_fail_qps = std::nextafter(1.0, 2.0);
  c.search.binding = "ttft_s.p99";
  c.search.steps = {{4.0, true, ""}, {7.75, true, "e2e_s.p99"}, {1e16, false, "tbt_s.p50"}};
  c.meets_slo = true;
  c.max_qps_per_replica = 1e-300;
  c.max_qps_per_gpu = std::numeric_limits<double>::denorm_min();
  c.replicas = 12345;
  c.gpus = int64_t{1} << 62;
  c.price_per_gpu_hour = -0.0;
  c.cost_per_hour = kInf;
  c.cost_per_million_output_tokens = std::numeric_limits<double>::quiet_NaN();
  c.pareto = true;
  c.at_max = AwkwardSummary();
  // at_max's awkward values, but for those the error tests edit in at_max alone.
  c.at_target = AwkwardSummary();
  c.at_target.requests_completed = std::numeric_limits<int64_t>::max() - 1;
  c.at_target.tbt_s.p90 = std::bit_cast<double>(uint64_t{0x7ff800000000cafe});
  c.at_target.queue_s.p99 = 0.375;
  c.target_probes = 1;
  return c;
}

std::string Encode(const CandidateResult& c) { return EncodeCandidate(c); }

CandidateResult Decode(const std::string& text, const std::string& where = "shard-3.jsonl") {
  return DecodeCandidate(ParseJson(text, where), where);
}

void ExpectSameSearch(const SearchResult& a, const SearchResult& b) {
  KVSIM_EXPECT_SAME(status);
  KVSIM_EXPECT_SAME(max_qps);
  KVSIM_EXPECT_SAME(first_fail_qps);
  KVSIM_EXPECT_SAME(binding);
  ASSERT_EQ(a.steps.size(), b.steps.size());
  for (size_t i = 0; i < a.steps.size(); ++i) {
    SCOPED_TRACE("steps[" + std::to_string(i) + "]");
    EXPECT_TRUE(Same(a.steps[i].qps, b.steps[i].qps));
    EXPECT_EQ(a.steps[i].meets, b.steps[i].meets);
    EXPECT_EQ(a.steps[i].binding, b.steps[i].binding);
  }
}

void ExpectSameCandidate(const CandidateResult& a, const CandidateResult& b) {
  KVSIM_EXPECT_SAME(name);
  KVSIM_EXPECT_SAME(scenario);
  KVSIM_EXPECT_SAME(gpu);
  KVSIM_EXPECT_SAME(tensor_parallel);
  KVSIM_EXPECT_SAME(kv.type);
  KVSIM_EXPECT_SAME(kv.block_tokens);
  KVSIM_EXPECT_SAME(kv.page_bytes);
  KVSIM_EXPECT_SAME(scheduler.type);
  KVSIM_EXPECT_SAME(scheduler.max_num_seqs);
  KVSIM_EXPECT_SAME(scheduler.max_num_batched_tokens);
  KVSIM_EXPECT_SAME(scheduler.chunk_tokens);
  KVSIM_EXPECT_SAME(feasible);
  KVSIM_EXPECT_SAME(note);
  KVSIM_EXPECT_SAME(timing_caveats);
  KVSIM_EXPECT_SAME(timing_assumptions);
  KVSIM_EXPECT_SAME(timing_line);
  ExpectSameSearch(a.search, b.search);
  KVSIM_EXPECT_SAME(meets_slo);
  KVSIM_EXPECT_SAME(max_qps_per_replica);
  KVSIM_EXPECT_SAME(max_qps_per_gpu);
  KVSIM_EXPECT_SAME(replicas);
  KVSIM_EXPECT_SAME(gpus);
  KVSIM_EXPECT_SAME(price_per_gpu_hour);
  KVSIM_EXPECT_SAME(cost_per_hour);
  KVSIM_EXPECT_SAME(cost_per_million_output_tokens);
  ExpectSameSummary(a.at_max, b.at_max);
  ExpectSameSummary(a.at_target, b.at_target);
  KVSIM_EXPECT_SAME(target_probes);
  KVSIM_EXPECT_SAME(pareto);
}

// Expects every leaf (number, string, boolean; an array as a whole) of `a` to differ
// from the one at the same path of `b`, objects having the same keys.
void ExpectEveryLeafDiffers(const JsonValue& a, const JsonValue& b) {
  SCOPED_TRACE(a.where());
  if (a.IsObject() && b.IsObject()) {
    ASSERT_EQ(a.size(), b.size());
    for (const JsonValue::Member& m : a.AsObject()) ExpectEveryLeafDiffers(m.value, b.At(m.key));
  } else if (a.IsArray() && b.IsArray()) {
    EXPECT_NE(a.size(), b.size());
  } else if (a.type() == b.type()) {
    EXPECT_FALSE(a.IsNumber() && Same(a.AsNumber(), b.AsNumber()));
    EXPECT_FALSE(a.IsString() && a.AsString() == b.AsString());
    EXPECT_FALSE(a.IsBool() && a.AsBool() == b.AsBool());
  }
}

// --- Round trips -------------------------------------------------------------------

TEST(CandidateCodec, TheAwkwardCandidateSetsEveryEncodedFieldAwayFromItsDefault) {
  // Every field then takes part in the round trips below.
  const JsonValue awkward = ParseJson(Encode(AwkwardCandidate()), "awkward");
  const JsonValue defaults = ParseJson(Encode(CandidateResult{}), "defaults");
  ASSERT_EQ(awkward.size(), defaults.size());
  for (const JsonValue::Member& m : awkward.AsObject()) {
    if (m.key != "version") ExpectEveryLeafDiffers(m.value, defaults.At(m.key));
  }
}

TEST(CandidateCodec, EveryFieldOfAnAwkwardCandidateComesBackBitForBit) {
  const CandidateResult c = AwkwardCandidate();
  const std::string text = Encode(c);
  const CandidateResult back = Decode(text);
  ExpectSameCandidate(c, back);
  EXPECT_EQ(Encode(back), text);
  // Spot checks against the original values, not the codec's own round trip.
  EXPECT_EQ(back.at_max.ttft_s.mean, 0.30000000000000004);
  EXPECT_TRUE(std::signbit(back.at_max.ttft_s.p99) && back.at_max.ttft_s.p99 == 0);
  EXPECT_EQ(back.max_qps_per_gpu, 4.9406564584124654e-324);
  EXPECT_TRUE(std::isnan(back.at_max.tbt_s.mean) && std::signbit(back.at_max.tbt_s.mean));
  EXPECT_EQ(std::bit_cast<uint64_t>(back.at_max.tbt_s.p90), 0x7ff800000000beefu);
  EXPECT_EQ(back.cost_per_hour, kInf);
  EXPECT_EQ(back.at_max.tbt_s.p50, -kInf);
  EXPECT_EQ(back.name, AwkwardCandidate().name);
  EXPECT_EQ(back.timing_caveats, (std::vector<std::string>{"", "caveat \xCE\xB1", "\x7F"}));
  ASSERT_EQ(back.search.steps.size(), 3u);
  EXPECT_EQ(back.search.steps[2].binding, "tbt_s.p50");
  EXPECT_EQ(back.kv.type, KvManagerType::kVAttention);
  EXPECT_EQ(back.scheduler.chunk_tokens, 512);
  EXPECT_EQ(back.at_max.requests_total, kMinInt);
}

TEST(CandidateCodec, TheDefaultCandidateWithEmptyStringsAndListsComesBack) {
  const CandidateResult c;
  const CandidateResult back = Decode(Encode(c));
  ExpectSameCandidate(c, back);
  EXPECT_EQ(Encode(back), Encode(c));
}

TEST(CandidateCodec, KeysAreTheMemberNamesAndHoldTheirMembersValues) {
  const CandidateResult c = AwkwardCandidate();
  const JsonValue v = ParseJson(Encode(c), "candidate");
  EXPECT_EQ(v.At("version").AsInt(), kCandidateCodecVersion);
  EXPECT_EQ(v.At("replicas").AsInt(), 12345);
  EXPECT_EQ(v.At("at_max").At("queue_s").At("p99").AsNumber(), 0.625);
  EXPECT_EQ(v.At("at_max").At("queue_s").At("count").AsInt(), 8);
  EXPECT_EQ(v.At("at_max").At("makespan_s").AsNumber(), 1e15);
  EXPECT_EQ(v.At("search").At("first_fail_qps").AsNumber(), std::nextafter(1.0, 2.0));
  EXPECT_EQ(v.At("search").At("steps").Element(1).At("qps").AsNumber(), 7.75);
  EXPECT_EQ(v.At("search").At("status").AsString(), "meets_at_all_tried");
  EXPECT_EQ(v.At("kv").At("type").AsString(), "vattention");
  EXPECT_EQ(v.At("kv").At("page_bytes").AsInt(), 2 << 20);
  EXPECT_EQ(v.At("scheduler").At("type").AsString(), "sarathi");
  EXPECT_EQ(v.At("scheduler").At("max_num_batched_tokens").AsInt(), 8192);
  EXPECT_EQ(v.At("cost_per_million_output_tokens").AsString(), "NaN");
  EXPECT_EQ(v.At("at_max").At("tbt_s").At("mean").AsString(), "-NaN");
  EXPECT_EQ(v.At("at_max").At("tbt_s").At("p90").AsString(), "NaN:0x7ff800000000beef");
  EXPECT_EQ(v.At("at_max").At("tbt_s").At("p50").AsString(), "-Infinity");
}

TEST(CandidateCodec, TheEncodingIsOneLineStartingWithItsVersion) {
  const std::string text = Encode(AwkwardCandidate());
  EXPECT_EQ(text.find('\n'), std::string::npos);
  EXPECT_TRUE(text.starts_with(fmt::format("{{\"version\":{},\"name\":", kCandidateCodecVersion)))
      << text.substr(0, 40);
}

// --- A real plan -------------------------------------------------------------------

// Llama-3-8B on the Azure conversation trace (the quickstart scenario): H100 at tensor
// parallelism 1 and 3 (infeasible: 8 KV heads do not split 3 ways) x static and
// paged KV, 300 requests per probe.
std::string SmallPlanYaml() {
  return std::string("scenario: ") + kQuickstart +
         "\n"
         "set: {workload.arrival.process: trace}\n"
         "slo: {ttft_s: {p99: 2.0}, e2e_s: {p99: 30}}\n"
         "target: {qps: 100}\n"
         "search: {initial_qps: 4, tolerance: 0.05, max_qps: 500, probe_requests: 300}\n"
         "candidates:\n"
         "  gpus: [H100-SXM]\n"
         "  tensor_parallel: [1, 3]\n"
         "  kv_managers: [{type: static}, {type: paged, block_tokens: 16}]\n"
         "  schedulers: [{type: vllm, max_num_seqs: 256}]\n"
         "prices: {H100-SXM: 3.0}\n";
}

TEST(CandidateCodecPlan, DecodedCandidatesGiveByteIdenticalPlanOutputs) {
  TempDir dir;
  const PlanConfig plan = LoadPlan(dir.Write("plan.yaml", SmallPlanYaml()));
  PlanOptions options;
  options.jobs = 2;
  const PlanResult original = RunPlan(plan, options);
  ASSERT_EQ(original.candidates.size(), 4u);
  int meeting = 0, infeasible = 0;
  for (const CandidateResult& c : original.candidates) {
    meeting += c.meets_slo ? 1 : 0;
    infeasible += c.feasible ? 0 : 1;
  }
  ASSERT_GT(meeting, 0);
  ASSERT_GT(infeasible, 0);
  ASSERT_TRUE(original.recommendation.has_value());

  // A shard file: one encoded candidate per line, read back line by line.
  std::string shard;
  for (const CandidateResult& c : original.candidates) shard += EncodeCandidate(c) + "\n";
  const std::string path = dir.Write("shard-0.jsonl", shard);
  PlanResult merged = original;
  merged.candidates.clear();
  std::istringstream lines(shard);
  std::string line;
  for (int line_no = 1; std::getline(lines, line); ++line_no) {
    merged.candidates.push_back(DecodeCandidate(ParseJson(line, path, line_no), path));
  }
  ASSERT_EQ(merged.candidates.size(), original.candidates.size());
  for (size_t i = 0; i < merged.candidates.size(); ++i) {
    SCOPED_TRACE(original.candidates[i].name);
    ExpectSameCandidate(original.candidates[i], merged.candidates[i]);
    EXPECT_EQ(EncodeCandidate(merged.candidates[i]), EncodeCandidate(original.candidates[i]));
  }
  EXPECT_EQ(PlanCsv(merged), PlanCsv(original));
  EXPECT_EQ(PlanJson(merged, plan), PlanJson(original, plan));
  EXPECT_EQ(FormatPlan(merged, plan), FormatPlan(original, plan));
}

// --- Malformed input -----------------------------------------------------------------

// The awkward candidate's text with the one occurrence of `from` replaced by `to`.
std::string Edited(const std::string& from, const std::string& to) {
  return ReplacedOnce(Encode(AwkwardCandidate()), from, to);
}

std::string DecodeError(const std::string& text) {
  return InputErrorMessage([&] { Decode(text); });
}

TEST(CandidateCodecErrors, AMissingNestedFieldIsNamedByItsPath) {
  const std::string message = DecodeError(Edited(",\"p99\":0.625", ""));
  EXPECT_THAT(message, HasSubstr("shard-3.jsonl:1: 'at_max.queue_s.p99': missing field"));
}

TEST(CandidateCodecErrors, AMistypedFieldIsNamedWithWhatWasExpected) {
  EXPECT_THAT(DecodeError(Edited("\"replicas\":12345", "\"replicas\":\"12345\"")),
              HasSubstr("shard-3.jsonl:1: 'replicas': expected an integer, got a string"));
  EXPECT_THAT(DecodeError(Edited("\"qps\":7.75,\"meets\":true", "\"qps\":7.75,\"meets\":1")),
              HasSubstr("'search.steps[1].meets': expected a boolean, got a number"));
  EXPECT_THAT(DecodeError(Edited("\"replicas\":12345", "\"replicas\":12345.5")),
              HasSubstr("'replicas': expected an integer literal"));
  EXPECT_THAT(DecodeError(Edited("\"kv\":{", "\"kv\":[],\"x\":{")),
              HasSubstr("'kv': expected an object, got an array"));
  EXPECT_THAT(
      DecodeError(Edited("\"timing_assumptions\":[\"assumption\"]", "\"timing_assumptions\":[7]")),
      HasSubstr("'timing_assumptions[0]': expected a string, got a number"));
}

TEST(CandidateCodecErrors, AnOutOfRangeIntegerIsNamed) {
  EXPECT_THAT(DecodeError(Edited("9223372036854775807", "9223372036854775808")),
              HasSubstr("'at_max.requests_completed': integer out of the 64-bit range"));
}

TEST(CandidateCodecErrors, AnUnknownEnumNameListsTheValidOnes) {
  EXPECT_THAT(DecodeError(Edited("\"type\":\"vattention\"", "\"type\":\"vattn\"")),
              HasSubstr("'kv.type': unknown value 'vattn'; valid: static, paged, vattention"));
  EXPECT_THAT(DecodeError(Edited("\"meets_at_all_tried\"", "\"found it\"")),
              HasSubstr("'search.status': unknown value 'found it'"));
}

TEST(CandidateCodecErrors, AStringThatIsNoNonFiniteNumberIsRejected) {
  for (const char* bad : {"\"nan\"", "\"NaN:0x0000000000000000\"", "\"NaN:0x7ff800000000beef0\""}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(DecodeError(Edited("\"NaN:0x7ff800000000beef\"", bad)),
                HasSubstr("'at_max.tbt_s.p90': expected a number, \"Infinity\""));
  }
}

TEST(CandidateCodecErrors, AnUnknownFieldIsRejected) {
  EXPECT_THAT(DecodeError(Edited("\"replicas\":12345", "\"replicas\":12345,\"replica\":1")),
              HasSubstr("'replica': unknown field"));
  EXPECT_THAT(DecodeError(Edited(",\"p99\":0.625", ",\"p99\":0.625,\"p999\":1")),
              HasSubstr("'at_max.queue_s.p999': unknown field"));
}

TEST(CandidateCodecErrors, AnotherOrAMissingVersionIsRejected) {
  const std::string current = fmt::format("{{\"version\":{},", kCandidateCodecVersion);
  const int64_t other = kCandidateCodecVersion + 1;
  EXPECT_THAT(
      DecodeError(Edited(current, fmt::format("{{\"version\":{},", other))),
      HasSubstr(fmt::format("'version': encoding version {}; this kvsim reads version {} only",
                            other, kCandidateCodecVersion)));
  EXPECT_THAT(DecodeError(Edited(current, "{")),
              HasSubstr("shard-3.jsonl:1: 'version': missing field"));
  EXPECT_THAT(
      DecodeError(Edited(current, fmt::format("{{\"version\":\"{}\",", kCandidateCodecVersion))),
      HasSubstr("'version': expected an integer, got a string"));
}

TEST(CandidateCodecErrors, ANonObjectOrATruncatedLineIsAnInputError) {
  EXPECT_THAT(
      DecodeError("[1, 2]"),
      HasSubstr("shard-3.jsonl:1: expected an object (an encoded candidate), got an array"));
  const std::string text = Encode(AwkwardCandidate());
  EXPECT_THAT(DecodeError(text.substr(0, text.size() / 2)), HasSubstr("shard-3.jsonl:1:"));
}

}  // namespace
}  // namespace kvsim
