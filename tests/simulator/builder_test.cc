// The builder: the memory plan worked out from the cards, and the configurations
// it refuses, each naming the key to change.
#include "sim/simulator/builder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "sim/config/scenario_config.h"
#include "sim/config/yaml_tree.h"
#include "sim/core/check.h"
#include "sim/hardware/gpu_spec.h"
#include "sim/hardware/model_spec.h"
#include "tests/testing/input_error.h"
#include "tests/testing/temp_dir.h"

namespace kvsim {
namespace {

using ::kvsim::testing::InputErrorMessage;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kGiB = int64_t{1} << 30;
constexpr int64_t kMiB = int64_t{1} << 20;

ModelSpec Model(const std::string& name) {
  return LoadModelSpec(std::string(KVSIM_SOURCE_DIR "/models/llm/") + name + ".yaml");
}
GpuSpec Gpu(const std::string& name) {
  return LoadGpuSpec(std::string(KVSIM_SOURCE_DIR "/models/gpu/") + name + ".yaml");
}

ScenarioConfig Deployment(int64_t tensor_parallel) {
  ScenarioConfig c;
  c.config_file = "scenario.yaml";
  c.deployment.tensor_parallel = tensor_parallel;
  return c;
}

// The InputError message of planning memory for `c` with the named cards (fails the
// test if the plan is made).
std::string PlanError(const std::string& model, const std::string& gpu, const ScenarioConfig& c) {
  return InputErrorMessage([&] { PlanMemory(Model(model), Gpu(gpu), c); });
}

// From models/llm/Llama-3-8B.yaml: 32 layers, hidden 4096, 32 heads, 8 KV heads,
// head_dim 128, ffn 14336, vocab 128256, 8192 context, bf16, untied embeddings.
constexpr int64_t kLlama3Params =
    int64_t{32} * (4096 * (32 * 128)                       // Q
                   + 2 * 4096 * (8 * 128)                  // K, V
                   + (32 * 128) * 4096                     // O
                   + 3 * 4096 * 14336)                     // gate, up, down
    + int64_t{2} * 128256 * 4096;                          // embedding + LM head = 8,029,995,008
constexpr int64_t kLlama3WeightBytes = 2 * kLlama3Params;  // 16,059,990,016
// From models/gpu/H100-SXM.yaml.
constexpr int64_t kH100Bytes = 85017493504;

TEST(PlanMemory, Llama3_8BOnOneH100KeepsMemoryTimesUtilizationMinusWeightsAndReservesForKv) {
  const MemoryPlan m = PlanMemory(Model("Llama-3-8B"), Gpu("H100-SXM"), Deployment(1));
  // usable = floor(85,017,493,504 x 0.9) = 76,515,744,153
  const int64_t usable = kH100Bytes * 9 / 10;
  // KV = usable - weights - 1 GiB activations - 512 MiB framework = 58,845,141,401
  const int64_t kv = usable - kLlama3WeightBytes - 1 * kGiB - 512 * kMiB;
  EXPECT_EQ(m.gpu_memory_bytes, kH100Bytes);
  EXPECT_EQ(m.usable_bytes, usable);
  EXPECT_EQ(m.weight_bytes, kLlama3WeightBytes);
  EXPECT_EQ(m.activation_reserve_bytes, 1 * kGiB);
  EXPECT_EQ(m.framework_reserve_bytes, 512 * kMiB);
  EXPECT_EQ(m.kv_capacity_bytes, kv);
  // 2 (K and V) x 32 layers x 8 KV heads x 128 x 2 bytes = 128 KiB per token.
  EXPECT_EQ(m.kv_bytes_per_token, 2 * 32 * 8 * 128 * 2);
  EXPECT_EQ(m.max_model_len, 8192);  // the model's context when not set
}

TEST(PlanMemory, TensorParallelSplitsWeightsAndKvHeads) {
  const MemoryPlan m = PlanMemory(Model("Llama-3-8B"), Gpu("H100-SXM"), Deployment(2));
  EXPECT_EQ(m.weight_bytes, kLlama3WeightBytes / 2);
  EXPECT_EQ(m.kv_bytes_per_token, 2 * 32 * (8 / 2) * 128 * 2);
  EXPECT_EQ(m.kv_capacity_bytes,
            kH100Bytes * 9 / 10 - kLlama3WeightBytes / 2 - 1 * kGiB - 512 * kMiB);
}

TEST(PlanMemory, UtilizationAndReservesComeFromTheDeployment) {
  ScenarioConfig c = Deployment(1);
  c.deployment.gpu_memory_utilization = 0.5;
  c.deployment.activation_reserve_bytes = 2 * kGiB;
  c.deployment.framework_reserve_bytes = 0;
  const MemoryPlan m = PlanMemory(Model("Llama-3-8B"), Gpu("H100-SXM"), c);
  // floor(85,017,493,504 / 2) - weights - 2 GiB
  EXPECT_EQ(m.kv_capacity_bytes, kH100Bytes / 2 - kLlama3WeightBytes - 2 * kGiB);
}

TEST(PlanMemory, KvCapacityBytesOverridesTheFormula) {
  ScenarioConfig c = Deployment(1);
  c.deployment.kv_capacity_bytes = 10 * kGiB;
  const MemoryPlan m = PlanMemory(Model("Llama-3-8B"), Gpu("H100-SXM"), c);
  EXPECT_EQ(m.kv_capacity_bytes, 10 * kGiB);
  EXPECT_EQ(m.weight_bytes, kLlama3WeightBytes);  // the rest of the plan is unchanged
}

TEST(PlanMemory, KvCapacityOverrideBeyondTheGpuIsRefused) {
  ScenarioConfig c = Deployment(1);
  // 80 GiB of KV next to 15 GiB of weights on a 79.2 GiB card.
  c.deployment.kv_capacity_bytes = 80 * kGiB;
  EXPECT_THAT(PlanError("Llama-3-8B", "H100-SXM", c), HasSubstr("deployment.kv_capacity_bytes"));
}

// From models/llm/Llama-2-70B.yaml: 80 layers, hidden 8192, 64 heads, 8 KV heads,
// head_dim 128, ffn 28672, vocab 32000, untied, bf16.
constexpr int64_t kLlama2_70BWeightBytes =
    int64_t{2} *
    (int64_t{80} * (int64_t{8192} * 8192 + 2 * 8192 * 1024 + 8192 * 8192 + 3 * 8192 * 28672) +
     2 * 32000 * 8192);  // 137,950,658,560 bytes
// From models/gpu/A100-80GB.yaml.
constexpr int64_t kA100Bytes = 84987740160;  // 79.15 GiB, the A100-80GB card

TEST(PlanMemory, Llama2_70BDoesNotFitOneA100AndTheErrorNamesTensorParallel) {
  // 138 GB of weights against 0.9 x 80 GB = 72 GB usable.
  ASSERT_GT(kLlama2_70BWeightBytes, kA100Bytes * 9 / 10);
  const std::string message = PlanError("Llama-2-70B", "A100-80GB", Deployment(1));
  EXPECT_THAT(message, HasSubstr("deployment.tensor_parallel"));
  EXPECT_THAT(message, HasSubstr("scenario.yaml"));
}

TEST(PlanMemory, Llama2_70BFitsTwoA100s) {
  const MemoryPlan m = PlanMemory(Model("Llama-2-70B"), Gpu("A100-80GB"), Deployment(2));
  // 0.9 x 84,987,740,160 = 76,488,966,144; minus 68,975,329,280 of weights, 1 GiB and
  // 512 MiB of reserves = 5,903,024,128 bytes of KV.
  EXPECT_EQ(m.weight_bytes, kLlama2_70BWeightBytes / 2);
  EXPECT_EQ(m.kv_capacity_bytes,
            kA100Bytes * 9 / 10 - kLlama2_70BWeightBytes / 2 - 1 * kGiB - 512 * kMiB);
  EXPECT_EQ(m.kv_bytes_per_token, 2 * 80 * (8 / 2) * 128 * 2);
}

TEST(PlanMemory, TensorParallelThatDoesNotDivideTheHeadsIsRefused) {
  // Llama-3-8B has 32 attention heads: 3 GPUs cannot share them.
  EXPECT_THAT(PlanError("Llama-3-8B", "H100-SXM", Deployment(3)),
              HasSubstr("deployment.tensor_parallel"));
}

TEST(PlanMemory, TensorParallelThatNeitherSplitsNorCopiesTheKvHeadsEvenlyIsRefused) {
  // Yi-34B: 56 attention heads split over 7 GPUs, but its 8 KV heads do not.
  EXPECT_THAT(PlanError("Yi-34B", "H100-SXM", Deployment(7)),
              HasSubstr("deployment.tensor_parallel: 8 KV heads of Yi-34B neither split over 7 "
                        "GPUs nor copy evenly onto them"));
}

TEST(PlanMemory, MoreGpusThanKvHeadsEachKeepACopyOfOne) {
  // Yi-6B's 4 KV heads over 8 GPUs: each rank holds one head's KV, 2 x 32 layers x 1
  // head x 128 x 2 bytes per token.
  const MemoryPlan m = PlanMemory(Model("Yi-6B"), Gpu("H100-SXM"), Deployment(8));
  EXPECT_EQ(m.kv_bytes_per_token, 2 * 32 * 1 * 128 * 2);
}

TEST(PlanMemory, TensorParallelBeyondOneHostIsRefused) {
  // An H100-SXM host (DGX H100) joins 8 GPUs by NVLink; 16 would cross hosts.
  EXPECT_THAT(PlanError("Llama-3-8B", "H100-SXM", Deployment(16)),
              HasSubstr("deployment.tensor_parallel: 16 GPUs span more than one H100-SXM host "
                        "(8 GPUs, the card's gpus_per_host)"));
  // A card that does not say how many GPUs a host holds is not limited.
  GpuSpec unstated = Gpu("H100-SXM");
  unstated.gpus_per_host = 0;
  EXPECT_EQ(PlanMemory(Model("Llama-3-8B"), unstated, Deployment(16)).kv_bytes_per_token,
            2 * 32 * 1 * 128 * 2);
}

TEST(PlanMemory, MaxModelLenBeyondTheModelContextIsRefused) {
  ScenarioConfig c = Deployment(1);
  c.deployment.max_model_len = 8193;
  EXPECT_THAT(PlanError("Llama-3-8B", "H100-SXM", c), HasSubstr("deployment.max_model_len"));
}

// ---- BuildSimulation: the whole path from YAML ---------------------------

std::string BuildError(const std::vector<std::pair<std::string, std::string>>& overrides) {
  ConfigTree tree = ConfigTree::Parse(R"(model: Llama-3-8B
gpu: H100-SXM
workload:
  arrival:
    process: poisson
    rate_qps: 1
  lengths:
    source: fixed
    prompt_tokens: 10
    output_tokens: 10
  max_requests: 1
kv_cache:
  type: paged
  block_tokens: 16
  watermark: 0
)",
                                      "scenario.yaml");
  for (const auto& [key, value] : overrides) tree.Set(key, value);
  try {
    BuildSimulation(DecodeScenario(tree, KVSIM_SOURCE_DIR "/models"));
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(BuildSimulation, DefaultScenarioBuilds) { EXPECT_EQ(BuildError({}), ""); }

TEST(BuildSimulation, TheProfiledPagedKernelWithoutAProfileNamesTheKey) {
  EXPECT_THAT(BuildError({{"kv_cache.paged_kernel", "profiled"}}),
              AllOf(HasSubstr("kv_cache.paged_kernel"), HasSubstr("needs timing.type: profiled")));
}

TEST(BuildSimulation, Llama2_70BOnOneA100NamesTensorParallel) {
  EXPECT_THAT(BuildError({{"model", "Llama-2-70B"}, {"gpu", "A100-80GB"}}),
              HasSubstr("deployment.tensor_parallel"));
  EXPECT_EQ(
      BuildError(
          {{"model", "Llama-2-70B"}, {"gpu", "A100-80GB"}, {"deployment.tensor_parallel", "2"}}),
      "");
}

TEST(BuildSimulation, KvCacheTooSmallForMaxModelLenNamesTheCapacityTheConfigStates) {
  // 100 tokens of KV hold 6 blocks of 16 = 96 tokens; the default max_model_len is 8192.
  const std::string kv = std::to_string(100 * 131072);
  EXPECT_THAT(BuildError({{"deployment.kv_capacity_bytes", kv}}),
              HasSubstr("deployment.kv_capacity_bytes"));
  // The boundary: 96 tokens fit, 97 do not (the bytes hold 100 tokens, the blocks 96).
  EXPECT_EQ(BuildError({{"deployment.kv_capacity_bytes", kv}, {"deployment.max_model_len", "96"}}),
            "");
  const std::string error =
      BuildError({{"deployment.kv_capacity_bytes", kv}, {"deployment.max_model_len", "97"}});
  EXPECT_THAT(error, HasSubstr("scenario.yaml: deployment.kv_capacity_bytes: the paged KV "
                               "cache"));
  EXPECT_THAT(error, HasSubstr("admits at most 96 tokens, below max_model_len 97; lower "
                               "max_model_len or raise deployment.kv_capacity_bytes"));
  EXPECT_THAT(error, Not(HasSubstr("gpu_memory_utilization")));  // the stated bytes override it
}

TEST(BuildSimulation, KvCacheShortOfMaxModelLenForItsWatermarkSaysSo) {
  // 100 tokens of KV, 6 blocks of 16; a watermark of 0.5 keeps 3 free: 48 tokens admitted.
  const std::string kv = std::to_string(100 * 131072);
  const std::string error = BuildError({{"deployment.kv_capacity_bytes", kv},
                                        {"deployment.max_model_len", "64"},
                                        {"kv_cache.watermark", "0.5"}});
  EXPECT_THAT(error, HasSubstr("admits at most 48 tokens with kv_cache.watermark 0.5 of it kept "
                               "free, below max_model_len 64; lower max_model_len, lower "
                               "kv_cache.watermark or raise deployment.kv_capacity_bytes"));
}

TEST(BuildSimulation, AWorkloadEveryRequestOfWhichWouldBeRefusedIsAnError) {
  // max_model_len 1,000: a fixed prompt of 1,000 tokens is refused (no room for an
  // output token), 999 is served; a 600-token shared prompt every request carries
  // takes a 400-token prompt to 1,000.
  const std::vector<std::pair<std::string, std::string>> fixed = {
      {"deployment.max_model_len", "1000"},
      {"workload.lengths.source", "fixed"},
      {"workload.lengths.output_tokens", "5"}};
  auto with = [&](std::vector<std::pair<std::string, std::string>> more) {
    more.insert(more.begin(), fixed.begin(), fixed.end());
    return BuildError(more);
  };
  EXPECT_THAT(with({{"workload.lengths.prompt_tokens", "1000"}}),
              HasSubstr("workload.lengths.prompt_tokens: 1000 tokens reach max_model_len 1000: "
                        "every request would be refused"));
  EXPECT_EQ(with({{"workload.lengths.prompt_tokens", "999"}}), "");
  EXPECT_THAT(
      with({{"workload.lengths.prompt_tokens", "400"}, {"workload.shared_prefix.tokens", "600"}}),
      HasSubstr("400 tokens with the 600-token shared prompt reach max_model_len 1000"));
  EXPECT_EQ(with({{"workload.lengths.prompt_tokens", "400"},
                  {"workload.shared_prefix.tokens", "600"},
                  {"workload.shared_prefix.fraction", "0.5"}}),
            "");
  EXPECT_THAT(with({{"workload.lengths.prompt_tokens", "10"},
                    {"workload.shared_prefix.tokens", "1000"},
                    {"workload.shared_prefix.fraction", "0.5"}}),
              HasSubstr("workload.shared_prefix.tokens: 1000 tokens reach max_model_len 1000"));
}

TEST(BuildSimulation, AStaticCacheShortOfMaxModelLenSaysHowManyTokensItHolds) {
  // Each request reserves max_model_len, so none is admitted; the message gives what the
  // cache holds: the paged cache of the same bytes admits its whole blocks of it.
  const std::vector<std::pair<std::string, std::string>> small = {
      {"deployment.gpu_memory_utilization", "0.22"}, {"deployment.max_model_len", "8192"}};
  auto as_static = small;
  as_static.push_back({"kv_cache.type", "static"});
  const std::string error = BuildError(as_static);
  EXPECT_THAT(error, HasSubstr("the static KV cache"));
  EXPECT_THAT(error, Not(HasSubstr("holds 0 tokens")));
  const std::string paged = BuildError(small);
  const auto number_after = [](const std::string& text, const std::string& words) {
    const size_t at = text.find(words);
    return at == std::string::npos ? -1 : std::stoll(text.substr(at + words.size()));
  };
  const int64_t held = number_after(error, "holds ");
  const int64_t admitted = number_after(paged, "admits at most ");
  EXPECT_GE(held, admitted);
  EXPECT_LT(held, admitted + 16);  // the paged cache rounds down to 16-token blocks
  EXPECT_LT(held, 8192);
}

TEST(BuildSimulation, KvCacheLeftByTheUtilizationTooSmallNamesMaxModelLen) {
  EXPECT_THAT(BuildError({{"deployment.gpu_memory_utilization", "0.22"},
                          {"deployment.max_model_len", "8192"}}),
              AllOf(HasSubstr("deployment.max_model_len"), HasSubstr("gpu_memory_utilization")));
}

TEST(BuildSimulation, StaticReservationTooSmallForMaxModelLenNamesTheStatedCapacity) {
  // Static reserves max_model_len tokens per request: 100 tokens of KV cannot hold 101.
  const std::string kv = std::to_string(100 * 131072);
  EXPECT_EQ(BuildError({{"kv_cache.type", "static"},
                        {"deployment.kv_capacity_bytes", kv},
                        {"deployment.max_model_len", "100"}}),
            "");
  EXPECT_THAT(BuildError({{"kv_cache.type", "static"},
                          {"deployment.kv_capacity_bytes", kv},
                          {"deployment.max_model_len", "101"}}),
              HasSubstr("deployment.kv_capacity_bytes"));
}

TEST(BuildSimulation, VllmTokenBudgetBelowMaxModelLenNamesMaxNumBatchedTokens) {
  EXPECT_THAT(BuildError({{"deployment.max_model_len", "4096"},
                          {"scheduler.max_num_batched_tokens", "4095"}}),
              HasSubstr("scheduler.max_num_batched_tokens"));
  EXPECT_EQ(BuildError({{"deployment.max_model_len", "4096"},
                        {"scheduler.max_num_batched_tokens", "4096"}}),
            "");
  // Sarathi chunks prompts, so a smaller budget is fine there.
  EXPECT_EQ(BuildError({{"deployment.max_model_len", "4096"},
                        {"scheduler.type", "sarathi"},
                        {"scheduler.max_num_batched_tokens", "512"}}),
            "");
}

TEST(BuildSimulation, TensorParallelNotDividingTheHeadsIsRefused) {
  EXPECT_THAT(BuildError({{"deployment.tensor_parallel", "3"}}),
              HasSubstr("deployment.tensor_parallel"));
}

// ---- Profiled timing -----------------------------------------------------

constexpr const char* kH100Profile = KVSIM_TEST_DATA_DIR "/timing/h100_profile.txt";

// One request of 10 prompt and 10 output tokens on Llama-3-8B / H100 with `overrides`.
ConfigTree OneRequest(const std::vector<std::pair<std::string, std::string>>& overrides) {
  ConfigTree tree = ConfigTree::Parse(R"(model: Llama-3-8B
gpu: H100-SXM
workload:
  arrival: {process: poisson, rate_qps: 1}
  lengths: {source: fixed, prompt_tokens: 10, output_tokens: 10}
  max_requests: 1
)",
                                      "scenario.yaml");
  for (const auto& [key, value] : overrides) tree.Set(key, value);
  return tree;
}

std::string ProfiledBuildError(const std::vector<std::pair<std::string, std::string>>& overrides) {
  try {
    BuildSimulation(DecodeScenario(OneRequest(overrides), KVSIM_SOURCE_DIR "/models"));
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

// ---- Host CPU -------------------------------------------------------------

// The engine terms BuildSimulation ran with for `overrides` on the one-request scenario.
EngineConfig EngineBuiltWith(const std::vector<std::pair<std::string, std::string>>& overrides) {
  return BuildSimulation(DecodeScenario(OneRequest(overrides), KVSIM_SOURCE_DIR "/models"))
      ->config()
      .timing.engine;
}

TEST(BuildSimulation, TheEngineCpuTermsRunAtTheSpeedOfTheCardsHost) {
  const EngineConfig stated = EnginePresetDefaults(EngineConfig::Preset::kVllmV0);
  // The A100 card's host (DGX A100, EPYC 7742) runs at 0.81 of the reference core.
  const EngineConfig a100 =
      EngineBuiltWith({{"gpu", "A100-80GB"}, {"timing.engine.preset", "vllm_v0"}});
  EXPECT_DOUBLE_EQ(a100.per_iteration_s, stated.per_iteration_s / 0.81);
  EXPECT_DOUBLE_EQ(a100.block_table_entry_s, stated.block_table_entry_s / 0.81);
  EXPECT_DOUBLE_EQ(a100.kernel_gap_s, stated.kernel_gap_s);
  EXPECT_THAT(a100.host_cpu, HasSubstr("EPYC 7742"));
  // The H100 card's host is the reference core itself.
  const EngineConfig h100 = EngineBuiltWith({{"timing.engine.preset", "vllm_v0"}});
  EXPECT_DOUBLE_EQ(h100.per_iteration_s, stated.per_iteration_s);
  EXPECT_THAT(h100.host_cpu, HasSubstr("8480C"));
}

TEST(BuildSimulation, TheDeploymentsHostCpuSpeedOverridesTheCards) {
  const EngineConfig mine = EngineBuiltWith({{"gpu", "A100-80GB"},
                                             {"timing.engine.preset", "vllm_v0"},
                                             {"deployment.host_cpu_speed", "0.5"}});
  EXPECT_DOUBLE_EQ(mine.per_iteration_s,
                   EnginePresetDefaults(EngineConfig::Preset::kVllmV0).per_iteration_s / 0.5);
  EXPECT_EQ(mine.host_cpu, "deployment.host_cpu_speed");
  // 0 leaves it to the card (the A100's 0.81); a speed below 0.05 is refused.
  const EngineConfig card = EngineBuiltWith({{"gpu", "A100-80GB"},
                                             {"timing.engine.preset", "vllm_v0"},
                                             {"deployment.host_cpu_speed", "0"}});
  EXPECT_DOUBLE_EQ(card.host_cpu_speed, 0.81);
  EXPECT_THAT(card.host_cpu, HasSubstr("EPYC 7742"));
  EXPECT_THAT(ProfiledBuildError({{"deployment.host_cpu_speed", "0.01"}}),
              AllOf(HasSubstr("deployment.host_cpu_speed"),
                    HasSubstr("must be 0 (the GPU card's host) or in [0.05, 10], got 0.01")));
}

// Mean TPOT of the one-request scenario on an A100 with vllm_v0 at `speed`.
double TpotOnHost(const std::string& speed) {
  return BuildSimulation(DecodeScenario(OneRequest({{"gpu", "A100-80GB"},
                                                    {"timing.engine.preset", "vllm_v0"},
                                                    {"deployment.host_cpu_speed", speed}}),
                                        KVSIM_SOURCE_DIR "/models"))
      ->Run()
      .summary.tpot_s.mean;
}

TEST(BuildSimulation, AHostAtHalfSpeedAddsTheEngineCpuTimeOnceMorePerIteration) {
  // vllm_v0: 1.64 ms per step, 0.139 ms per sequence (one here) and 0.1 us per
  // block-table entry; the 9 decode steps of 10 + 10 tokens run at contexts 11-19, six
  // of one 16-token block and three of two: 12 entries in 9 steps. At half speed each
  // step takes its CPU time once more.
  EXPECT_NEAR((TpotOnHost("0.5") - TpotOnHost("1")) * 1e3, 1.64 + 0.139 + 12.0 / 9 * 1e-4, 1e-6);
}

// Timing assumptions of the one-request scenario built with `overrides`.
std::vector<std::string> AssumptionsWith(
    const std::vector<std::pair<std::string, std::string>>& overrides) {
  return BuildSimulation(DecodeScenario(OneRequest(overrides), KVSIM_SOURCE_DIR "/models"))
      ->timing_assumptions();
}

TEST(BuildSimulation, ACardWithoutAHostSizeSaysTheTensorParallelGpusAreTakenToShareOne) {
  // The H100 card without its gpus_per_host line: nothing bounds TP, and a run above
  // one GPU says what it took.
  std::ifstream in(KVSIM_SOURCE_DIR "/models/gpu/H100-SXM.yaml");
  std::string card, line;
  while (std::getline(in, line)) {
    if (line.starts_with("gpus_per_host")) continue;
    card += (line.starts_with("name:") ? std::string("name: no-host") : line) + "\n";
  }
  const ::kvsim::testing::TempDir dir;
  const std::string path = dir.Write("no-host.yaml", card);
  const auto mentions_host = [](const std::vector<std::string>& lines) {
    for (const std::string& l : lines) {
      if (l.starts_with("gpus_per_host: the no-host card states none")) return true;
    }
    return false;
  };
  EXPECT_TRUE(
      mentions_host(AssumptionsWith({{"gpu", path}, {"deployment.tensor_parallel", "16"}})));
  EXPECT_FALSE(mentions_host(AssumptionsWith({{"gpu", path}})));  // TP 1: no host to share
}

TEST(BuildSimulation, OnACardNamingNoHostTheTermsAreTakenAtTheReferenceCore) {
  const EngineConfig l40s = EngineBuiltWith({{"gpu", "L40S"}, {"timing.engine.preset", "vllm_v0"}});
  EXPECT_EQ(l40s.host_cpu_speed, 1);
  EXPECT_DOUBLE_EQ(l40s.per_iteration_s,
                   EnginePresetDefaults(EngineConfig::Preset::kVllmV0).per_iteration_s);
  EXPECT_EQ(l40s.host_cpu, "the reference core itself: the L40S card names no host");
}

TEST(BuildSimulation, TheFixedModelKeepsItsTermsOnAnyHost) {
  const EngineConfig fixed =
      EngineBuiltWith({{"timing.type", "fixed"}, {"deployment.host_cpu_speed", "0.5"}});
  EXPECT_EQ(fixed.host_cpu, "");
  EXPECT_EQ(fixed.host_cpu_speed, 1);
}

TEST(BuildSimulation, ProfiledTimingBuildsFromAProfile) {
  EXPECT_EQ(ProfiledBuildError({{"timing.type", "profiled"}, {"timing.profile", kH100Profile}}),
            "");
  EXPECT_EQ(ProfiledBuildError({{"timing.type", "profiled"},
                                {"timing.profile", kH100Profile},
                                {"deployment.tensor_parallel", "2"},
                                {"kv_cache.type", "vattention"}}),
            "");
}

TEST(BuildSimulation, AMissingProfileNamesTimingProfile) {
  const std::string message =
      ProfiledBuildError({{"timing.type", "profiled"}, {"timing.profile", "/no/such/profile.txt"}});
  EXPECT_THAT(message, HasSubstr("scenario.yaml: timing.profile"));
  EXPECT_THAT(message, HasSubstr("/no/such/profile.txt"));
}

// Found by fuzzing (tests/fuzz/fuzz_run): a profile path longer than a file name may be
// made the existence check throw std::filesystem::filesystem_error.
TEST(BuildSimulation, AProfilePathTooLongForTheFileSystemNamesTimingProfile) {
  const std::string path = "/tmp/" + std::string(300, 'p') + ".txt";
  const std::string message =
      ProfiledBuildError({{"timing.type", "profiled"}, {"timing.profile", path}});
  EXPECT_THAT(message, HasSubstr("scenario.yaml: timing.profile"));
  EXPECT_THAT(message, HasSubstr("not found"));
}

TEST(BuildSimulation, AProfileWithoutTheModelNamesTimingProfileAndTheModelsItHas) {
  const std::string message = ProfiledBuildError(
      {{"timing.type", "profiled"}, {"timing.profile", kH100Profile}, {"model", "Mistral-7B"}});
  EXPECT_THAT(message, HasSubstr("timing.profile"));
  EXPECT_THAT(message, HasSubstr("Mistral-7B"));
  EXPECT_THAT(message, HasSubstr("Llama-3-8B (tensor_parallel 1, 2)"));
}

// Exposed mapping of the one request under vAttention: its 10-token prompt maps one
// page group (2 x 32 layers x (cuMemMap + cuMemSetAccess)) before the prefill runs,
// and its 20 tokens never leave that 2 MiB page (1,024 tokens).
double ExposedMappingSeconds(const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::vector<std::pair<std::string, std::string>> all = {{"kv_cache.type", "vattention"}};
  all.insert(all.end(), overrides.begin(), overrides.end());
  auto sim = BuildSimulation(DecodeScenario(OneRequest(all), KVSIM_SOURCE_DIR "/models"));
  const Summary summary = sim->Run().summary;
  EXPECT_EQ(summary.requests_completed, 1);
  return summary.exposed_overhead_s;
}

TEST(BuildSimulation, VAttentionTakesTheProfilesVmmLatenciesUnlessTheConfigSetsThem) {
  // The fixture with cuMemMap 1.65 us, cuMemSetAccess 32.16 us and pooled map + set
  // access 33.81 us at 2 MiB (set access counts 33.81 - 1.65 = 32.16 us).
  std::ifstream in(kH100Profile);
  std::stringstream text;
  text << in.rdbuf();
  std::string profile = text.str();
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"cuMemMap,2097152,2000,0.57,0.65,", "cuMemMap,2097152,2000,0.57,1.65,"},
           {"cuMemSetAccess,2097152,2000,20.61,22.16,", "cuMemSetAccess,2097152,2000,20.61,32.16,"},
           {"map_set_access_pooled,2097152,2000,21.96,23.55,",
            "map_set_access_pooled,2097152,2000,21.96,33.81,"}}) {
    ASSERT_NE(profile.find(from), std::string::npos) << from;
    profile.replace(profile.find(from), from.size(), to);
  }
  const ::kvsim::testing::TempDir dir;
  const std::string path = dir.Write("profile.txt", profile);
  const std::vector<std::pair<std::string, std::string>> profiled = {{"timing.type", "profiled"},
                                                                     {"timing.profile", path}};

