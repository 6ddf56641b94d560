// ApplyDelta: a typed change to a decoded scenario gives the config that decoding
// the same change written as keys gives, resolves what depends on the changed keys
// again, and refuses what decoding refuses.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
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
      "scheduler {} seqs {} batched {} chunk {} | trace {} format {} arrival {} rate {} cv {} "
      "lengths {} fixed {}/{} max {} prefix {} turns {} seed {} | csv {} {} | gemm {} gap {} "
      "keys {}",
      c.gpu_path, c.deployment.tensor_parallel, c.deployment.replicas,
      kRouterTypes.Name(c.deployment.router), kKvManagerTypes.Name(k.type), k.paged.block_tokens,
      k.vattention.page_bytes, kVmmBackends.Name(k.vattention.backend), k.paged.prefix_caching,
      k.vattention.prefix_caching, kSchedulerTypes.Name(c.scheduler.type), c.scheduler.max_num_seqs,
      c.scheduler.max_num_batched_tokens, c.scheduler.chunk_tokens, w.trace_path,
      TraceFormatName(w.trace_format), kArrivalProcesses.Name(w.arrival), w.rate_qps, w.cv,
      kLengthSources.Name(w.lengths), w.fixed_prompt_tokens, w.fixed_output_tokens, w.max_requests,
      w.shared_prefix.tokens, w.sessions.turns, w.seed, c.output.requests_csv,
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
  for (const CompareEntry& e : DefaultCompareEntries(Decode(base))) {
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

// A benchmark_serving result recording gamma arrivals (rate 3, shape 0.25: cv 2) in
// `dir`, as gamma.json.
std::string WriteGammaResult(const testing::TempDir& dir) {
  return dir.Write(
      "gamma.json",
      R"({"request_rate": 3, "burstiness": 0.25, "input_lens": [5, 6], "output_lens": [1, 2]})");
}

TEST(ScenarioDelta, ARateOnARecordedArrivalProcessKeepsItsShape) {
  const testing::TempDir dir;
  WriteGammaResult(dir);
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

// The workload `kvsim fit` replays a measurement with: the whole workload replaced.
ScenarioDelta Replay(const std::string& trace, ArrivalProcess arrival) {
  ScenarioDelta d;
  d.replace_workload = true;
  d.trace = trace;
  d.arrival = arrival;
  d.lengths = LengthSource::kTrace;
  return d;
}

TEST(ScenarioDelta, AReplacedWorkloadGivesTheConfigItsKeysWouldDecodeTo) {
  // The base's sharing, sessions, lengths and request cap all go with its workload.
  const ConfigTree base = ConfigTree::Parse(
      "seed: 9\nmodel: Llama-3-8B\ngpu: H100-SXM\nworkload:\n"
      "  trace: traces/t.csv\n  format: splitwise\n  max_requests: 100\n"
      "  arrival: {process: poisson, rate_qps: 2}\n"
      "  lengths: {source: fixed, prompt_tokens: 10, output_tokens: 5}\n"
      "  shared_prefix: {tokens: 64}\n  sessions: {turns: 3, think_time_s: 1}\n",
      kOrigin);
  ScenarioDelta gamma = Replay("/runs/fit/workloads/a.csv", ArrivalProcess::kGamma);
  gamma.rate_qps = 4;
  gamma.cv = 1 / std::sqrt(0.5);  // as a fit derives it from burstiness 0.5
  ExpectSameAsWrittenKeys(base, gamma);

  const WorkloadConfig w = ApplyDelta(Decode(base), gamma).workload;
  EXPECT_EQ(w.trace_path, "/runs/fit/workloads/a.csv");
  EXPECT_EQ(w.trace_format, TraceFormat::kAuto);
  EXPECT_EQ(w.lengths, LengthSource::kTrace);
  EXPECT_EQ(w.max_requests, 0);
  EXPECT_EQ(w.shared_prefix.tokens, 0);
  EXPECT_EQ(w.sessions.turns, 0);
  EXPECT_EQ(w.seed, 9u);  // the scenario's seed, not a workload key

  ExpectSameAsWrittenKeys(base, Replay("relative/a.csv", ArrivalProcess::kTrace));
}

TEST(ScenarioDelta, AScenarioDecodedWithoutItsWorkloadTakesTheReplacedOne) {
  // A fit scenario need not say a workload; the one it says is not read.
  for (const char* workload : {"", "workload: {arrival: {process: poisson}, typo: 1}\n"}) {
    SCOPED_TRACE(workload);
    const ConfigTree base =
        ConfigTree::Parse(std::string("model: Llama-3-8B\ngpu: H100-SXM\n") + workload, kOrigin);
    const ScenarioDelta replay = Replay("/runs/a.csv", ArrivalProcess::kTrace);
    ConfigTree written = base;
    for (const auto& [key, value] : replay.AsOverrides()) written.Set(key, value);
    EXPECT_EQ(Facts(ApplyDelta(DecodeScenario(base, kModelsDir, WorkloadDecoding::kSkip), replay)),
              Facts(Decode(written)));
  }
  // Keeping the unread workload would simulate defaults nobody wrote: a bug.
  const ScenarioConfig unread =
      DecodeScenario(ConfigTree::Parse(kBase, kOrigin), kModelsDir, WorkloadDecoding::kSkip);
  ScenarioDelta rate_only;
  rate_only.rate_qps = 5;
  EXPECT_THROW(ApplyDelta(unread, rate_only), InvariantError);
}

TEST(ScenarioDelta, ANewBenchmarkServingTraceBringsTheArrivalsItRecords) {
  const testing::TempDir dir;
  const std::string gamma_json = WriteGammaResult(dir);
  const ConfigTree base = ConfigTree::Parse(
      "model: Llama-3-8B\ngpu: H100-SXM\nworkload: {trace: t.csv}\n", dir.PathOf("s.yaml"));
  ScenarioDelta to_json;
  to_json.trace = "gamma.json";  // relative to the scenario's directory
  const ScenarioConfig c = ApplyDelta(Decode(base), to_json);
  EXPECT_EQ(c.workload.trace_path, gamma_json);
  EXPECT_EQ(c.workload.arrival, ArrivalProcess::kGamma);
  EXPECT_DOUBLE_EQ(c.workload.rate_qps, 3);
  EXPECT_DOUBLE_EQ(c.workload.cv, 2.0);
  ExpectSameAsWrittenKeys(base, to_json);

  // A rate the change sets keeps the recorded shape; a process it sets drops it.
  ScenarioDelta faster = to_json;
  faster.rate_qps = 12;
  ExpectSameAsWrittenKeys(base, faster);
  ScenarioDelta poisson = faster;
  poisson.arrival = ArrivalProcess::kPoisson;
  EXPECT_DOUBLE_EQ(ApplyDelta(Decode(base), poisson).workload.cv, 1.0);  // not the recorded 2
  ExpectSameAsWrittenKeys(base, poisson);
}

TEST(ScenarioDelta, LeavingABenchmarkServingTraceDropsTheArrivalsItRecorded) {
  const testing::TempDir dir;
  WriteGammaResult(dir);
  const ConfigTree base = ConfigTree::Parse(
      "model: Llama-3-8B\ngpu: H100-SXM\nworkload: {trace: gamma.json}\n", dir.PathOf("s.yaml"));
  ScenarioDelta to_csv;
  to_csv.trace = "t.csv";
  const ScenarioConfig c = ApplyDelta(Decode(base), to_csv);
  EXPECT_EQ(c.workload.arrival, ArrivalProcess::kTrace);  // the default again
  EXPECT_DOUBLE_EQ(c.workload.rate_qps, 0);
  ExpectSameAsWrittenKeys(base, to_csv);

  // A process without a rate on a trace that recorded one is refused, as decoding
  // refuses it: the recorded rate came with the recorded process.
  ScenarioDelta poisson;
  poisson.arrival = ArrivalProcess::kPoisson;
  EXPECT_THAT(InputErrorMessage([&] { ApplyDelta(Decode(base), poisson); }),
              StartsWith("workload.arrival.rate_qps: must be > 0 for poisson arrivals"));
  ConfigTree written = base;
  written.Set("workload.arrival.process", "poisson");
  EXPECT_THAT(InputErrorMessage([&] { Decode(written); }),
              HasSubstr("workload.arrival.rate_qps: must be > 0 for poisson arrivals"));
}

TEST(ScenarioDelta, AnUnreadableBenchmarkServingTraceIsAnInputErrorNamingTheKey) {
  const testing::TempDir dir;
  // A benchmark_serving result without the request_rate its arrivals come from.
  dir.Write("norate.json", R"({"input_lens": [5, 6], "output_lens": [1, 2]})");
  ScenarioDelta norate;
  norate.trace = "norate.json";
  const ScenarioConfig base = Decode(ConfigTree::Parse(
      "model: Llama-3-8B\ngpu: H100-SXM\nworkload: {trace: t.csv}\n", dir.PathOf("s.yaml")));
  EXPECT_THAT(InputErrorMessage([&] { ApplyDelta(base, norate); }),
              AllOf(StartsWith("workload.trace: "), HasSubstr("request_rate"),
                    HasSubstr("because workload.arrival.process is not set")));
}

}  // namespace
}  // namespace kvsim
