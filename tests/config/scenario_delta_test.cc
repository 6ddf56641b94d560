// ApplyDelta: a typed change to a decoded scenario gives the config that decoding
// the same change written as keys gives, resolves what depends on the changed keys
// again, and refuses what decoding refuses.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "sim/config/calibration.h"
#include "sim/config/scenario_config.h"
#include "sim/core/check.h"
#include "tests/testing/input_error.h"
#include "tests/testing/temp_dir.h"

namespace kvsim {
namespace {

using kvsim::testing::InputErrorMessage;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr const char* kModelsDir = KVSIM_SOURCE_DIR "/models";
constexpr const char* kOrigin = "/experiments/scenario.yaml";
constexpr const char* kBase =
    "model: Llama-3-8B\n"
    "gpu: H100-SXM\n"
    "workload:\n"
    "  trace: traces/t.csv\n"
    "  arrival: {process: poisson, rate_qps: 2}\n"
    "  max_requests: 100\n";

ScenarioConfig Decode(const ConfigTree& tree) { return DecodeScenario(tree, kModelsDir); }

// Every value a delta can reach, and those derived from them, exactly.
std::string Facts(const ScenarioConfig& c) {
  const KvCacheConfig& k = c.kv_cache;
  const WorkloadConfig& w = c.workload;
  return fmt::format(
      "gpu {} tp {} replicas {} router {} | kv {} block {} page {} backend {} prefix {}/{} | "
      "scheduler {} seqs {} batched {} chunk {} | arrival {} rate {} cv {} max {} | csv {} {} | "
      "gemm {} gap {} keys {}",
      c.gpu_path, c.deployment.tensor_parallel, c.deployment.replicas,
      kRouterTypes.Name(c.deployment.router), kKvManagerTypes.Name(k.type), k.paged.block_tokens,
      k.vattention.page_bytes, kVmmBackends.Name(k.vattention.backend), k.paged.prefix_caching,
      k.vattention.prefix_caching, kSchedulerTypes.Name(c.scheduler.type), c.scheduler.max_num_seqs,
      c.scheduler.max_num_batched_tokens, c.scheduler.chunk_tokens,
      kArrivalProcesses.Name(w.arrival), w.rate_qps, w.cv, w.max_requests, c.output.requests_csv,
      c.output.timeseries_csv, c.timing.roofline.gemm_efficiency, c.timing.engine.kernel_gap_s,
      fmt::join(c.timing.calibration.keys, ","));
}

// The same change both ways: typed on the decoded base, and as keys on its text.
void ExpectSameAsWrittenKeys(const ConfigTree& base, const ScenarioDelta& delta) {
  ConfigTree written = base;
  for (const auto& [key, value] : delta.AsOverrides()) written.Set(key, value);
  EXPECT_EQ(Facts(ApplyDelta(Decode(base), delta)), Facts(Decode(written)));
}

ScenarioDelta PlanCandidate() {
  ScenarioDelta d;
  d.gpu = "A100-80GB";
  d.tensor_parallel = 2;
  d.replicas = 3;
  d.router = RouterType::kLeastOutstanding;
  d.kv_type = KvManagerType::kVAttention;
  d.page_bytes = int64_t{64} << 10;
  d.scheduler = SchedulerType::kSarathi;
  d.max_num_seqs = 64;
  d.chunk_tokens = 1024;
  d.rate_qps = 0.1 + 0.2;  // no shorter text reads back as this double
  d.max_requests = 777;
  d.requests_csv = false;
  d.timeseries_csv = false;
  return d;
}

TEST(ScenarioDelta, APlanCandidateGivesTheConfigItsKeysWouldDecodeTo) {
  ExpectSameAsWrittenKeys(ConfigTree::Parse(kBase, kOrigin), PlanCandidate());
}

TEST(ScenarioDelta, EveryDefaultCompareEntryGivesTheConfigItsKeysWouldDecodeTo) {
  // A base with a prefix cache and the stock backend named: the static entry turns
  // the cache off, the vAttention entries pick their own backend.
  const ConfigTree base = ConfigTree::Parse(
      std::string(kBase) + "kv_cache: {prefix_caching: true, vmm: {backend: stock}}\n", kOrigin);
  for (const CompareEntry& e : DefaultCompareEntries()) {
    SCOPED_TRACE(e.label);
    ExpectSameAsWrittenKeys(base, e.delta);
  }
}

TEST(ScenarioDelta, AnEmptyDeltaChangesNothing) {
  const ScenarioConfig base = Decode(ConfigTree::Parse(kBase, kOrigin));
  EXPECT_EQ(Facts(ApplyDelta(base, {})), Facts(base));
}

TEST(ScenarioDelta, APageSizeChangeResolvesAnAutoBackendAgain) {
  const ScenarioConfig base = Decode(ConfigTree::Parse(
      std::string(kBase) + "kv_cache: {type: vattention, page_bytes: 2MiB}\n", kOrigin));
  EXPECT_EQ(base.kv_cache.vattention.backend, VmmBackend::kStock);
  ScenarioDelta small;
  small.page_bytes = int64_t{64} << 10;
  EXPECT_EQ(ApplyDelta(base, small).kv_cache.vattention.backend, VmmBackend::kUvm);
}

TEST(ScenarioDelta, ChangesDecodingWouldRefuseAreInputErrorsNamingTheKey) {
  const ScenarioConfig base = Decode(ConfigTree::Parse(
      std::string(kBase) + "kv_cache: {prefix_caching: true, vmm: {backend: stock}}\n", kOrigin));
  ScenarioDelta to_static;
  to_static.kv_type = KvManagerType::kStatic;
  EXPECT_THAT(InputErrorMessage([&] { ApplyDelta(base, to_static); }),
              StartsWith("kv_cache.prefix_caching: static reservation shares nothing"));

  ScenarioDelta small_stock;
  small_stock.kv_type = KvManagerType::kVAttention;
  small_stock.page_bytes = int64_t{64} << 10;
  EXPECT_THAT(InputErrorMessage([&] { ApplyDelta(base, small_stock); }),
              StartsWith("kv_cache.page_bytes: 64 KiB pages need the uvm backend"));

  ScenarioDelta odd_page;
  odd_page.page_bytes = 12345;
  EXPECT_THAT(InputErrorMessage([&] { ApplyDelta(base, odd_page); }),
              StartsWith("kv_cache.page_bytes: 12345 bytes is not a vAttention page size"));

  ScenarioDelta no_card;
  no_card.gpu = "H900";
  EXPECT_THAT(InputErrorMessage([&] { ApplyDelta(base, no_card); }),
              AllOf(StartsWith("gpu: unknown gpu card 'H900' in "),
                    HasSubstr("/models/gpu; available: "), HasSubstr("H100-SXM")));

  ScenarioDelta no_rate;
  no_rate.rate_qps = 0;  // poisson needs a rate
  EXPECT_THAT(InputErrorMessage([&] { ApplyDelta(base, no_rate); }),
              HasSubstr("workload.arrival.rate_qps"));
}

// A calibration with a shared term and per-GPU terms for two cards, in `dir`.
std::string WriteCalibration(const testing::TempDir& dir) {
  Calibration c;
  c.timing_type = "roofline";
  c.engine_preset = "vllm_v1";
  c.terms = {{"timing.engine.per_seq_s", 2e-5}};
  c.gpu_terms = {
      {"H100-SXM", {{"timing.roofline.gemm_efficiency", 0.61}}},
      {"A100-80GB",
       {{"timing.roofline.gemm_efficiency", 0.52}, {"timing.engine.kernel_gap_s", 3e-6}}}};
  return dir.Write("cal.yaml", CalibrationYaml(c));
}

TEST(ScenarioDelta, AnotherGpuTakesThatGpusCalibrationTermsAndDropsTheFirsts) {
  const testing::TempDir dir;
  const std::string cal = WriteCalibration(dir);
  const ConfigTree base_tree =
      ConfigTree::Parse(std::string(kBase) + "timing: {calibration: " + cal + "}\n", kOrigin);
  const ScenarioConfig base = Decode(base_tree);
  EXPECT_DOUBLE_EQ(base.timing.roofline.gemm_efficiency, 0.61);

  ScenarioDelta a100;
  a100.gpu = "A100-80GB";
  const ScenarioConfig on_a100 = ApplyDelta(base, a100);
  EXPECT_DOUBLE_EQ(on_a100.timing.roofline.gemm_efficiency, 0.52);
  EXPECT_DOUBLE_EQ(on_a100.timing.engine.kernel_gap_s, 3e-6);
  EXPECT_DOUBLE_EQ(on_a100.timing.engine.per_seq_s, 2e-5);

  // A card the calibration has no terms for keeps the scenario's own values.
  ScenarioDelta l40s;
  l40s.gpu = "L40S";
  const ScenarioConfig on_l40s = ApplyDelta(on_a100, l40s);
  EXPECT_DOUBLE_EQ(on_l40s.timing.roofline.gemm_efficiency,
                   base.sources.uncalibrated_timing->roofline.gemm_efficiency);
  EXPECT_DOUBLE_EQ(on_l40s.timing.engine.kernel_gap_s,
                   base.sources.uncalibrated_timing->engine.kernel_gap_s);
  EXPECT_EQ(on_l40s.timing.calibration.keys, std::vector<std::string>{"timing.engine.per_seq_s"});

  // And each agrees with decoding the scenario written for that card.
  ExpectSameAsWrittenKeys(base_tree, a100);
  ExpectSameAsWrittenKeys(base_tree, l40s);
}

TEST(ScenarioDelta, AnOverrideOfACalibratedTermStillWinsOnAnotherGpu) {
  const testing::TempDir dir;
  ConfigTree tree = ConfigTree::Parse(
      std::string(kBase) + "timing: {calibration: " + WriteCalibration(dir) + "}\n", kOrigin);
  tree.Set("timing.roofline.gemm_efficiency", "0.33");
  ScenarioDelta a100;
  a100.gpu = "A100-80GB";
  EXPECT_DOUBLE_EQ(ApplyDelta(Decode(tree), a100).timing.roofline.gemm_efficiency, 0.33);
}

TEST(ScenarioDelta, EveryFittableTermNamesATimingField) {
  TimingConfig t;
  for (const FittableTerm& term : FittableTerms()) {
    EXPECT_NE(TimingTermField(t, term.key), nullptr) << term.key;
  }
  EXPECT_EQ(TimingTermField(t, "timing.engine.cuda_graphs"), nullptr);
  *TimingTermField(t, "timing.allreduce.latency_s") = 7e-6;
  EXPECT_DOUBLE_EQ(t.allreduce.latency_s, 7e-6);
}

TEST(ScenarioDelta, ARateOnARecordedArrivalProcessKeepsItsShape) {
  const testing::TempDir dir;
  dir.Write(
      "gamma.json",
      R"({"request_rate": 3, "burstiness": 0.25, "input_lens": [5, 6], "output_lens": [1, 2]})");
  const ConfigTree tree = ConfigTree::Parse(
      "model: Llama-3-8B\ngpu: H100-SXM\nworkload:\n  trace: gamma.json\n", dir.PathOf("s.yaml"));
  ScenarioDelta faster;
  faster.rate_qps = 12;
  const ScenarioConfig c = ApplyDelta(Decode(tree), faster);
  EXPECT_EQ(c.workload.arrival, ArrivalProcess::kGamma);
  EXPECT_DOUBLE_EQ(c.workload.rate_qps, 12);
  EXPECT_DOUBLE_EQ(c.workload.cv, 2.0);  // 1 / sqrt(0.25)
  ExpectSameAsWrittenKeys(tree, faster);
}

}  // namespace
}  // namespace kvsim