  // Roofline timing: the defaults, cuMemMap 0.65 us + cuMemSetAccess 22.16 us.
  EXPECT_NEAR(ExposedMappingSeconds({}), 64 * (0.65 + 22.16) * 1e-6, 1e-9);
  // Profiled: the profile's.
  EXPECT_NEAR(ExposedMappingSeconds(profiled), 64 * (1.65 + 32.16) * 1e-6, 1e-9);
  // A latency the config sets wins; the others still come from the profile.
  std::vector<std::pair<std::string, std::string>> with_map = profiled;
  with_map.emplace_back("kv_cache.vmm.map_s", "2.0e-6");
  EXPECT_NEAR(ExposedMappingSeconds(with_map), 64 * (2.0 + 32.16) * 1e-6, 1e-9);
}

// ---- vAttention's VMM backend ---------------------------------------------

TEST(BuildSimulation, SixtyFourKiBPagesMapOnTheUvmBackendAtNineMicrosecondsAPage) {
  // backend auto -> uvm. The 10-token prompt maps one page group before the prefill:
  // 2 x 32 layers = 64 pages, one uvm call of 9 us each = 576 us; its 20 tokens stay
  // in that 64 KiB page (64 KiB / 2048 B = 32 tokens).
  EXPECT_NEAR(ExposedMappingSeconds({{"kv_cache.page_bytes", "64KiB"}}), 64 * 9e-6, 1e-9);
  EXPECT_NEAR(ExposedMappingSeconds(
                  {{"kv_cache.page_bytes", "64KiB"}, {"kv_cache.vmm.uvm_map_s", "1.0e-5"}}),
              64 * 10e-6, 1e-9);
}

TEST(BuildSimulation, TheUvmBackendIgnoresTheProfilesStockVmmLatencies) {
  // The profile measured cuMemMap and cuMemSetAccess of the stock driver.
  EXPECT_NEAR(ExposedMappingSeconds({{"timing.type", "profiled"},
                                     {"timing.profile", kH100Profile},
                                     {"kv_cache.page_bytes", "64KiB"}}),
              64 * 9e-6, 1e-9);
}

TEST(BuildSimulation, AConfigBuiltInCodeWithSmallStockPagesNamesPageBytes) {
  // Decoding refuses this; a ScenarioConfig assembled in code meets the builder's check.
  ScenarioConfig c =
      DecodeScenario(OneRequest({{"kv_cache.type", "vattention"}}), KVSIM_SOURCE_DIR "/models");
  c.kv_cache.vattention.page_bytes = 64 << 10;
  c.kv_cache.vattention.backend = VmmBackend::kStock;
  EXPECT_THAT(InputErrorMessage([&] { BuildSimulation(c); }),
              HasSubstr("scenario.yaml: kv_cache.page_bytes: 64 KiB pages need the uvm backend"));
  c.kv_cache.vattention.backend = VmmBackend::kUvm;
  EXPECT_NO_THROW(BuildSimulation(c));
}

}  // namespace
}  // namespace kvsim
