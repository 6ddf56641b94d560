// DecodeScenario: typed values, defaults, the schema's keys, and strict rejection of
// unknown keys, bad values and impossible combinations.
#include "sim/config/scenario_config.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "sim/config/scenario_delta.h"
#include "sim/core/check.h"
#include "tests/testing/input_error.h"
#include "tests/testing/temp_dir.h"

namespace kvsim {
namespace {

namespace fs = std::filesystem;
using ::kvsim::testing::InputErrorMessage;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kQuickstart = KVSIM_SOURCE_DIR "/configs/quickstart.yaml";
constexpr const char* kModelsDir = KVSIM_SOURCE_DIR "/models";
// A config file that need not exist: only its directory matters (relative paths).
constexpr const char* kOrigin = "/experiments/scenario.yaml";

// The smallest valid scenario: a model, a GPU and a trace.
constexpr const char* kMinimal =
    "model: Llama-3-8B\n"
    "gpu: H100-SXM\n"
    "workload:\n"
    "  trace: traces/t.csv\n";

std::string Normal(const std::string& path) { return fs::path(path).lexically_normal().string(); }

ScenarioConfig Decode(const std::string& yaml, const std::string& origin = kOrigin) {
  return DecodeScenario(ConfigTree::Parse(yaml, origin), kModelsDir);
}

using Overrides = std::vector<std::pair<std::string, std::string>>;

// `tree` with `overrides` (key path, value) applied in order through ConfigTree::Set.
ScenarioConfig DecodeWithOverrides(ConfigTree tree, const Overrides& overrides) {
  for (const auto& [key, value] : overrides) tree.Set(key, value);
  return DecodeScenario(tree, kModelsDir);
}

// The minimal scenario with `overrides` applied.
ScenarioConfig DecodeWith(const Overrides& overrides) {
  return DecodeWithOverrides(ConfigTree::Parse(kMinimal, kOrigin), overrides);
}

// The minimal scenario with one override applied.
ScenarioConfig DecodeWith(const std::string& key_path, const std::string& value) {
  return DecodeWith({{key_path, value}});
}

std::string DecodeError(const std::string& yaml) {
  return InputErrorMessage([&] { Decode(yaml); });
}

std::string DecodeWithError(const std::string& key_path, const std::string& value) {
  return InputErrorMessage([&] { DecodeWith(key_path, value); });
}

// ---------------------------------------------------------------------------
// The quickstart config

TEST(ScenarioConfig, QuickstartDecodesToItsTypedValues) {
  const ScenarioConfig c = DecodeScenario(ConfigTree::Load(kQuickstart), kModelsDir);
  EXPECT_EQ(c.config_file, kQuickstart);
  EXPECT_EQ(c.seed, 42u);
  EXPECT_EQ(Normal(c.model_path), Normal(std::string(kModelsDir) + "/llm/Llama-3-8B.yaml"));
  EXPECT_EQ(Normal(c.gpu_path), Normal(std::string(kModelsDir) + "/gpu/H100-SXM.yaml"));

  EXPECT_EQ(c.deployment.tensor_parallel, 1);
  EXPECT_EQ(c.deployment.replicas, 1);
  EXPECT_EQ(c.deployment.router, RouterType::kRoundRobin);
  EXPECT_DOUBLE_EQ(c.deployment.gpu_memory_utilization, 0.9);

  EXPECT_EQ(Normal(c.workload.trace_path),
            Normal(KVSIM_SOURCE_DIR "/traces/AzureLLMInferenceTrace_conv.csv"));
  EXPECT_TRUE(fs::exists(c.workload.trace_path));
  EXPECT_EQ(c.workload.trace_format, TraceFormat::kAuto);
  EXPECT_EQ(c.workload.arrival, ArrivalProcess::kTrace);
  EXPECT_DOUBLE_EQ(c.workload.rate_qps, 12.0);
  EXPECT_EQ(c.workload.max_requests, 3000);
  EXPECT_EQ(c.workload.lengths, LengthSource::kTrace);
  EXPECT_EQ(c.workload.seed, 42u);

  EXPECT_EQ(c.scheduler.type, SchedulerType::kVllm);
  EXPECT_EQ(c.scheduler.max_num_seqs, 256);

  EXPECT_EQ(c.kv_cache.type, KvManagerType::kPaged);
  EXPECT_EQ(c.kv_cache.paged.block_tokens, 16);
  EXPECT_EQ(c.kv_cache.vattention.page_bytes, 2 << 20);
  EXPECT_TRUE(c.kv_cache.vattention.overlap);
  EXPECT_TRUE(c.kv_cache.vattention.deferred_reclaim);

  EXPECT_EQ(c.timing.type, TimingType::kRoofline);
  EXPECT_TRUE(c.compare.empty());
}

TEST(ScenarioConfig, QuickstartAcceptsEveryDefaultCompareEntry) {
  const ScenarioConfig base = DecodeScenario(ConfigTree::Load(kQuickstart), kModelsDir);
  for (const CompareEntry& e : DefaultCompareEntries(base)) {
    EXPECT_TRUE(e.overrides.empty()) << e.label;
    EXPECT_NO_THROW(ApplyDelta(base, e.delta)) << e.label;
  }
}

// ---------------------------------------------------------------------------
// Defaults

TEST(ScenarioConfig, AbsentKeysTakeTheirDefaults) {
  const ScenarioConfig c = Decode(kMinimal);
  const ScenarioConfig d;  // the struct's own defaults
  EXPECT_EQ(c.config_file, kOrigin);
  EXPECT_EQ(c.seed, 0u);
  EXPECT_EQ(c.workload.seed, 0u);

  EXPECT_EQ(c.deployment.tensor_parallel, 1);
  EXPECT_EQ(c.deployment.replicas, 1);
  EXPECT_EQ(c.deployment.router, RouterType::kRoundRobin);
  EXPECT_DOUBLE_EQ(c.deployment.gpu_memory_utilization, 0.9);
  EXPECT_EQ(c.deployment.activation_reserve_bytes, int64_t{1} << 30);
  EXPECT_EQ(c.deployment.framework_reserve_bytes, int64_t{512} << 20);
  EXPECT_EQ(c.deployment.kv_capacity_bytes, 0);
  EXPECT_EQ(c.deployment.max_model_len, 0);

  EXPECT_EQ(c.workload.trace_format, TraceFormat::kAuto);
  EXPECT_EQ(c.workload.arrival, ArrivalProcess::kTrace);
  EXPECT_DOUBLE_EQ(c.workload.rate_qps, 0.0);
  EXPECT_DOUBLE_EQ(c.workload.cv, 1.0);
  EXPECT_EQ(c.workload.lengths, LengthSource::kTrace);
  EXPECT_EQ(c.workload.max_requests, 0);

  EXPECT_EQ(c.scheduler.type, SchedulerType::kVllm);
  EXPECT_EQ(c.scheduler.max_num_seqs, 256);
  EXPECT_EQ(c.scheduler.max_num_batched_tokens, 0);
  EXPECT_EQ(c.scheduler.chunk_tokens, 512);

  EXPECT_EQ(c.kv_cache.type, KvManagerType::kPaged);
  EXPECT_EQ(c.kv_cache.paged.block_tokens, 16);
  EXPECT_DOUBLE_EQ(c.kv_cache.paged.watermark, 0.01);
  EXPECT_EQ(c.kv_cache.vattention.page_bytes, 2 << 20);
  EXPECT_TRUE(c.kv_cache.vattention.overlap);
  EXPECT_TRUE(c.kv_cache.vattention.deferred_reclaim);
  EXPECT_EQ(c.kv_cache.vattention.max_slots, 0);  // 0: max_num_seqs
  EXPECT_EQ(c.kv_cache.vattention.map_latency, d.kv_cache.vattention.map_latency);
  EXPECT_EQ(c.kv_cache.vattention.set_access_latency, d.kv_cache.vattention.set_access_latency);
  EXPECT_EQ(c.kv_cache.vattention.unmap_latency, d.kv_cache.vattention.unmap_latency);
  EXPECT_EQ(c.kv_cache.static_kv.reserve, StaticKvConfig::Reserve::kMaxModelLen);

  EXPECT_EQ(c.timing.type, TimingType::kRoofline);
  EXPECT_DOUBLE_EQ(c.timing.roofline.gemm_efficiency, d.timing.roofline.gemm_efficiency);
  EXPECT_EQ(c.timing.fixed.per_iteration, d.timing.fixed.per_iteration);
  EXPECT_TRUE(c.output.requests_csv);
  EXPECT_TRUE(c.output.timeseries_csv);
  EXPECT_EQ(c.output.timeseries_interval, Nanos(1'000'000'000));  // one row per second
  EXPECT_TRUE(c.compare.empty());
}

TEST(ScenarioConfig, AnUnwrittenWatermarkFollowsTheScheduler) {
  // vLLM V1 keeps no admission watermark; the V0-style schedulers vLLM's 1%.
  EXPECT_DOUBLE_EQ(DecodeWith("scheduler.type", "vllm").kv_cache.paged.watermark, 0.01);
  const ScenarioConfig v1 = DecodeWith("scheduler.type", "vllm_v1");
  EXPECT_DOUBLE_EQ(v1.kv_cache.paged.watermark, 0.0);
  EXPECT_DOUBLE_EQ(v1.kv_cache.vattention.watermark, 0.0);
  // A written one is kept, whatever the scheduler.
  EXPECT_DOUBLE_EQ(DecodeWith({{"scheduler.type", "vllm_v1"}, {"kv_cache.watermark", "0.05"}})
                       .kv_cache.paged.watermark,
                   0.05);
  // A delta switching the scheduler (compare entries, plan candidates) moves it too.
  ScenarioDelta to_v1;
  to_v1.scheduler = SchedulerType::kVllmV1;
  EXPECT_DOUBLE_EQ(ApplyDelta(DecodeWith("scheduler.type", "vllm"), to_v1).kv_cache.paged.watermark,
                   0.0);
  ScenarioDelta to_v0;
  to_v0.scheduler = SchedulerType::kVllm;
  EXPECT_DOUBLE_EQ(ApplyDelta(v1, to_v0).kv_cache.vattention.watermark, 0.01);
  const ScenarioConfig written =
      DecodeWith({{"scheduler.type", "vllm"}, {"kv_cache.watermark", "0.05"}});
  EXPECT_DOUBLE_EQ(ApplyDelta(written, to_v1).kv_cache.paged.watermark, 0.05);
}

TEST(ScenarioConfig, SkipAheadIsOnUnlessTurnedOff) {
  EXPECT_TRUE(Decode(kMinimal).simulation.skip_ahead);
  EXPECT_FALSE(DecodeWith("simulation.skip_ahead", "false").simulation.skip_ahead);
  EXPECT_THAT(DecodeWithError("simulation.skip_ahed", "false"), HasSubstr("simulation.skip_ahed"));
}

TEST(ScenarioConfig, TimeseriesIntervalIsSecondsAndZeroMeansEveryIteration) {
  EXPECT_EQ(DecodeWith("output.timeseries_interval_s", "0.25").output.timeseries_interval,
            Nanos(250'000'000));
  EXPECT_EQ(DecodeWith("output.timeseries_interval_s", "0").output.timeseries_interval, Nanos(0));
  EXPECT_THAT(DecodeWithError("output.timeseries_interval_s", "-1"),
              HasSubstr("output.timeseries_interval_s"));
}

TEST(ScenarioConfig, EmptySectionsTakeTheirDefaults) {
  const ScenarioConfig c = Decode(std::string(kMinimal) + "scheduler:\nkv_cache:\ntiming:\n");
  EXPECT_EQ(c.scheduler.type, SchedulerType::kVllm);
  EXPECT_EQ(c.kv_cache.type, KvManagerType::kPaged);
  EXPECT_EQ(c.timing.type, TimingType::kRoofline);
}

TEST(ScenarioConfig, TheModelIsRequired) {
  const std::string message = DecodeError("gpu: H100-SXM\nworkload:\n  trace: t.csv\n");
  EXPECT_THAT(message, HasSubstr("model"));
  EXPECT_THAT(message, HasSubstr("required"));
}

TEST(ScenarioConfig, AMissingModelIsNotDescribedAsSetOnTheCommandLine) {
  const std::string message = DecodeError("gpu: H100-SXM\nworkload:\n  trace: t.csv\n");
  EXPECT_THAT(message, Not(HasSubstr("command line")));
}

TEST(ScenarioConfig, TheGpuIsRequired) {
  const std::string message = DecodeError("model: Llama-3-8B\nworkload:\n  trace: t.csv\n");
  EXPECT_THAT(message, HasSubstr("gpu"));
  EXPECT_THAT(message, HasSubstr("required"));
}

TEST(ScenarioConfig, TraceArrivalsWithoutATraceAreAnErrorNamingTheKeyAndFile) {
  const std::string message = DecodeError("model: Llama-3-8B\ngpu: H100-SXM\n");
  EXPECT_THAT(message, HasSubstr("workload.trace"));
  EXPECT_THAT(message, HasSubstr(kOrigin));
}

// ---------------------------------------------------------------------------
// Every key of the schema

TEST(ScenarioConfig, EveryRequiredKeyOfTheSchemaIsAccepted) {
  const ScenarioConfig c = Decode(
      "seed: 7\n"
      "model: Llama-3-8B\n"
      "gpu: A100-80GB\n"
      "deployment:\n"
      "  tensor_parallel: 2\n"
      "  replicas: 3\n"
      "  router: least_outstanding\n"
      "  gpu_memory_utilization: 0.8\n"
      "workload:\n"
      "  trace: traces/t.csv\n"
      "  arrival:\n"
      "    process: gamma\n"
      "    rate_qps: 5.5\n"
      "    cv: 2.5\n"
      "  max_requests: 100\n"
      "scheduler:\n"
      "  type: sarathi\n"
      "  max_num_seqs: 64\n"
      "  max_num_batched_tokens: 4096\n"
      "  chunk_tokens: 256\n"
      "kv_cache:\n"
      "  type: vattention\n"
      "  block_tokens: 32\n"
      "  page_bytes: 64KiB\n"
      "  overlap: false\n"
      "  deferred_reclaim: false\n"
      "  max_slots: 128\n");
  EXPECT_EQ(c.seed, 7u);
  EXPECT_EQ(c.workload.seed, 7u);
  EXPECT_THAT(c.model_path, HasSubstr("Llama-3-8B.yaml"));
  EXPECT_THAT(c.gpu_path, HasSubstr("A100-80GB.yaml"));
  EXPECT_EQ(c.deployment.tensor_parallel, 2);
  EXPECT_EQ(c.deployment.replicas, 3);
  EXPECT_EQ(c.deployment.router, RouterType::kLeastOutstanding);
  EXPECT_DOUBLE_EQ(c.deployment.gpu_memory_utilization, 0.8);
  EXPECT_EQ(c.workload.trace_path, "/experiments/traces/t.csv");
  EXPECT_EQ(c.workload.arrival, ArrivalProcess::kGamma);
  EXPECT_DOUBLE_EQ(c.workload.rate_qps, 5.5);
  EXPECT_DOUBLE_EQ(c.workload.cv, 2.5);
  EXPECT_EQ(c.workload.max_requests, 100);
  EXPECT_EQ(c.scheduler.type, SchedulerType::kSarathi);
  EXPECT_EQ(c.scheduler.max_num_seqs, 64);
  EXPECT_EQ(c.scheduler.max_num_batched_tokens, 4096);
  EXPECT_EQ(c.scheduler.chunk_tokens, 256);
  EXPECT_EQ(c.kv_cache.type, KvManagerType::kVAttention);
  EXPECT_EQ(c.kv_cache.paged.block_tokens, 32);
  EXPECT_EQ(c.kv_cache.vattention.page_bytes, 64 << 10);
  EXPECT_FALSE(c.kv_cache.vattention.overlap);
  EXPECT_FALSE(c.kv_cache.vattention.deferred_reclaim);
  EXPECT_EQ(c.kv_cache.vattention.max_slots, 128);
}

TEST(ScenarioConfig, EveryRequiredKeyCanBeSetFromTheCommandLine) {
  const ScenarioConfig c = DecodeWith({
      {"seed", "3"},
      {"model", "Mistral-7B"},
      {"gpu", "H200"},
      {"deployment.tensor_parallel", "4"},
      {"deployment.replicas", "2"},
      {"deployment.router", "round_robin"},
      {"deployment.gpu_memory_utilization", "0.95"},
      {"workload.trace", "other.csv"},
      {"workload.arrival.process", "gamma"},
      {"workload.arrival.rate_qps", "12"},
      {"workload.arrival.cv", "1.5"},
      {"workload.max_requests", "50"},
      {"scheduler.type", "sarathi"},
      {"scheduler.max_num_seqs", "8"},
      {"scheduler.max_num_batched_tokens", "8192"},
      {"scheduler.chunk_tokens", "1024"},
      {"kv_cache.type", "static"},
      {"kv_cache.block_tokens", "8"},
      {"kv_cache.page_bytes", "2MiB"},
      {"kv_cache.overlap", "false"},
      {"kv_cache.deferred_reclaim", "false"},
      {"kv_cache.max_slots", "16"},
  });
  EXPECT_EQ(c.seed, 3u);
  EXPECT_THAT(c.model_path, HasSubstr("Mistral-7B.yaml"));
  EXPECT_THAT(c.gpu_path, HasSubstr("H200.yaml"));
  EXPECT_EQ(c.deployment.tensor_parallel, 4);
  EXPECT_EQ(c.deployment.replicas, 2);
  EXPECT_EQ(c.deployment.router, RouterType::kRoundRobin);
  EXPECT_DOUBLE_EQ(c.deployment.gpu_memory_utilization, 0.95);
  EXPECT_EQ(c.workload.trace_path, "/experiments/other.csv");
  EXPECT_EQ(c.workload.arrival, ArrivalProcess::kGamma);
  EXPECT_DOUBLE_EQ(c.workload.rate_qps, 12.0);
  EXPECT_DOUBLE_EQ(c.workload.cv, 1.5);
  EXPECT_EQ(c.workload.max_requests, 50);
  EXPECT_EQ(c.scheduler.type, SchedulerType::kSarathi);
  EXPECT_EQ(c.scheduler.max_num_seqs, 8);
  EXPECT_EQ(c.scheduler.max_num_batched_tokens, 8192);
  EXPECT_EQ(c.scheduler.chunk_tokens, 1024);
  EXPECT_EQ(c.kv_cache.type, KvManagerType::kStatic);
  EXPECT_EQ(c.kv_cache.paged.block_tokens, 8);
  EXPECT_EQ(c.kv_cache.vattention.page_bytes, 2 << 20);
  EXPECT_FALSE(c.kv_cache.vattention.overlap);
  EXPECT_FALSE(c.kv_cache.vattention.deferred_reclaim);
  EXPECT_EQ(c.kv_cache.vattention.max_slots, 16);
}

TEST(ScenarioConfig, ASchedulerKeyItsTypeDoesNotReadIsAnErrorNamingTheKey) {
  // Each would change nothing: vllm admits prompts whole, static batching has no token
  // budget, and only vllm_v1 reserves a whole prompt's KV.
  const struct {
    const char* type;
    const char* key;
    const char* value;
    const char* which;
  } cases[] = {
      {"vllm", "chunk_tokens", "512", "sarathi only"},
      {"vllm_v1", "chunk_tokens", "512", "sarathi only"},
      {"static_batching", "max_num_batched_tokens", "512", "vllm, sarathi and vllm_v1 only"},
      {"sarathi", "reserve_full_isl", "true", "vllm_v1 only"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.key);
    ConfigTree tree = ConfigTree::Parse(kMinimal, kOrigin);
    tree.Set("scheduler.type", c.type);
    tree.Set(std::string("scheduler.") + c.key, c.value);
    try {
      DecodeScenario(tree, kModelsDir);
      ADD_FAILURE() << "expected an InputError";
    } catch (const InputError& e) {
      EXPECT_THAT(e.what(), HasSubstr(fmt::format("scheduler.{} (set by an override): the {} "
                                                  "scheduler does not read it ({}); leave it out",
                                                  c.key, c.type, c.which)));
    }
  }
}

TEST(ScenarioConfig, AKeyTheFileWroteForTheSchedulerAnOverrideReplacedIsLeftBehind) {
  // The file's sarathi chunk size stays when --set switches to vllm, which ignores it;
  // the same key set by the override too is the override's mistake.
  ConfigTree tree = ConfigTree::Parse(
      std::string(kMinimal) + "scheduler: {type: sarathi, chunk_tokens: 512}\n", kOrigin);
  tree.Set("scheduler.type", "vllm");
  EXPECT_EQ(DecodeScenario(tree, kModelsDir).scheduler.type, SchedulerType::kVllm);
  tree.Set("scheduler.chunk_tokens", "1024");
  EXPECT_THROW(DecodeScenario(tree, kModelsDir), InputError);
  // Written beside its type in the file, it is an error.
  ConfigTree file = ConfigTree::Parse(
      std::string(kMinimal) + "scheduler: {type: vllm, chunk_tokens: 512}\n", kOrigin);
  try {
    DecodeScenario(file, kModelsDir);
    ADD_FAILURE() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("scheduler.chunk_tokens: the vllm scheduler does not read it "
                                    "(sarathi only); leave it out"));
  }
}

TEST(ScenarioConfig, EachArrivalProcessNameIsAccepted) {
  EXPECT_EQ(DecodeWith("workload.arrival.process", "trace").workload.arrival,
            ArrivalProcess::kTrace);
  ConfigTree tree = ConfigTree::Parse(kMinimal, kOrigin);
  tree.Set("workload.arrival.rate_qps", "2");
  tree.Set("workload.arrival.process", "poisson");
  EXPECT_EQ(DecodeScenario(tree, kModelsDir).workload.arrival, ArrivalProcess::kPoisson);
  tree.Set("workload.arrival.process", "gamma");
  EXPECT_EQ(DecodeScenario(tree, kModelsDir).workload.arrival, ArrivalProcess::kGamma);
}

TEST(ScenarioConfig, EachSchedulerTypeIsAccepted) {
  EXPECT_EQ(DecodeWith("scheduler.type", "vllm").scheduler.type, SchedulerType::kVllm);
  EXPECT_EQ(DecodeWith("scheduler.type", "sarathi").scheduler.type, SchedulerType::kSarathi);
  EXPECT_EQ(DecodeWith("scheduler.type", "static_batching").scheduler.type,
            SchedulerType::kStaticBatching);
}

TEST(ScenarioConfig, VllmV1SchedulerTypeIsAcceptedWithItsLimitsAsGiven) {
  const ScenarioConfig c =
      DecodeWith({{"scheduler.type", "vllm_v1"}, {"scheduler.max_num_seqs", "64"}});
  EXPECT_EQ(c.scheduler.type, SchedulerType::kVllmV1);
  EXPECT_EQ(c.scheduler.max_num_seqs, 64);
  // 0 stays 0 here; the builder turns it into vllm_v1's default of 2048 tokens.
  EXPECT_EQ(c.scheduler.max_num_batched_tokens, 0);
  EXPECT_STREQ(SchedulerTypeName(c.scheduler.type), "vllm_v1");
}

TEST(ScenarioConfig, UnknownSchedulerTypeListsVllmV1AmongTheValidOnes) {
  EXPECT_THAT(DecodeWithError("scheduler.type", "v1"),
              HasSubstr("vllm, sarathi, static_batching, vllm_v1"));
}

TEST(ScenarioConfig, EachKvCacheTypeIsAccepted) {
  EXPECT_EQ(DecodeWith("kv_cache.type", "static").kv_cache.type, KvManagerType::kStatic);
  EXPECT_EQ(DecodeWith("kv_cache.type", "paged").kv_cache.type, KvManagerType::kPaged);
  EXPECT_EQ(DecodeWith("kv_cache.type", "vattention").kv_cache.type, KvManagerType::kVAttention);
}

TEST(ScenarioConfig, PageBytesAcceptsUnitsAndAPlainByteCount) {
  EXPECT_EQ(DecodeWith("kv_cache.page_bytes", "64KiB").kv_cache.vattention.page_bytes, 65536);
  EXPECT_EQ(DecodeWith("kv_cache.page_bytes", "2MiB").kv_cache.vattention.page_bytes, 2097152);
  EXPECT_EQ(DecodeWith("kv_cache.page_bytes", "65536").kv_cache.vattention.page_bytes, 65536);
  EXPECT_EQ(DecodeWith("kv_cache.page_bytes", "2097152").kv_cache.vattention.page_bytes, 2097152);
  EXPECT_EQ(DecodeWith("kv_cache.page_bytes", "128KiB").kv_cache.vattention.page_bytes, 131072);
  EXPECT_EQ(DecodeWith("kv_cache.page_bytes", "256KiB").kv_cache.vattention.page_bytes, 262144);
}

TEST(ScenarioConfig, ByteSizedDeploymentKeysAcceptUnits) {
  const ScenarioConfig c = DecodeWith({{"deployment.activation_reserve_bytes", "2GiB"},
                                       {"deployment.framework_reserve_bytes", "256MiB"},
                                       {"deployment.kv_capacity_bytes", "10GB"}});
  EXPECT_EQ(c.deployment.activation_reserve_bytes, int64_t{2} << 30);
  EXPECT_EQ(c.deployment.framework_reserve_bytes, int64_t{256} << 20);
  EXPECT_EQ(c.deployment.kv_capacity_bytes, 10'000'000'000);
}

TEST(ScenarioConfig, AKvCapacityTooSmallForOneRequestNamesItsKeyAndLineNotTheUtilization) {
  // Llama-3-8B holds 128 KiB of KV per token: 1 MiB is 8 tokens, far below its 8192.
  const std::string message = DecodeError(std::string(kMinimal) +
                                          "deployment:\n"
                                          "  kv_capacity_bytes: 1MiB\n");
  EXPECT_EQ(message, std::string(kOrigin) +
                         ":6: deployment.kv_capacity_bytes: 1048576 bytes (0.001 GiB) per GPU "
                         "hold the KV of 8 tokens of Llama-3-8B (131072 bytes per token per GPU "
                         "at tensor_parallel 1), fewer than max_model_len 8192 (the model card's "
                         "max context), which needs 1073741824 bytes (1.000 GiB); raise "
                         "deployment.kv_capacity_bytes or lower deployment.max_model_len");
  EXPECT_THAT(message, Not(HasSubstr("gpu_memory_utilization")));
}

TEST(ScenarioConfig, AKvCapacityIsWeighedAtTheServedKvDtypeAndTensorParallel) {
  // 1 GiB holds 8192 tokens of Llama-3-8B's bf16 KV at TP 1: exactly enough.
  EXPECT_EQ(DecodeWith("deployment.kv_capacity_bytes", "1GiB").deployment.kv_capacity_bytes,
            int64_t{1} << 30);
  const Overrides half = {{"deployment.kv_capacity_bytes", "512MiB"}};
  EXPECT_THAT(InputErrorMessage([&] { DecodeWith(half); }),
              HasSubstr("deployment.kv_capacity_bytes (set by an override): 536870912 bytes"));
  // Half of that holds as many tokens of fp8 KV, or of bf16 KV split over two GPUs.
  Overrides fp8 = half;
  fp8.emplace_back("kv_cache.dtype", "fp8");
  EXPECT_EQ(DecodeWith(fp8).deployment.kv_capacity_bytes, int64_t{512} << 20);
  Overrides tp2 = half;
  tp2.emplace_back("deployment.tensor_parallel", "2");
  EXPECT_EQ(DecodeWith(tp2).deployment.tensor_parallel, 2);
  // Or one lowers max_model_len.
  Overrides shorter = half;
  shorter.emplace_back("deployment.max_model_len", "4096");
  EXPECT_EQ(DecodeWith(shorter).deployment.max_model_len, 4096);
}

TEST(ScenarioConfig, VmmLatenciesAreReadInSeconds) {
  const ScenarioConfig c = Decode(std::string(kMinimal) +
                                  "kv_cache:\n"
                                  "  vmm:\n"
                                  "    map_s: 1.0e-6\n"
                                  "    set_access_s: 2.0e-5\n"
                                  "    unmap_s: 0.00001\n");
  EXPECT_EQ(c.kv_cache.vattention.map_latency, Nanos(1000));
  EXPECT_EQ(c.kv_cache.vattention.set_access_latency, Nanos(20000));
  EXPECT_EQ(c.kv_cache.vattention.unmap_latency, Nanos(10000));
}

// ---------------------------------------------------------------------------
// Unknown keys

TEST(ScenarioConfig, UnknownTopLevelKeyIsAnErrorNamingItAndItsLine) {
  const std::string message = DecodeError(std::string(kMinimal) + "sead: 1\n");
  EXPECT_THAT(message, HasSubstr(std::string(kOrigin) + ":5: sead"));
  EXPECT_THAT(message, HasSubstr("unknown key"));
  EXPECT_THAT(message, HasSubstr("seed"));  // listed among the valid keys
}

TEST(ScenarioConfig, ADuplicateKeyIsAnError) {
  // YAML mappings have unique keys; a repeated one would silently lose a value.
  const std::string message = DecodeError(std::string(kMinimal) +
                                          "scheduler:\n"
                                          "  max_num_seqs: 8\n"
                                          "  max_num_seqs: 16\n");
  EXPECT_THAT(message, HasSubstr("scheduler.max_num_seqs"));
}

TEST(ScenarioConfig, UnknownNestedKeyIsAnErrorNamingItsFullPath) {
  const std::string message = DecodeError(std::string(kMinimal) +
                                          "scheduler:\n"
                                          "  type: vllm\n"
                                          "  typo: 1\n");
  EXPECT_THAT(message, HasSubstr(std::string(kOrigin) + ":7: scheduler.typo"));
  EXPECT_THAT(message, HasSubstr("max_num_seqs"));  // a valid key of the section
}

TEST(ScenarioConfig, UnknownKeyTwoLevelsDownIsAnErrorNamingItsFullPath) {
  const std::string message = DecodeError(std::string(kMinimal) +
                                          "kv_cache:\n"
                                          "  type: vattention\n"
                                          "  vmm:\n"
                                          "    map_s: 1.0e-6\n"
                                          "    typo: 2\n");
  EXPECT_THAT(message, HasSubstr(std::string(kOrigin) + ":9: kv_cache.vmm.typo"));
}

TEST(ScenarioConfig, UnknownArrivalKeyIsAnErrorNamingItsFullPath) {
  const std::string message = DecodeError(
      "model: Llama-3-8B\n"
      "gpu: H100-SXM\n"
      "workload:\n"
      "  trace: t.csv\n"
      "  arrival:\n"
      "    process: trace\n"
      "    typo: 3\n");
  EXPECT_THAT(message, HasSubstr(std::string(kOrigin) + ":7: workload.arrival.typo"));
}

TEST(ScenarioConfig, UnknownKeySetFromTheCommandLineIsAnErrorNamingItsPath) {
  EXPECT_THAT(DecodeWithError("scheduler.typo", "1"), HasSubstr("scheduler.typo"));
  EXPECT_THAT(DecodeWithError("kv_cache.vmm.typo", "1"), HasSubstr("kv_cache.vmm.typo"));
  EXPECT_THAT(DecodeWithError("workload.arrival.typo", "1"), HasSubstr("workload.arrival.typo"));
  EXPECT_THAT(DecodeWithError("typo", "1"), HasSubstr("typo"));
}

TEST(ScenarioConfig, UnknownKeyFromTheCommandLineIsNotBlamedOnALineOfTheFile) {
  const std::string message = DecodeWithError("scheduler.typo", "1");
  EXPECT_THAT(message, HasSubstr("set by an override"));
  EXPECT_THAT(message, Not(::testing::ContainsRegex(":[0-9]+: ")));
}

TEST(ScenarioConfig, BadValueFromTheCommandLineIsNotBlamedOnALineOfTheFile) {
  // The override has no line in the config file; the message must not point at one.
  const std::string message = DecodeWithError("scheduler.max_num_seqs", "lots");
  EXPECT_THAT(message, HasSubstr("scheduler.max_num_seqs"));
  EXPECT_THAT(message, HasSubstr("set by an override"));
  EXPECT_THAT(message, Not(::testing::ContainsRegex(":[0-9]+: ")));
}

// ---------------------------------------------------------------------------
// Bad values

TEST(ScenarioConfig, UnknownEnumValueListsTheValidOnes) {
  const std::string scheduler = DecodeWithError("scheduler.type", "fcfs");
  EXPECT_THAT(scheduler, HasSubstr("scheduler.type"));
  EXPECT_THAT(scheduler, HasSubstr("fcfs"));
  EXPECT_THAT(scheduler, HasSubstr("vllm, sarathi, static_batching"));

  const std::string kv = DecodeWithError("kv_cache.type", "radix");
  EXPECT_THAT(kv, HasSubstr("kv_cache.type"));
  EXPECT_THAT(kv, HasSubstr("static, paged, vattention"));

  const std::string arrival = DecodeWithError("workload.arrival.process", "bursty");
  EXPECT_THAT(arrival, HasSubstr("workload.arrival.process"));
  EXPECT_THAT(arrival, HasSubstr("trace, poisson, gamma"));

  const std::string router = DecodeWithError("deployment.router", "random");
  EXPECT_THAT(router, HasSubstr("deployment.router"));
  EXPECT_THAT(router, HasSubstr("round_robin, least_outstanding"));
}

TEST(ScenarioConfig, EnumErrorInTheFileNamesItsLine) {
  const std::string message = DecodeError(std::string(kMinimal) +
                                          "scheduler:\n"
                                          "  max_num_seqs: 4\n"
                                          "  type: fcfs\n");
  EXPECT_THAT(message, HasSubstr(std::string(kOrigin) + ":7: scheduler.type"));
}

TEST(ScenarioConfig, AStringWhereAnIntegerBelongsIsAnError) {
  const std::string message = DecodeError(std::string(kMinimal) +
                                          "scheduler:\n"
                                          "  max_num_seqs: many\n");
  EXPECT_THAT(message, HasSubstr(std::string(kOrigin) + ":6: scheduler.max_num_seqs"));
  EXPECT_THAT(message, HasSubstr("integer"));
  EXPECT_THAT(message, HasSubstr("many"));
}

TEST(ScenarioConfig, ASeedWithALeadingZeroIsAnErrorRatherThanOctal) {
  // YAML 1.1 reads 010 as octal 8.
  EXPECT_EQ(DecodeError("seed: 010\n" + std::string(kMinimal)),
            std::string(kOrigin) +
                ":1: seed: '010' has a leading zero; write 10 (YAML reads a leading 0 as octal)");
  EXPECT_THAT(DecodeWithError("seed", "007"),
              HasSubstr("seed (set by an override): '007' has a leading zero; write 7"));
  EXPECT_THAT(DecodeWithError("seed", "00"), HasSubstr("'00' has a leading zero; write 0"));
}

TEST(ScenarioConfig, ASeedIsReadInDecimal) {
  EXPECT_EQ(DecodeWith("seed", "10").seed, 10u);
  EXPECT_EQ(DecodeWith("seed", "0").seed, 0u);
  EXPECT_EQ(DecodeWith("seed", "1000").seed, 1000u);
}

TEST(ScenarioConfig, AFractionWhereAnIntegerBelongsIsAnError) {
  EXPECT_THAT(DecodeWithError("deployment.replicas", "1.5"), HasSubstr("deployment.replicas"));
}

TEST(ScenarioConfig, ANonBooleanWhereABooleanBelongsIsAnError) {
  const std::string message = DecodeError(std::string(kMinimal) +
                                          "kv_cache:\n"
                                          "  overlap: yes please\n");
  EXPECT_THAT(message, HasSubstr(std::string(kOrigin) + ":6: kv_cache.overlap"));
  EXPECT_THAT(message, HasSubstr("true or false"));
  EXPECT_THAT(DecodeWithError("kv_cache.deferred_reclaim", "2"),
              HasSubstr("kv_cache.deferred_reclaim"));
}

TEST(ScenarioConfig, AStringWhereANumberBelongsIsAnError) {
  EXPECT_THAT(DecodeWithError("deployment.gpu_memory_utilization", "most"),
              HasSubstr("deployment.gpu_memory_utilization"));
  EXPECT_THAT(DecodeWithError("workload.arrival.rate_qps", "fast"),
              HasSubstr("workload.arrival.rate_qps"));
}

TEST(ScenarioConfig, AScalarWhereASectionBelongsIsAnError) {
  const std::string message = DecodeError(std::string(kMinimal) + "scheduler: vllm\n");
  EXPECT_THAT(message, HasSubstr("scheduler"));
  EXPECT_THAT(message, HasSubstr("mapping"));
}

TEST(ScenarioConfig, AListWhereAScalarBelongsIsAnError) {
  EXPECT_THAT(DecodeWithError("scheduler.type", "[vllm, sarathi]"), HasSubstr("scheduler.type"));
  EXPECT_THAT(DecodeWithError("scheduler.max_num_seqs", "[1, 2]"),
              HasSubstr("scheduler.max_num_seqs"));
}

TEST(ScenarioConfig, GpuMemoryUtilizationAboveOneIsOutOfRange) {
  const std::string message = DecodeWithError("deployment.gpu_memory_utilization", "1.5");
  EXPECT_THAT(message, HasSubstr("deployment.gpu_memory_utilization"));
  EXPECT_THAT(message, HasSubstr("1.5"));
  EXPECT_THROW(DecodeWith("deployment.gpu_memory_utilization", "0"), InputError);
  EXPECT_NO_THROW(DecodeWith("deployment.gpu_memory_utilization", "1.0"));
}

TEST(ScenarioConfig, NegativeOrZeroCountsAreOutOfRange) {
  EXPECT_THAT(DecodeWithError("deployment.replicas", "-1"), HasSubstr("deployment.replicas"));
  EXPECT_THAT(DecodeWithError("deployment.replicas", "0"), HasSubstr("deployment.replicas"));
  EXPECT_THAT(DecodeWithError("deployment.tensor_parallel", "0"),
              HasSubstr("deployment.tensor_parallel"));
  EXPECT_THAT(DecodeWithError("scheduler.max_num_seqs", "0"), HasSubstr("scheduler.max_num_seqs"));
  EXPECT_THAT(DecodeWithError("scheduler.chunk_tokens", "0"), HasSubstr("scheduler.chunk_tokens"));
  EXPECT_THAT(DecodeWithError("kv_cache.block_tokens", "0"), HasSubstr("kv_cache.block_tokens"));
  EXPECT_THAT(DecodeWithError("kv_cache.max_slots", "-4"), HasSubstr("kv_cache.max_slots"));
  EXPECT_THAT(DecodeWithError("workload.max_requests", "-10"), HasSubstr("workload.max_requests"));
  EXPECT_THAT(DecodeWithError("workload.arrival.rate_qps", "-1"),
              HasSubstr("workload.arrival.rate_qps"));
  EXPECT_THAT(DecodeWithError("seed", "-1"), HasSubstr("seed"));
}

TEST(ScenarioConfig, PoissonArrivalsNeedAPositiveRate) {
  const std::string message = DecodeWithError("workload.arrival.process", "poisson");
  EXPECT_THAT(message, HasSubstr("workload.arrival.rate_qps"));
}

TEST(ScenarioConfig, PageBytesThatIsNotAVAttentionPageSizeIsRejected) {
  const std::string message = DecodeWithError("kv_cache.page_bytes", "3000");
  EXPECT_THAT(message, HasSubstr("kv_cache.page_bytes"));
  EXPECT_THAT(message, HasSubstr("3000"));
  EXPECT_THAT(message, HasSubstr("64KiB"));
  EXPECT_THROW(DecodeWith("kv_cache.page_bytes", "1MiB"), InputError);
  EXPECT_THROW(DecodeWith("kv_cache.page_bytes", "64KB"), InputError);
}

TEST(ScenarioConfig, PageBytesThatIsNotAByteSizeIsRejected) {
  EXPECT_THAT(DecodeWithError("kv_cache.page_bytes", "2XB"), HasSubstr("kv_cache.page_bytes"));
  EXPECT_THAT(DecodeWithError("kv_cache.page_bytes", "[1, 2]"), HasSubstr("kv_cache.page_bytes"));
}

TEST(ScenarioConfig, UnknownTraceFormatListsTheValidOnes) {
  const std::string message = DecodeWithError("workload.format", "parquet");
  EXPECT_THAT(message, HasSubstr("workload.format"));
  EXPECT_THAT(message, HasSubstr("splitwise"));
}

// ---------------------------------------------------------------------------
// Cards

TEST(ScenarioConfig, UnknownModelNameListsTheAvailableCards) {
  const std::string message = DecodeWithError("model", "Llama-9-1T");
  EXPECT_THAT(message, HasSubstr("model"));
  EXPECT_THAT(message, HasSubstr("Llama-9-1T"));
  EXPECT_THAT(message, HasSubstr("available"));
  EXPECT_THAT(message, HasSubstr("Llama-3-8B"));
  EXPECT_THAT(message, HasSubstr("Mistral-7B"));
  EXPECT_THAT(message, HasSubstr("Llama-2-70B"));
}

TEST(ScenarioConfig, UnknownGpuNameListsTheAvailableCards) {
  const std::string message = DecodeWithError("gpu", "V100");
  EXPECT_THAT(message, HasSubstr("gpu"));
  EXPECT_THAT(message, HasSubstr("V100"));
  EXPECT_THAT(message, HasSubstr("H100-SXM"));
  EXPECT_THAT(message, HasSubstr("A100-80GB"));
}

// Found by fuzzing (tests/fuzz/fuzz_scenario): a card name longer than a file name may
// be made the existence check throw std::filesystem::filesystem_error.
TEST(ScenarioConfig, ACardNameTooLongForAFileNameIsAnErrorNamingTheKey) {
  const std::string name(300, 'x');
  const std::string message =
      DecodeError("model: " + name + "\ngpu: H100-SXM\nworkload:\n  trace: t.csv\n");
  EXPECT_THAT(message, HasSubstr("scenario.yaml:1: model: unknown llm card '" + name + "'"));
  EXPECT_THAT(message, HasSubstr("Llama-3-8B"));
  EXPECT_THAT(DecodeError("model: Llama-3-8B\ngpu: cards/" + name + ".yaml\n"),
              HasSubstr("scenario.yaml:2: gpu: card 'cards/" + name + ".yaml' not found"));
}

TEST(ScenarioConfig, ACardGivenAsAPathResolvesAgainstTheConfigDirectory) {
  const std::string origin = KVSIM_SOURCE_DIR "/configs/scenario.yaml";
  const ScenarioConfig c = Decode(
      "model: ../models/llm/Llama-3-8B.yaml\n"
      "gpu: ../models/gpu/H100-SXM.yaml\n"
      "workload:\n"
      "  trace: t.csv\n",
      origin);
  EXPECT_EQ(fs::path(c.model_path),
            fs::path(kModelsDir + std::string("/llm/Llama-3-8B.yaml")).lexically_normal());
  EXPECT_TRUE(fs::exists(c.model_path));
  EXPECT_TRUE(fs::exists(c.gpu_path));
}

TEST(ScenarioConfig, AMissingCardPathIsAnErrorNamingIt) {
  const std::string message = DecodeWithError("model", "cards/nowhere.yaml");
  EXPECT_THAT(message, HasSubstr("model"));
  EXPECT_THAT(message, HasSubstr("cards/nowhere.yaml"));
}

TEST(ScenarioConfig, ModelsDirInTheConfigResolvesAgainstTheConfigDirectory) {
  const ConfigTree tree = ConfigTree::Parse(
      "models_dir: ../models\n"
      "model: Llama-3-8B\n"
      "gpu: H100-SXM\n"
      "workload:\n"
      "  trace: t.csv\n",
      KVSIM_SOURCE_DIR "/configs/scenario.yaml");
  const ScenarioConfig c = DecodeScenario(tree, "/no/such/models/dir");
  EXPECT_TRUE(fs::exists(c.model_path)) << c.model_path;
  EXPECT_TRUE(fs::exists(c.gpu_path)) << c.gpu_path;
}

// ---------------------------------------------------------------------------
// Paths

TEST(ScenarioConfig, RelativeTracePathsResolveAgainstTheConfigFileDirectory) {
  const std::string yaml = "model: Llama-3-8B\ngpu: H100-SXM\nworkload:\n  trace: TRACE\n";
  auto trace_of = [&](const std::string& trace, const std::string& origin) {
    std::string text = yaml;
    text.replace(text.find("TRACE"), 5, trace);
    return Decode(text, origin).workload.trace_path;
  };
  EXPECT_EQ(trace_of("t.csv", "/a/b/scenario.yaml"), "/a/b/t.csv");
  EXPECT_EQ(trace_of("../traces/t.csv", "/a/b/scenario.yaml"), "/a/traces/t.csv");
  EXPECT_EQ(trace_of("sub/./t.csv", "/a/b/scenario.yaml"), "/a/b/sub/t.csv");
  EXPECT_EQ(trace_of("/abs/t.csv", "/a/b/scenario.yaml"), "/abs/t.csv");
}

TEST(ScenarioConfig, ARelativeTracePathSetFromTheCommandLineResolvesAgainstTheConfigFile) {
  EXPECT_EQ(DecodeWith("workload.trace", "../shared/t.csv").workload.trace_path, "/shared/t.csv");
}

// ---------------------------------------------------------------------------
// The compare list

TEST(ScenarioConfig, CompareListGivesLabelsAndOverridesInOrder) {
  const ScenarioConfig c =
      Decode(std::string(kMinimal) +
             "compare:\n"
             "  - label: small_pages\n"
             "    set: {kv_cache.type: vattention, kv_cache.page_bytes: 64KiB}\n"
             "  - label: paged32\n"
             "    set:\n"
             "      kv_cache.type: paged\n"
             "      kv_cache.block_tokens: 32\n"
             "  - label: as_is\n"
             "    set: {}\n");
  ASSERT_EQ(c.compare.size(), 3u);
  EXPECT_EQ(c.compare[0].label, "small_pages");
  EXPECT_EQ(c.compare[0].overrides,
            (std::vector<std::pair<std::string, std::string>>{{"kv_cache.type", "vattention"},
                                                              {"kv_cache.page_bytes", "64KiB"}}));
  EXPECT_EQ(c.compare[1].label, "paged32");
  EXPECT_EQ(c.compare[1].overrides,
            (std::vector<std::pair<std::string, std::string>>{{"kv_cache.type", "paged"},
                                                              {"kv_cache.block_tokens", "32"}}));
  EXPECT_EQ(c.compare[2].label, "as_is");
  EXPECT_TRUE(c.compare[2].overrides.empty());
}

TEST(ScenarioConfig, CompareOverridesApplyToTheScenario) {
  const ConfigTree base = ConfigTree::Parse(std::string(kMinimal) +
                                                "compare:\n"
                                                "  - label: sarathi\n"
                                                "    set:\n"
                                                "      scheduler.type: sarathi\n"
                                                "      scheduler.chunk_tokens: 128\n",
                                            kOrigin);
  const ScenarioConfig c = DecodeScenario(base, kModelsDir);
  ASSERT_EQ(c.compare.size(), 1u);
  const ScenarioConfig applied = DecodeWithOverrides(base, c.compare[0].overrides);
  EXPECT_EQ(applied.scheduler.type, SchedulerType::kSarathi);
  EXPECT_EQ(applied.scheduler.chunk_tokens, 128);
}

TEST(ScenarioConfig, DuplicateCompareLabelIsAnError) {
  const std::string message = DecodeError(std::string(kMinimal) +
                                          "compare:\n"
                                          "  - label: run\n"
                                          "    set: {kv_cache.type: static}\n"
                                          "  - label: run\n"
                                          "    set: {kv_cache.type: paged}\n");
  EXPECT_THAT(message, HasSubstr("compare[1].label"));
  EXPECT_THAT(message, HasSubstr("duplicate"));
  EXPECT_THAT(message, HasSubstr("run"));
}

TEST(ScenarioConfig, CompareLabelThatCannotNameADirectoryIsAnError) {
  const std::string slash = DecodeError(std::string(kMinimal) +
                                        "compare:\n"
                                        "  - label: a/b\n");
  EXPECT_THAT(slash, HasSubstr("compare[0].label"));
  EXPECT_THAT(slash, HasSubstr("directory"));
  EXPECT_THROW(Decode(std::string(kMinimal) + "compare:\n  - label: \"a b\"\n"), InputError);
  EXPECT_THROW(Decode(std::string(kMinimal) + "compare:\n  - label: ..\n"), InputError);
  EXPECT_THROW(Decode(std::string(kMinimal) + "compare:\n  - label: \"\"\n"), InputError);
  // Control characters would split a table row or a report line; a label is a name.
  EXPECT_THROW(Decode(std::string(kMinimal) + "compare:\n  - label: \"a\\nb\"\n"), InputError);
  EXPECT_THROW(Decode(std::string(kMinimal) + "compare:\n  - label: \"a\\tb\"\n"), InputError);
  EXPECT_THROW(
      Decode(std::string(kMinimal) + "compare:\n  - label: " + std::string(65, 'x') + "\n"),
      InputError);
  EXPECT_NO_THROW(
      Decode(std::string(kMinimal) + "compare:\n  - label: " + std::string(64, 'x') + "\n"));
}

TEST(ScenarioConfig, CompareEntryWithoutALabelIsAnError) {
  const std::string message = DecodeError(std::string(kMinimal) +
                                          "compare:\n"
                                          "  - set: {kv_cache.type: static}\n");
  EXPECT_THAT(message, HasSubstr("compare[0].label"));
  EXPECT_THAT(message, HasSubstr("required"));
}

TEST(ScenarioConfig, UnknownKeyInACompareEntryIsAnError) {
  const std::string message = DecodeError(std::string(kMinimal) +
                                          "compare:\n"
                                          "  - label: a\n"
                                          "    set: {kv_cache.type: static}\n"
                                          "    sett: {kv_cache.type: paged}\n");
  EXPECT_THAT(message, HasSubstr("compare[0].sett"));
}

TEST(ScenarioConfig, CompareEntryWithoutSetRunsTheScenarioAsItIs) {
  const ScenarioConfig c = Decode(std::string(kMinimal) +
                                  "compare:\n"
                                  "  - label: baseline\n"
                                  "  - label: static\n"
                                  "    set: {kv_cache.type: static}\n");
  ASSERT_EQ(c.compare.size(), 2u);
  EXPECT_EQ(c.compare[0].label, "baseline");
  EXPECT_TRUE(c.compare[0].overrides.empty());
  EXPECT_EQ(c.compare[1].overrides.size(), 1u);
}

TEST(ScenarioConfig, CompareEntryWithAnEmptySetHasNoOverrides) {
  const ScenarioConfig c = Decode(std::string(kMinimal) +
                                  "compare:\n"
                                  "  - label: baseline\n"
                                  "    set:\n");
  ASSERT_EQ(c.compare.size(), 1u);
  EXPECT_TRUE(c.compare[0].overrides.empty());
}

TEST(ScenarioConfig, CompareThatIsNotAListIsAnError) {
  EXPECT_THAT(DecodeError(std::string(kMinimal) + "compare: static\n"), HasSubstr("compare"));
}

TEST(ScenarioConfig, CompareCannotNest) {
  const std::string message = DecodeError(std::string(kMinimal) +
                                          "compare:\n"
                                          "  - label: a\n"
                                          "    set: {compare: []}\n");
  EXPECT_THAT(message, HasSubstr("compare cannot nest"));
}

TEST(ScenarioConfig, DefaultCompareEntriesAreTheFourKvManagers) {
  const ScenarioConfig base = DecodeWith({});
  const std::vector<CompareEntry> entries = DefaultCompareEntries(base);
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].label, "static");
  EXPECT_EQ(entries[1].label, "paged");
  EXPECT_EQ(entries[2].label, "vattention_2MiB");
  EXPECT_EQ(entries[3].label, "vattention_64KiB");

  EXPECT_EQ(ApplyDelta(base, entries[0].delta).kv_cache.type, KvManagerType::kStatic);
  const ScenarioConfig paged = ApplyDelta(base, entries[1].delta);
  EXPECT_EQ(paged.kv_cache.type, KvManagerType::kPaged);
  EXPECT_EQ(paged.kv_cache.paged.block_tokens, 16);
  const ScenarioConfig big = ApplyDelta(base, entries[2].delta);
  EXPECT_EQ(big.kv_cache.type, KvManagerType::kVAttention);
  EXPECT_EQ(big.kv_cache.vattention.page_bytes, 2 << 20);
  const ScenarioConfig small = ApplyDelta(base, entries[3].delta);
  EXPECT_EQ(small.kv_cache.type, KvManagerType::kVAttention);
  EXPECT_EQ(small.kv_cache.vattention.page_bytes, 64 << 10);
}

// ---------------------------------------------------------------------------
// Profiled timing

TEST(ScenarioConfig, ProfiledTimingReadsItsProfileRelativeToTheConfigFile) {
  const ScenarioConfig c = Decode(std::string(kMinimal) +
                                  "timing:\n"
                                  "  type: profiled\n"
                                  "  profile: ../profiles/H100-SXM/profile.txt\n");
  EXPECT_EQ(c.timing.type, TimingType::kProfiled);
  EXPECT_EQ(c.timing.profile_path, "/profiles/H100-SXM/profile.txt");
  EXPECT_EQ(Decode(std::string(kMinimal) + "timing: {type: profiled, profile: /abs/p.txt}\n")
                .timing.profile_path,
            "/abs/p.txt");
}

TEST(ScenarioConfig, AProfileSetFromTheCommandLineResolvesAgainstTheConfigFile) {
  ConfigTree tree = ConfigTree::Parse(kMinimal, kOrigin);
  tree.Set("timing.type", "profiled");
  tree.Set("timing.profile", "h100/profile.txt");
  EXPECT_EQ(DecodeScenario(tree, kModelsDir).timing.profile_path, "/experiments/h100/profile.txt");
}

TEST(ScenarioConfig, ProfiledTimingWithoutAProfileIsAnErrorNamingTimingProfile) {
  const std::string message = DecodeError(std::string(kMinimal) + "timing:\n  type: profiled\n");
  EXPECT_THAT(message, HasSubstr(std::string(kOrigin) + ": timing.profile: required"));
  EXPECT_THAT(DecodeWithError("timing.type", "profiled"), HasSubstr("timing.profile"));
}

TEST(ScenarioConfig, AProfileIsOptionalForOtherTimingTypes) {
  const ScenarioConfig c = Decode(kMinimal);
  EXPECT_EQ(c.timing.profile_path, "");
  EXPECT_EQ(DecodeWith("timing.profile", "p.txt").timing.type, TimingType::kRoofline);
}

TEST(ScenarioConfig, TimingTypeListsProfiledAmongTheValidOnes) {
  EXPECT_THAT(DecodeWithError("timing.type", "measured"), HasSubstr("roofline, fixed, profiled"));
}

TEST(ScenarioConfig, EngineAndAllReduceCostsAreReadInSecondsOnceForEveryTimingModel) {
  // Defaults: the vllm_v1 preset and the card's all-reduce terms (latency < 0, bus
  // efficiency 0: "the card's").
  const ScenarioConfig defaults = Decode(kMinimal);
  const EngineConfig v1 = EnginePresetDefaults(EngineConfig::Preset::kVllmV1);
  EXPECT_EQ(defaults.timing.engine.preset, EngineConfig::Preset::kVllmV1);
  EXPECT_DOUBLE_EQ(defaults.timing.engine.per_iteration_s, v1.per_iteration_s);
  EXPECT_DOUBLE_EQ(defaults.timing.engine.per_seq_s, v1.per_seq_s);
  EXPECT_DOUBLE_EQ(defaults.timing.engine.block_table_entry_s, v1.block_table_entry_s);
  EXPECT_EQ(defaults.timing.engine.cuda_graphs, v1.cuda_graphs);
  EXPECT_LT(defaults.timing.allreduce.latency_s, 0);
  EXPECT_EQ(defaults.timing.allreduce.bus_efficiency, 0);

  // A preset, then single fields over it.
  const ScenarioConfig c = Decode(std::string(kMinimal) +
                                  "timing:\n"
                                  "  type: profiled\n"
                                  "  profile: p.txt\n"
                                  "  engine:\n"
                                  "    preset: none\n"
                                  "    per_iteration_s: 2.0e-3\n"
                                  "    per_seq_s: 1.0e-5\n"
                                  "    block_table_entry_s: 0\n"
                                  "    cuda_graphs: false\n"
                                  "    launch_per_layer_s: 3.0e-4\n"
                                  "    kernels_per_layer: 20\n"
                                  "    fused_kernels: false\n"
                                  "  allreduce:\n"
                                  "    latency_s: 1.2e-5\n"
                                  "    bus_efficiency: 0.75\n");
  EXPECT_EQ(c.timing.engine.preset, EngineConfig::Preset::kNone);
  EXPECT_DOUBLE_EQ(c.timing.engine.per_iteration_s, 2.0e-3);
  EXPECT_DOUBLE_EQ(c.timing.engine.per_seq_s, 1.0e-5);
  EXPECT_DOUBLE_EQ(c.timing.engine.block_table_entry_s, 0);
  EXPECT_FALSE(c.timing.engine.cuda_graphs);
  EXPECT_DOUBLE_EQ(c.timing.engine.launch_per_layer_s, 3.0e-4);
  EXPECT_DOUBLE_EQ(c.timing.engine.kernel_gap_s, 0);  // preset none's
  EXPECT_EQ(c.timing.engine.kernels_per_layer, 20);
  EXPECT_FALSE(c.timing.engine.fused_kernels);
  // Each field set is remembered as written, in the order the outputs name them.
  using Set = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(c.timing.engine.configured, (Set{{"per_iteration_s", "2.0e-3"},
                                             {"per_seq_s", "1.0e-5"},
                                             {"block_table_entry_s", "0"},
                                             {"cuda_graphs", "false"},
                                             {"launch_per_layer_s", "3.0e-4"},
                                             {"kernels_per_layer", "20"},
                                             {"fused_kernels", "false"}}));
  EXPECT_DOUBLE_EQ(c.timing.allreduce.latency_s, 1.2e-5);
  EXPECT_DOUBLE_EQ(c.timing.allreduce.bus_efficiency, 0.75);
}

TEST(ScenarioConfig, FewerKernelsPerLayerThanAFusedEngineAreRefused) {
  EXPECT_THAT(DecodeError(std::string(kMinimal) + "timing:\n  engine:\n    kernels_per_layer: 5\n"),
              HasSubstr("timing.engine.kernels_per_layer: must be 0 (a fused engine's 10) or at "
                        "least 10, got 5"));
}

TEST(ScenarioConfig, TheOldPerModelCostKeysAreRefusedNamingWhereTheyMoved) {
  struct Moved {
    std::string model, key, now;
  };
  for (const auto& [model, key, now] :
       std::vector<Moved>{{"profiled", "cpu_overhead_s", "timing.engine.per_iteration_s"},
                          {"profiled", "cpu_per_seq_s", "timing.engine.per_seq_s"},
                          {"profiled", "block_table_entry_s", "timing.engine.block_table_entry_s"},
                          {"profiled", "allreduce_latency_s", "timing.allreduce.latency_s"},
                          {"roofline", "cpu_overhead_s", "timing.engine.per_iteration_s"},
                          {"roofline", "paged_decode_slowdown", "kv_cache.paged_kernel"},
                          {"roofline", "paged_prefill_slowdown", "kv_cache.paged_kernel"}}) {
    SCOPED_TRACE(model + "." + key);
    const std::string message =
        DecodeError(std::string(kMinimal) + "timing:\n  " + model + ":\n    " + key + ": 1.0e-3\n");
    EXPECT_THAT(message,
                HasSubstr(std::string(kOrigin) + ":7: timing." + model + "." + key + ": moved"));
    EXPECT_THAT(message, HasSubstr("use " + now + " (timing." + model + " no longer has it)"));
  }
}

TEST(ScenarioConfig, UnknownKeyUnderTimingProfiledIsAnErrorNamingItsFullPath) {
  const std::string message = DecodeError(std::string(kMinimal) +
                                          "timing:\n"
                                          "  profiled:\n"
                                          "    gemm_efficiency: 0.7\n");
  EXPECT_THAT(message, HasSubstr(std::string(kOrigin) + ":7: timing.profiled.gemm_efficiency"));
  EXPECT_THAT(message, HasSubstr("unknown key"));
}

TEST(ScenarioConfig, TheVmmKeysTheConfigSetsAreRemembered) {
  const ScenarioConfig none = Decode(kMinimal);
  EXPECT_FALSE(none.kv_cache.vmm_set.map_s);
  EXPECT_FALSE(none.kv_cache.vmm_set.set_access_s);
  EXPECT_FALSE(none.kv_cache.vmm_set.unmap_s);

  const ScenarioConfig one =
      Decode(std::string(kMinimal) + "kv_cache:\n  vmm: {set_access_s: 3.0e-5}\n");
  EXPECT_FALSE(one.kv_cache.vmm_set.map_s);
  EXPECT_TRUE(one.kv_cache.vmm_set.set_access_s);
  EXPECT_FALSE(one.kv_cache.vmm_set.unmap_s);
  EXPECT_EQ(one.kv_cache.vattention.set_access_latency, Nanos(30000));

  const ScenarioConfig all = DecodeWith({{"kv_cache.vmm.map_s", "1e-6"},
                                         {"kv_cache.vmm.set_access_s", "2e-5"},
                                         {"kv_cache.vmm.unmap_s", "1e-5"}});
  EXPECT_TRUE(all.kv_cache.vmm_set.map_s);
  EXPECT_TRUE(all.kv_cache.vmm_set.set_access_s);
  EXPECT_TRUE(all.kv_cache.vmm_set.unmap_s);
}

// ---------------------------------------------------------------------------
// vAttention's VMM backend (kv_cache.vmm.backend)

TEST(ScenarioConfig, VmmBackendAutoIsUvmBelowTwoMiBPagesAndStockOtherwise) {
  EXPECT_EQ(Decode(kMinimal).kv_cache.vattention.backend, VmmBackend::kStock);  // 2 MiB default
  for (const char* page : {"64KiB", "128KiB", "256KiB"}) {
    EXPECT_EQ(DecodeWith("kv_cache.page_bytes", page).kv_cache.vattention.backend, VmmBackend::kUvm)
        << page;
  }
  EXPECT_EQ(DecodeWith("kv_cache.page_bytes", "2MiB").kv_cache.vattention.backend,
            VmmBackend::kStock);
  EXPECT_EQ(DecodeWith({{"kv_cache.page_bytes", "64KiB"}, {"kv_cache.vmm.backend", "auto"}})
                .kv_cache.vattention.backend,
            VmmBackend::kUvm);
}

TEST(ScenarioConfig, PagedPrefixCachingAndKernelAreReadAndOffAndFlashByDefault) {
  const ScenarioConfig defaults = DecodeWith({});
  EXPECT_FALSE(defaults.kv_cache.paged.prefix_caching);
  EXPECT_EQ(defaults.kv_cache.paged_kernel, PagedKernel::kFlashPaged);
  const ScenarioConfig c = DecodeWith(
      {{"kv_cache.prefix_caching", "true"}, {"kv_cache.paged_kernel", "flashinfer_paged"}});
  EXPECT_TRUE(c.kv_cache.paged.prefix_caching);
  EXPECT_EQ(c.kv_cache.paged_kernel, PagedKernel::kFlashInferPaged);
}

TEST(ScenarioConfig, VAttentionPrefixCachingIsReadIntoTheVAttentionConfigAndOffByDefault) {
  EXPECT_FALSE(DecodeWith("kv_cache.type", "vattention").kv_cache.vattention.prefix_caching);
  const ScenarioConfig c =
      DecodeWith({{"kv_cache.type", "vattention"}, {"kv_cache.prefix_caching", "true"}});
  EXPECT_EQ(c.kv_cache.type, KvManagerType::kVAttention);
  EXPECT_TRUE(c.kv_cache.vattention.prefix_caching);
}

TEST(ScenarioConfig, StaticReservationWithPrefixCachingIsAnErrorNamingTheKeyPath) {
  const std::string message = DecodeError(std::string(kMinimal) +
                                          "kv_cache:\n"
                                          "  type: static\n"
                                          "  prefix_caching: true\n");
  EXPECT_THAT(message, HasSubstr(std::string(kOrigin) + ":7: kv_cache.prefix_caching: "
                                                        "static reservation shares nothing"));
  EXPECT_THAT(message, HasSubstr("FasterTransformer"));
  // Off is what static reservation does anyway.
  EXPECT_NO_THROW(DecodeWith({{"kv_cache.type", "static"}, {"kv_cache.prefix_caching", "false"}}));
}

TEST(ScenarioConfig, TheDefaultStaticCompareEntryRunsWithoutPrefixCachingOnACachingBase) {
  // configs/multiturn_sessions.yaml turns prefix caching on; its default comparison
  // still runs the static column (without a cache) and caches under the others.
  const ScenarioConfig base = DecodeScenario(
      ConfigTree::Load(KVSIM_SOURCE_DIR "/configs/multiturn_sessions.yaml"), kModelsDir);
  for (const CompareEntry& e : DefaultCompareEntries(base)) {
    const ScenarioConfig c = ApplyDelta(base, e.delta);
    if (e.label == "static") {
      EXPECT_FALSE(c.kv_cache.paged.prefix_caching);
    } else {
      EXPECT_TRUE(c.kv_cache.vattention.prefix_caching) << e.label;
      EXPECT_TRUE(c.kv_cache.paged.prefix_caching) << e.label;
    }
  }
}

TEST(ScenarioConfig, VmmBackendCanBeNamed) {
  EXPECT_EQ(DecodeWith({{"kv_cache.page_bytes", "2MiB"}, {"kv_cache.vmm.backend", "stock"}})
                .kv_cache.vattention.backend,
            VmmBackend::kStock);
  EXPECT_EQ(DecodeWith({{"kv_cache.page_bytes", "256KiB"}, {"kv_cache.vmm.backend", "uvm"}})
                .kv_cache.vattention.backend,
            VmmBackend::kUvm);
}

TEST(ScenarioConfig, SmallPagesOnTheStockBackendAreAnErrorNamingTheGranularity) {
  const std::string message = DecodeError(std::string(kMinimal) +
                                          "kv_cache:\n"
                                          "  type: vattention\n"
                                          "  page_bytes: 64KiB\n"
                                          "  vmm: {backend: stock}\n");
  EXPECT_THAT(message,
              HasSubstr(std::string(kOrigin) +
                        ":7: kv_cache.page_bytes: 64 KiB pages need the uvm backend (vAttention's "
                        "modified driver): the stock CUDA driver maps in multiples of its 2 MiB "
                        "allocation granularity; set kv_cache.vmm.backend: uvm or page_bytes: "
                        "2MiB"));
}

TEST(ScenarioConfig, TwoMiBPagesOnTheUvmBackendAreAnErrorOnTheBackend) {
  // vAttention's driver maps 64, 128 and 256 KiB pages; 2 MiB ones take CUDA's path
  // (repo vattention/utils.h is_uvm_backend, uvmInternal.h do_cuda_uvm_init).
  const std::string message = DecodeError(std::string(kMinimal) +
                                          "kv_cache:\n"
                                          "  type: vattention\n"
                                          "  page_bytes: 2MiB\n"
                                          "  vmm:\n"
                                          "    backend: uvm\n");
  EXPECT_THAT(message, HasSubstr(std::string(kOrigin) + ":9: kv_cache.vmm.backend: uvm"));
  EXPECT_THAT(message, HasSubstr("not 2 MiB"));
}

TEST(ScenarioConfig, VmmSettingsOfAManagerThatIsNotVAttentionAreNotChecked) {
  // A paged run whose config also carries vAttention settings (say, for a compare
  // entry) decodes; the page size is checked only where vAttention runs.
  EXPECT_NO_THROW(DecodeWith({{"kv_cache.type", "paged"},
                              {"kv_cache.page_bytes", "2MiB"},
                              {"kv_cache.vmm.backend", "uvm"}}));
}

TEST(ScenarioConfig, AVmmCallLongerThanASecondIsRefused) {
  EXPECT_THAT(DecodeWithError("kv_cache.vmm.uvm_map_s", "1e6"),
              HasSubstr("kv_cache.vmm.uvm_map_s (set by an override): must be in [0, 1]"));
}

TEST(ScenarioConfig, AnUnknownVmmBackendListsTheValidOnes) {
  EXPECT_THAT(DecodeWithError("kv_cache.vmm.backend", "cuda"),
              HasSubstr("kv_cache.vmm.backend (set by an override): unknown value 'cuda'; valid: "
                        "auto, stock, uvm"));
}

TEST(ScenarioConfig, TheUvmMapLatencyIsReadInSecondsAndDefaultsToThePapersNineMicroseconds) {
  EXPECT_EQ(Decode(kMinimal).kv_cache.vattention.uvm_map_latency, Nanos(9'000));
  EXPECT_EQ(DecodeWith("kv_cache.vmm.uvm_map_s", "1.2e-5").kv_cache.vattention.uvm_map_latency,
            Nanos(12'000));
}

TEST(ScenarioConfig, TheDefaultVAttentionCompareEntriesPickTheirBackendWhateverTheBase) {
  // A base config naming the stock backend still compares 64 KiB pages (on uvm).
  const ScenarioConfig stock = DecodeWith("kv_cache.vmm.backend", "stock");
  EXPECT_EQ(ApplyDelta(stock, DefaultCompareEntries(stock)[3].delta).kv_cache.vattention.backend,
            VmmBackend::kUvm);
  const ScenarioConfig uvm =
      DecodeWith({{"kv_cache.page_bytes", "64KiB"}, {"kv_cache.vmm.backend", "uvm"}});
  EXPECT_EQ(ApplyDelta(uvm, DefaultCompareEntries(uvm)[2].delta).kv_cache.vattention.backend,
            VmmBackend::kStock);
}

TEST(ScenarioConfig, AnArrivalOrLengthKeyTheProcessOrSourceDoesNotReadIsAnError) {
  EXPECT_THAT(
      DecodeError(std::string(kMinimal) + "  arrival: {process: poisson, rate_qps: 2, cv: 3}\n"),
      HasSubstr("workload.arrival.cv: poisson arrivals do not read it (gamma only)"));
  EXPECT_THAT(
      DecodeError(std::string(kMinimal) +
                  "  lengths: {source: fixed, prompt_tokens: 9, max_prompt_tokens: 20}\n"),
      HasSubstr("workload.lengths.max_prompt_tokens: the fixed length source does not read it "
                "(uniform only)"));
  // One the file wrote for a process an override has replaced is left behind.
  const ConfigTree tree = [] {
    ConfigTree t = ConfigTree::Parse(
        std::string(kMinimal) + "  arrival: {process: gamma, rate_qps: 2, cv: 3}\n", kOrigin);
    t.Set("workload.arrival.process=poisson");
    return t;
  }();
  EXPECT_EQ(DecodeScenario(tree, kModelsDir).workload.arrival, ArrivalProcess::kPoisson);
}

TEST(ScenarioConfig, EngineTermsTheFixedTimingModelDoesNotReadAreErrors) {
  EXPECT_THAT(DecodeError(std::string(kMinimal) +
                          "timing: {type: fixed, engine: {per_iteration_s: 0.01}}\n"),
              HasSubstr("timing.engine.per_iteration_s: the fixed timing model does not read it"));
  EXPECT_THAT(DecodeError(std::string(kMinimal) +
                          "timing: {type: fixed, roofline: {gemm_efficiency: 0.5}}\n"),
              HasSubstr("timing.roofline: the fixed timing model does not read it"));
  EXPECT_THAT(DecodeError(std::string(kMinimal) +
                          "timing: {type: roofline, fixed: {per_iteration_s: 0.01}}\n"),
              HasSubstr("timing.fixed: the roofline timing model does not read it (fixed only)"));
  // The per-request delays apply under every model.
  const ScenarioConfig c =
      Decode(std::string(kMinimal) + "timing: {type: fixed, engine: {request_arrival_s: 0.5}}\n");
  EXPECT_DOUBLE_EQ(c.timing.engine.request_arrival_s, 0.5);
}

TEST(ScenarioConfig, TheDefaultPagedCompareEntryKeepsTheBlockSizeTheConfigWrote) {
  const ScenarioConfig base = DecodeWith("kv_cache.block_tokens", "128");
  const std::vector<CompareEntry> entries = DefaultCompareEntries(base);
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[1].label, "paged128");
  EXPECT_EQ(ApplyDelta(base, entries[1].delta).kv_cache.paged.block_tokens, 128);
  // Written as vLLM's own 16, the label stays "paged".
  EXPECT_EQ(DefaultCompareEntries(DecodeWith("kv_cache.block_tokens", "16"))[1].label, "paged");
}

TEST(ScenarioConfig, TheDefaultCompareEntriesAddThePageSizeTheConfigWrote) {
  const ScenarioConfig base = DecodeWith({{"kv_cache.type", "vattention"},
                                          {"kv_cache.page_bytes", "256KiB"},
                                          {"kv_cache.vmm.backend", "uvm"}});
  const std::vector<CompareEntry> entries = DefaultCompareEntries(base);
  ASSERT_EQ(entries.size(), 5u);
  EXPECT_EQ(entries[2].label, "vattention_2MiB");
  EXPECT_EQ(entries[3].label, "vattention_256KiB");
  EXPECT_EQ(entries[4].label, "vattention_64KiB");
  const ScenarioConfig mid = ApplyDelta(base, entries[3].delta);
  EXPECT_EQ(mid.kv_cache.vattention.page_bytes, 256 << 10);
  EXPECT_EQ(mid.kv_cache.vattention.backend, VmmBackend::kUvm);
  // Written as one of the default sizes, no entry is added.
  EXPECT_EQ(DefaultCompareEntries(DecodeWith("kv_cache.page_bytes", "64KiB")).size(), 4u);
}

// ---------------------------------------------------------------------------
// Trace formats: csv with workload.columns, burstgpt, benchmark_serving

// The minimal scenario with a csv trace and `columns` (a YAML flow mapping) on line 6.
std::string CsvScenario(const std::string& columns) {
  return "model: Llama-3-8B\n"
         "gpu: H100-SXM\n"
         "workload:\n"
         "  trace: traces/t.csv\n"
         "  format: csv\n"
         "  columns: " +
         columns + "\n";
}

TEST(ScenarioConfig, CsvFormatReadsTheHeaderNamesOfItsColumns) {
  const ScenarioConfig c = Decode(CsvScenario(
      "{arrival: ts, arrival_unit: ms, prompt_tokens: n_in, output_tokens: \"n out\"}"));
  EXPECT_EQ(c.workload.trace_format, TraceFormat::kCsv);
  EXPECT_EQ(c.workload.columns.arrival, "ts");
  EXPECT_EQ(c.workload.columns.arrival_unit, ArrivalUnit::kMilliseconds);
  EXPECT_EQ(c.workload.columns.prompt_tokens, "n_in");
  EXPECT_EQ(c.workload.columns.output_tokens, "n out");
  EXPECT_EQ(c.workload.arrival, ArrivalProcess::kTrace);
}

TEST(ScenarioConfig, CsvArrivalUnitsAreSecondsUnlessNamed) {
  const std::string base = "{arrival: t, prompt_tokens: p, output_tokens: o";
  EXPECT_EQ(Decode(CsvScenario(base + "}")).workload.columns.arrival_unit, ArrivalUnit::kSeconds);
  const std::pair<const char*, ArrivalUnit> units[] = {{"s", ArrivalUnit::kSeconds},
                                                       {"ms", ArrivalUnit::kMilliseconds},
                                                       {"us", ArrivalUnit::kMicroseconds},
                                                       {"timestamp", ArrivalUnit::kTimestamp}};
  for (const auto& [name, unit] : units) {
    EXPECT_EQ(
        Decode(CsvScenario(base + ", arrival_unit: " + name + "}")).workload.columns.arrival_unit,
        unit)
        << name;
  }
  EXPECT_THAT(DecodeError(CsvScenario(base + ", arrival_unit: min}")),
              HasSubstr(std::string(kOrigin) +
                        ":6: workload.columns.arrival_unit: unknown value 'min'; valid: s, ms, "
                        "us, timestamp"));
}

TEST(ScenarioConfig, CsvColumnsCanBeSetFromTheCommandLine) {
  const ScenarioConfig c = DecodeWith({{"workload.format", "csv"},
                                       {"workload.columns.prompt_tokens", "in"},
                                       {"workload.columns.output_tokens", "out"},
                                       {"workload.arrival.process", "poisson"},
                                       {"workload.arrival.rate_qps", "3"}});
  EXPECT_EQ(c.workload.columns.prompt_tokens, "in");
  EXPECT_TRUE(c.workload.columns.arrival.empty());
}

TEST(ScenarioConfig, CsvFormatWithoutColumnsIsAnErrorAtTheFormatLine) {
  const std::string message =
      DecodeError("model: Llama-3-8B\ngpu: H100-SXM\nworkload:\n  trace: t.csv\n  format: csv\n");
  EXPECT_THAT(message, HasSubstr(std::string(kOrigin) +
                                 ":5: workload.format: format csv needs workload.columns"));
}

TEST(ScenarioConfig, ColumnsWithAnotherFormatAreAnError) {
  const std::string message = DecodeError(
      "model: Llama-3-8B\ngpu: H100-SXM\nworkload:\n  trace: t.csv\n"
      "  columns: {prompt_tokens: p, output_tokens: o}\n");
  EXPECT_THAT(message, HasSubstr(std::string(kOrigin) +
                                 ":5: workload.columns: valid only with format: csv (the format "
                                 "is auto"));
  EXPECT_THAT(DecodeWithError("workload.columns.prompt_tokens", "p"),
              HasSubstr(std::string(kOrigin) + ": workload.columns: valid only with format: csv"));
}

TEST(ScenarioConfig, UnknownKeyUnderColumnsIsAnErrorNamingItsFullPath) {
  const std::string message =
      DecodeError(CsvScenario("{prompt: p, prompt_tokens: p, output_tokens: o}"));
  EXPECT_THAT(message,
              HasSubstr(std::string(kOrigin) + ":6: workload.columns.prompt: unknown key"));
  EXPECT_THAT(message, HasSubstr("valid keys here: arrival, arrival_unit, output_tokens, "
                                 "prompt_tokens"));
  EXPECT_THAT(InputErrorMessage([] {
                DecodeWith({{"workload.format", "csv"},
                            {"workload.columns", "{prompt_tokens: p, output_tokens: o}"},
                            {"workload.columns.typo", "1"}});
              }),
              HasSubstr("workload.columns.typo (set by an override): unknown key"));
}

TEST(ScenarioConfig, CsvColumnsNeedThePromptAndOutputColumnsNamed) {
  EXPECT_THAT(DecodeError(CsvScenario("{output_tokens: o}")),
              HasSubstr(std::string(kOrigin) +
                        ":6: workload.columns: missing key prompt_tokens: the header name of "
                        "the prompt length column"));
  EXPECT_THAT(DecodeError(CsvScenario("{prompt_tokens: p}")),
              HasSubstr("workload.columns: missing key output_tokens"));
  EXPECT_THAT(DecodeError(CsvScenario("{prompt_tokens: \"\", output_tokens: o}")),
              HasSubstr("workload.columns.prompt_tokens: must name a column"));
  EXPECT_THAT(DecodeError(CsvScenario("{prompt_tokens: [a], output_tokens: o}")),
              HasSubstr("workload.columns.prompt_tokens: expected a string"));
  EXPECT_THAT(DecodeError(CsvScenario("[p, o]")),
              HasSubstr("workload.columns: expected a mapping"));
}

TEST(ScenarioConfig, AnArrivalUnitWithoutAnArrivalColumnIsAnError) {
  EXPECT_THAT(DecodeError(CsvScenario("{arrival_unit: ms, prompt_tokens: p, output_tokens: o}")),
              HasSubstr("workload.columns.arrival_unit: describes the arrival column, but "
                        "workload.columns.arrival is not set"));
}

TEST(ScenarioConfig, ACsvTraceWithoutAnArrivalColumnNeedsSyntheticArrivals) {
  const std::string columns = "{prompt_tokens: p, output_tokens: o}";
  EXPECT_THAT(DecodeError(CsvScenario(columns)),
              HasSubstr("workload.arrival.process: 'trace' arrivals need a trace with "
                        "timestamps, but workload.columns names no arrival column"));
  const ScenarioConfig c =
      Decode(CsvScenario(columns) + "  arrival: {process: poisson, rate_qps: 2}\n");
  EXPECT_EQ(c.workload.arrival, ArrivalProcess::kPoisson);
}

TEST(ScenarioConfig, BurstGptAndBenchmarkServingAreTraceFormats) {
  EXPECT_EQ(DecodeWith("workload.format", "burstgpt").workload.trace_format,
            TraceFormat::kBurstGpt);
  // With its arrival process set, a benchmark_serving trace is not read while decoding.
  EXPECT_EQ(DecodeWith({{"workload.format", "benchmark_serving"},
                        {"workload.arrival.process", "poisson"},
                        {"workload.arrival.rate_qps", "2"}})
                .workload.trace_format,
            TraceFormat::kBenchmarkServing);
  EXPECT_THAT(DecodeWithError("workload.format", "parquet"),
              HasSubstr("valid: auto, azure, splitwise, lengths, mooncake, csv, burstgpt, "
                        "benchmark_serving"));
}

TEST(ScenarioConfig, TheBundledCustomCsvConfigNamesItsColumns) {
  const ScenarioConfig c = DecodeScenario(
      ConfigTree::Load(KVSIM_SOURCE_DIR "/configs/custom_csv_trace.yaml"), kModelsDir);
  EXPECT_EQ(c.workload.trace_format, TraceFormat::kCsv);
  EXPECT_TRUE(fs::exists(c.workload.trace_path));
  EXPECT_EQ(c.workload.columns.arrival, "sent_at");
  EXPECT_EQ(c.workload.columns.arrival_unit, ArrivalUnit::kTimestamp);
  EXPECT_EQ(c.workload.columns.prompt_tokens, "input_tokens");
  EXPECT_EQ(c.workload.columns.output_tokens, "output_tokens");
}

// A benchmark_serving result with `run` (members, each followed by ", ") in `dir`.
std::string WriteResult(const kvsim::testing::TempDir& dir, const std::string& name,
                        const std::string& run) {
  return dir.Write(name, "{" + run + R"("input_lens": [5, 6], "output_lens": [1, 2]})");
}

// The minimal scenario in `dir` whose trace is `trace`, with `more` YAML lines appended to
// its workload section.
ScenarioConfig DecodeResultScenario(const kvsim::testing::TempDir& dir, const std::string& trace,
                                    const std::string& more = "") {
  return Decode("model: Llama-3-8B\ngpu: H100-SXM\nworkload:\n  trace: " + trace + "\n" + more,
                dir.PathOf("scenario.yaml"));
}

TEST(ScenarioConfig, ABenchmarkServingTraceArrivesAsItsRunSentRequests) {
  const kvsim::testing::TempDir dir;
  WriteResult(dir, "poisson.json", R"("request_rate": 4, "burstiness": 1.0, )");
  const ScenarioConfig poisson = DecodeResultScenario(dir, "poisson.json");
  EXPECT_EQ(poisson.workload.trace_format, TraceFormat::kAuto);
  EXPECT_EQ(poisson.workload.arrival, ArrivalProcess::kPoisson);
  EXPECT_DOUBLE_EQ(poisson.workload.rate_qps, 4.0);

  // Burstiness 0.25 is a gamma shape of 0.25: cv = 1 / sqrt(0.25) = 2.
  WriteResult(dir, "gamma.json", R"("request_rate": 3, "burstiness": 0.25, )");
  const ScenarioConfig gamma =
      DecodeResultScenario(dir, "gamma.json", "  format: benchmark_serving\n");
  EXPECT_EQ(gamma.workload.arrival, ArrivalProcess::kGamma);
  EXPECT_DOUBLE_EQ(gamma.workload.rate_qps, 3.0);
  EXPECT_DOUBLE_EQ(gamma.workload.cv, 2.0);

  // request_rate "inf": every request at 0 s, the reader's arrivals.
  WriteResult(dir, "inf.json", R"("request_rate": "inf", "burstiness": 1.0, )");
  const ScenarioConfig at_once = DecodeResultScenario(dir, "inf.json");
  EXPECT_EQ(at_once.workload.arrival, ArrivalProcess::kTrace);
  EXPECT_DOUBLE_EQ(at_once.workload.rate_qps, 0.0);
}

TEST(ScenarioConfig, ABenchmarkServingTraceTakesTheRateAndCvTheConfigSets) {
  const kvsim::testing::TempDir dir;
  WriteResult(dir, "gamma.json", R"("request_rate": 3, "burstiness": 0.25, )");
  const ScenarioConfig rate = DecodeResultScenario(dir, "gamma.json", "  arrival: {rate_qps: 9}\n");
  EXPECT_EQ(rate.workload.arrival, ArrivalProcess::kGamma);
  EXPECT_DOUBLE_EQ(rate.workload.rate_qps, 9.0);
  EXPECT_DOUBLE_EQ(rate.workload.cv, 2.0);
  const ScenarioConfig cv = DecodeResultScenario(dir, "gamma.json", "  arrival: {cv: 1.5}\n");
  EXPECT_DOUBLE_EQ(cv.workload.rate_qps, 3.0);
  EXPECT_DOUBLE_EQ(cv.workload.cv, 1.5);
  // A Poisson run (burstiness 1) given a cv arrives with gamma gaps of that cv.
  WriteResult(dir, "poisson.json", R"("request_rate": 4, "burstiness": 1.0, )");
  const ScenarioConfig shaped = DecodeResultScenario(dir, "poisson.json", "  arrival: {cv: 3}\n");
  EXPECT_EQ(shaped.workload.arrival, ArrivalProcess::kGamma);
  EXPECT_DOUBLE_EQ(shaped.workload.cv, 3.0);
  // A process named in the config replaces the file's altogether.
  const ScenarioConfig own =
      DecodeResultScenario(dir, "gamma.json", "  arrival: {process: poisson, rate_qps: 7}\n");
  EXPECT_EQ(own.workload.arrival, ArrivalProcess::kPoisson);
  EXPECT_DOUBLE_EQ(own.workload.rate_qps, 7.0);
  EXPECT_DOUBLE_EQ(own.workload.cv, 1.0);
}

TEST(ScenarioConfig, AClosedLoopBenchmarkServingRunNeedsTheArrivalProcessSet) {
  const kvsim::testing::TempDir dir;
  const std::string result =
      WriteResult(dir, "closed.json", R"("request_rate": 4, "max_concurrency": 16, )");
  const std::string message = InputErrorMessage([&] { DecodeResultScenario(dir, "closed.json"); });
  EXPECT_THAT(message, HasSubstr(dir.PathOf("scenario.yaml") + ":4: workload.trace: " + result +
                                 ":1: 'max_concurrency': the run was limited to 16 concurrent "
                                 "requests"));
  EXPECT_THAT(message, HasSubstr("set workload.arrival.process"));
  EXPECT_NO_THROW(
      DecodeResultScenario(dir, "closed.json", "  arrival: {process: poisson, rate_qps: 2}\n"));
}

TEST(ScenarioConfig, ABenchmarkServingBurstinessBeyondTheGammaSamplerIsAnError) {
  const kvsim::testing::TempDir dir;
  WriteResult(dir, "bursty.json", R"("request_rate": 4, "burstiness": 1e-8, )");
  EXPECT_THAT(InputErrorMessage([&] { DecodeResultScenario(dir, "bursty.json"); }),
              HasSubstr("'burstiness': 1e-08 gives gamma arrivals a coefficient of variation of "
                        "10000, outside [0.001, 1000]"));
}

TEST(ScenarioConfig, AJsonTraceThatIsNoBenchmarkServingResultIsLeftToTheWorkload) {
  const kvsim::testing::TempDir dir;
  dir.Write("mooncake.json", "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 2}\n");
  EXPECT_EQ(DecodeResultScenario(dir, "mooncake.json").workload.arrival, ArrivalProcess::kTrace);
  EXPECT_EQ(DecodeResultScenario(dir, "missing.json").workload.arrival, ArrivalProcess::kTrace);
  // Named benchmark_serving, a missing file is an error of the workload.trace key.
  EXPECT_THAT(InputErrorMessage([&] {
                DecodeResultScenario(dir, "missing.json", "  format: benchmark_serving\n");
              }),
              HasSubstr(":4: workload.trace: " + dir.PathOf("missing.json") +
                        ":1: cannot open trace file"));
}

TEST(ScenarioConfig, WeightAndKvDtypesDefaultToTheCheckpointsAndRefuseOthers) {
  const ScenarioConfig plain = Decode(std::string(kMinimal));
  EXPECT_EQ(plain.deployment.weight_dtype, Dtype::kAuto);
  EXPECT_EQ(plain.kv_cache.dtype, Dtype::kAuto);
  EXPECT_EQ(DtypeBytes(Dtype::kAuto, 2), 2);
  EXPECT_EQ(DtypeBytes(Dtype::kFp8, 2), 1);
  EXPECT_EQ(DtypeBytes(Dtype::kBf16, 4), 2);
  const ScenarioConfig fp8 =
      Decode(std::string(kMinimal) + "deployment: {weight_dtype: fp8}\nkv_cache: {dtype: fp8}\n");
  EXPECT_EQ(fp8.deployment.weight_dtype, Dtype::kFp8);
  EXPECT_EQ(fp8.kv_cache.dtype, Dtype::kFp8);
  EXPECT_THAT(DecodeError(std::string(kMinimal) + "kv_cache: {dtype: int4}\n"),
              HasSubstr("kv_cache.dtype: unknown value 'int4'; valid: auto, bf16, fp16, fp8"));
}

// ---------------------------------------------------------------------------
// Prefix sharing: workload.shared_prefix and workload.sessions

TEST(ScenarioConfig, SharedPrefixAndSessionsAreOffUnlessConfigured) {
  const ScenarioConfig c = Decode(kMinimal);
  EXPECT_EQ(c.workload.shared_prefix.tokens, 0);
  EXPECT_EQ(c.workload.sessions.turns, 0);
  EXPECT_DOUBLE_EQ(c.workload.sessions.think_time_s, 0.0);
}

TEST(ScenarioConfig, SharedPrefixAndSessionsAreReadWithTheirValues) {
  const ScenarioConfig c = Decode(std::string(kMinimal) +
                                  "  shared_prefix: {tokens: 1000, fraction: 0.5, groups: 3}\n"
                                  "  sessions: {turns: 4, think_time_s: 30}\n");
  EXPECT_EQ(c.workload.shared_prefix.tokens, 1000);
  EXPECT_DOUBLE_EQ(c.workload.shared_prefix.fraction, 0.5);
  EXPECT_EQ(c.workload.shared_prefix.groups, 3);
  EXPECT_EQ(c.workload.sessions.turns, 4);
  EXPECT_DOUBLE_EQ(c.workload.sessions.think_time_s, 30.0);
}

TEST(ScenarioConfig, ASharedPrefixReachesEveryRequestOfOneGroupUnlessTold) {
  const ScenarioConfig c = Decode(std::string(kMinimal) + "  shared_prefix: {tokens: 64}\n");
  EXPECT_EQ(c.workload.shared_prefix.tokens, 64);
  EXPECT_DOUBLE_EQ(c.workload.shared_prefix.fraction, 1.0);
  EXPECT_EQ(c.workload.shared_prefix.groups, 1);
}

TEST(ScenarioConfig, PrefixSharingValuesOutOfRangeAreErrorsNamingTheFileLineAndKey) {
  const struct {
    const char* yaml;  // under workload:, on line 5
    const char* message;
  } cases[] = {
      {"  shared_prefix: {tokens: 0}\n", ":5: workload.shared_prefix.tokens: must be >= 1, got 0"},
      {"  shared_prefix: {tokens: 16777217}\n",
       ":5: workload.shared_prefix.tokens: must be <= 16777216, got 16777217"},
      {"  shared_prefix: {tokens: 10, fraction: 1.5}\n",
       ":5: workload.shared_prefix.fraction: must be in [0, 1], got 1.5"},
      {"  shared_prefix: {tokens: 10, fraction: -0.1}\n", ":5: workload.shared_prefix.fraction"},
      {"  shared_prefix: {tokens: 10, groups: 0}\n",
       ":5: workload.shared_prefix.groups: must be >= 1, got 0"},
      {"  shared_prefix: {tokens: 10, groups: 1048577}\n",
       ":5: workload.shared_prefix.groups: must be <= 1048576, got 1048577"},
      {"  shared_prefix: {tokens: many}\n",
       ":5: workload.shared_prefix.tokens: expected an integer, got 'many'"},
      {"  sessions: {turns: 0, think_time_s: 30}\n",
       ":5: workload.sessions.turns: must be >= 1, got 0"},
      {"  sessions: {turns: 10001, think_time_s: 30}\n",
       ":5: workload.sessions.turns: must be <= 10000, got 10001"},
      {"  sessions: {turns: 4, think_time_s: -1}\n",
       ":5: workload.sessions.think_time_s: must be in"},
      {"  sessions: {turns: 4, think_time_s: 2e6}\n",
       ":5: workload.sessions.think_time_s: must be in"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.yaml);
    EXPECT_THAT(DecodeError(std::string(kMinimal) + c.yaml),
                HasSubstr(std::string(kOrigin) + c.message));
  }
}

TEST(ScenarioConfig, UnknownKeyUnderSharedPrefixOrSessionsIsAnErrorNamingItsFullPath) {
  const std::string prefix = DecodeError(std::string(kMinimal) +
                                         "  shared_prefix:\n"
                                         "    tokens: 100\n"
                                         "    fraction_of_requests: 0.5\n");
  EXPECT_THAT(prefix, HasSubstr(std::string(kOrigin) +
                                ":7: workload.shared_prefix.fraction_of_requests: unknown key; "
                                "valid keys here: fraction, groups, tokens"));
  const std::string sessions =
      DecodeError(std::string(kMinimal) + "  sessions: {turns: 4, think_time_s: 30, think: 3}\n");
  EXPECT_THAT(sessions, HasSubstr(std::string(kOrigin) +
                                  ":5: workload.sessions.think: unknown key; valid keys here: "
                                  "think_time_s, turns"));
  EXPECT_THAT(DecodeError(std::string(kMinimal) + "  session: {turns: 4}\n"),
              HasSubstr(std::string(kOrigin) + ":5: workload.session: unknown key"));
}

TEST(ScenarioConfig, ASharedPrefixNeedsItsTokensAndSessionsTheirTurnsAndThinkTime) {
  EXPECT_THAT(DecodeError(std::string(kMinimal) + "  shared_prefix: {fraction: 0.5}\n"),
              HasSubstr(std::string(kOrigin) +
                        ":5: workload.shared_prefix: missing key tokens: the length of each "
                        "shared prompt, in tokens"));
  EXPECT_THAT(DecodeError(std::string(kMinimal) + "  sessions: {think_time_s: 30}\n"),
              HasSubstr(std::string(kOrigin) + ":5: workload.sessions: missing key turns"));
  EXPECT_THAT(DecodeError(std::string(kMinimal) + "  sessions: {turns: 4}\n"),
              HasSubstr(std::string(kOrigin) + ":5: workload.sessions: missing key think_time_s"));
  EXPECT_THAT(DecodeError(std::string(kMinimal) + "  sessions: 4\n"),
              HasSubstr(std::string(kOrigin) + ":5: workload.sessions: expected a mapping"));
}

TEST(ScenarioConfig, PrefixSharingCanBeSetFromTheCommandLine) {
  const ScenarioConfig c = DecodeWith({{"workload.sessions.turns", "3"},
                                       {"workload.sessions.think_time_s", "12.5"},
                                       {"workload.shared_prefix.tokens", "2048"},
                                       {"workload.shared_prefix.groups", "8"}});
  EXPECT_EQ(c.workload.sessions.turns, 3);
  EXPECT_DOUBLE_EQ(c.workload.sessions.think_time_s, 12.5);
  EXPECT_EQ(c.workload.shared_prefix.tokens, 2048);
  EXPECT_EQ(c.workload.shared_prefix.groups, 8);
  EXPECT_THAT(DecodeWithError("workload.sessions.turns", "4"),
              HasSubstr(std::string(kOrigin) + ": workload.sessions: missing key think_time_s"));
}

TEST(ScenarioConfig, TheBundledMultiturnSessionsConfigDecodesToFourTurnSessions) {
  const ScenarioConfig c = DecodeScenario(
      ConfigTree::Load(KVSIM_SOURCE_DIR "/configs/multiturn_sessions.yaml"), kModelsDir);
  EXPECT_THAT(c.model_path, HasSubstr("Llama-3-8B.yaml"));
  EXPECT_THAT(c.gpu_path, HasSubstr("H100-SXM.yaml"));
  EXPECT_TRUE(fs::exists(c.workload.trace_path));
  EXPECT_EQ(c.workload.lengths, LengthSource::kTrace);
  EXPECT_EQ(c.workload.arrival, ArrivalProcess::kPoisson);
  EXPECT_EQ(c.workload.sessions.turns, 4);
  EXPECT_DOUBLE_EQ(c.workload.sessions.think_time_s, 30.0);
  EXPECT_EQ(c.workload.max_requests, 2000);
  EXPECT_EQ(c.kv_cache.type, KvManagerType::kPaged);
  EXPECT_TRUE(c.kv_cache.paged.prefix_caching);
}

// ---------------------------------------------------------------------------
// Keys written with no value (`key:`, `~`, `null`): an error at the key's line,
// never the key's default read silently.

TEST(ScenarioConfig, AModelsDirWithNoValueIsAnErrorNamingItsLineNotTheDefaultDirectory) {
  for (const char* value : {"", " ~", " null"}) {
    SCOPED_TRACE(value);
    EXPECT_THAT(DecodeError(std::string("models_dir:") + value + "\n" + kMinimal),
                HasSubstr(std::string(kOrigin) +
                          ":1: models_dir: expected a directory path, got no value"));
  }
  EXPECT_THAT(DecodeWithError("models_dir", "~"),
              HasSubstr(std::string(kOrigin) + ": models_dir (set by an override): expected a "
                                               "directory path, got no value"));
}

TEST(ScenarioConfig, AModelOrGpuWithNoValueIsAnErrorNamingItsOwnLine) {
  EXPECT_THAT(DecodeError("model:\ngpu: H100-SXM\nworkload:\n  trace: t.csv\n"),
              HasSubstr(std::string(kOrigin) +
                        ":1: model: expected a card name or a card's path, got no value"));
  EXPECT_THAT(DecodeError("model: Llama-3-8B\ngpu:\nworkload:\n  trace: t.csv\n"),
              HasSubstr(std::string(kOrigin) +
                        ":2: gpu: expected a card name or a card's path, got no value"));
}

TEST(ScenarioConfig, ACsvColumnWithNoValueIsAnErrorNotAnUnnamedColumn) {
  EXPECT_THAT(DecodeError(CsvScenario("{arrival: ~, prompt_tokens: p, output_tokens: o}")),
              HasSubstr(std::string(kOrigin) +
                        ":6: workload.columns.arrival: expected the header name of a column, "
                        "got no value"));
  EXPECT_THAT(DecodeError(CsvScenario("{prompt_tokens: null, output_tokens: o}")),
              HasSubstr(std::string(kOrigin) +
                        ":6: workload.columns.prompt_tokens: expected the header name of a "
                        "column, got no value"));
}

TEST(ScenarioConfig, ColumnsSharedPrefixOrSessionsWithNoValueReadAsEmptySectionsNotAsAbsent) {
  // Line 5, under workload: like `columns: {}`, `shared_prefix: {}` and `sessions: {}`.
  EXPECT_THAT(
      DecodeError(std::string(kMinimal) + "  columns:\n"),
      HasSubstr(std::string(kOrigin) + ":5: workload.columns: valid only with format: csv"));
  EXPECT_THAT(DecodeError(std::string(kMinimal) + "  shared_prefix:\n"),
              HasSubstr(std::string(kOrigin) + ":5: workload.shared_prefix: missing key tokens"));
  EXPECT_THAT(DecodeError(std::string(kMinimal) + "  sessions: ~\n"),
              HasSubstr(std::string(kOrigin) + ":5: workload.sessions: missing key turns"));
}

TEST(ScenarioConfig, AnOldPerModelCostKeyWithNoValueIsStillRefusedNamingWhereItMoved) {
  const std::string message =
      DecodeError(std::string(kMinimal) + "timing:\n  roofline:\n    cpu_overhead_s:\n");
  EXPECT_THAT(message,
              HasSubstr(std::string(kOrigin) + ":7: timing.roofline.cpu_overhead_s: moved"));
}

}  // namespace
}  // namespace kvsim
