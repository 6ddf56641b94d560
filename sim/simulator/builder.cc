// The builder: typed config to components, with every cross-component check.
#include "sim/simulator/builder.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <system_error>
#include <utility>
#include <variant>

#include "sim/core/check.h"
#include "sim/core/units.h"
#include "sim/timing/profile.h"

namespace kvsim {
namespace {

[[noreturn]] void Fail(const ScenarioConfig& c, const std::string& key, const std::string& what) {
  throw InputError(fmt::format("{}: {}: {}", c.config_file, key, what));
}

// `measured_vmm`: the profile's VMM latencies under profiled timing; they replace
// the defaults of the kv_cache.vmm keys the config does not set.
std::unique_ptr<KvCacheManager> MakeKvManager(const ScenarioConfig& c, const KvGeometry& g,
                                              const std::optional<VmmLatencies>& measured_vmm) {
  switch (c.kv_cache.type) {
    case KvManagerType::kStatic:
      return NewStaticKvManager(g, c.kv_cache.static_kv);
    case KvManagerType::kPaged:
      return NewPagedKvManager(g, c.kv_cache.paged);
    case KvManagerType::kVAttention: {
      VAttentionKvConfig v = c.kv_cache.vattention;
      if (v.max_slots == 0) v.max_slots = c.scheduler.max_num_seqs;
      // The profile measured the stock driver's calls; the uvm backend does not use
      // these latencies (its map cost is uvm_map_latency).
      if (measured_vmm) {
        const KvCacheConfig::VmmKeysSet& set = c.kv_cache.vmm_set;
        if (!set.map_s) v.map_latency = measured_vmm->map;
        if (!set.set_access_s) v.set_access_latency = measured_vmm->set_access;
        if (!set.unmap_s) v.unmap_latency = measured_vmm->unmap;
      }
      return NewVAttentionKvManager(g, v);
    }
  }
  KVSIM_CHECK(false, "unknown KV manager type");
}

std::unique_ptr<BatchScheduler> MakeScheduler(const ScenarioConfig& c, int64_t max_model_len) {
  const SchedulerConfig& s = c.scheduler;
  switch (s.type) {
    case SchedulerType::kVllm: {
      const int64_t tokens = s.max_num_batched_tokens > 0 ? s.max_num_batched_tokens
                                                          : std::max<int64_t>(max_model_len, 2048);
      if (tokens < max_model_len) {
        Fail(c, "scheduler.max_num_batched_tokens",
             fmt::format("{} is below max_model_len {}: the vllm scheduler admits prompts whole, "
                         "so longer prompts could never run (use sarathi for chunked prefill, or "
                         "lower deployment.max_model_len)",
                         tokens, max_model_len));
      }
      return NewVllmScheduler({.max_num_seqs = s.max_num_seqs, .max_num_batched_tokens = tokens});
    }
    case SchedulerType::kSarathi:
      return NewSarathiScheduler({.max_num_seqs = s.max_num_seqs,
                                  .max_num_batched_tokens = s.max_num_batched_tokens > 0
                                                                ? s.max_num_batched_tokens
                                                                : s.chunk_tokens,
                                  .chunk_tokens = s.chunk_tokens});
    case SchedulerType::kStaticBatching:
      return NewStaticBatchingScheduler({.max_num_seqs = s.max_num_seqs});
    case SchedulerType::kVllmV1:
      // Chunked prefill: any budget runs any prompt. 0 takes the default, 2048.
      return NewVllmV1Scheduler(
          {.max_num_seqs = s.max_num_seqs,
           .max_num_batched_tokens = s.max_num_batched_tokens > 0
                                         ? s.max_num_batched_tokens
                                         : VllmV1SchedulerConfig{}.max_num_batched_tokens,
           .reserve_full_isl = s.reserve_full_isl});
  }
  KVSIM_CHECK(false, "unknown scheduler type");
}

// `profile`: the loaded timing.profile when timing is profiled, else nullptr.
std::unique_ptr<ExecutionTimeModel> MakeTiming(const ScenarioConfig& c, const ModelSpec& model,
                                               const GpuSpec& gpu, const Profile* profile) {
  if (c.kv_cache.type == KvManagerType::kPaged &&
      c.kv_cache.paged_kernel == PagedKernel::kProfiled && c.timing.type != TimingType::kProfiled) {
    Fail(c, "kv_cache.paged_kernel",
         "profiled (kvprobe's own paged kernel) needs timing.type: profiled; with other timing "
         "choose flash_paged, flashinfer_paged or vllm_paged");
  }
  if (c.timing.type == TimingType::kFixed) return NewFixedTimeModel(c.timing.fixed);
  const CostConfig costs{.engine = c.timing.engine,
                         .allreduce = c.timing.allreduce,
                         .paged_kernel = c.kv_cache.paged_kernel,
                         .paged = c.kv_cache.type == KvManagerType::kPaged};
  if (c.timing.type == TimingType::kProfiled) {
    try {
      return NewProfiledModel(*profile, model, gpu, c.deployment.tensor_parallel, c.timing.profiled,
                              costs);
    } catch (const InputError& e) {  // the profile's errors, as this config's
      throw InputError(fmt::format("{}: {}", c.config_file, e.what()));
    }
  }
  if (c.deployment.tensor_parallel > 1 && gpu.link_bandwidth_bytes_per_s <= 0) {
    Fail(c, "deployment.tensor_parallel",
         fmt::format("{} has no GPU-GPU link bandwidth in its card", gpu.name));
  }
  return NewRooflineModel(model, gpu, c.deployment.tensor_parallel, c.timing.roofline, costs);
}

// `c` with its engine's CPU terms on the deployment's host: deployment.host_cpu_speed
// when set, else the GPU card's host, else the reference core (terms as stated). The
// fixed model's terms are what the config says, on any host.
ScenarioConfig OnHost(const ScenarioConfig& c, const GpuSpec& gpu) {
  if (c.timing.type == TimingType::kFixed) return c;
  ScenarioConfig run = c;
  if (c.deployment.host_cpu_speed > 0) {
    run.timing.engine = EngineOnHost(c.timing.engine, c.deployment.host_cpu_speed,
                                     std::string(kHostFromDeployment));
  } else if (gpu.host_cpu_speed > 0) {
    run.timing.engine = EngineOnHost(c.timing.engine, gpu.host_cpu_speed,
                                     fmt::format("{}, the {} card's host", gpu.host_cpu, gpu.name));
  } else {
    run.timing.engine =
        EngineOnHost(c.timing.engine, 1.0,
                     fmt::format("the reference core itself: the {} card names no host", gpu.name));
  }
  return run;
}

}  // namespace

std::string DataDir() {
  if (const char* env = std::getenv("KVSIM_DATA_DIR"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const std::filesystem::path installed = exe.parent_path().parent_path() / "share" / "kvsim";
    if (std::filesystem::is_directory(installed / "models", ec)) return installed.string();
  }
  return KVSIM_DATA_DIR;
}

std::string DefaultModelsDir() { return DataDir() + "/models"; }

MemoryPlan PlanMemory(const ModelSpec& model, const GpuSpec& gpu, const ScenarioConfig& c) {
  const DeploymentConfig& d = c.deployment;
  if (gpu.gpus_per_host > 0 && d.tensor_parallel > gpu.gpus_per_host) {
    Fail(c, "deployment.tensor_parallel",
         fmt::format("{} GPUs span more than one {} host ({} GPUs, the card's gpus_per_host): "
                     "kvsim times tensor parallelism over the host's GPU-GPU link only, not "
                     "across hosts; use at most {} and more replicas",
                     d.tensor_parallel, gpu.name, gpu.gpus_per_host, gpu.gpus_per_host));
  }
  if (const std::string why = model.HeadSplitProblem(d.tensor_parallel); !why.empty()) {
    Fail(c, "deployment.tensor_parallel", why);
  }
  MemoryPlan m;
  m.gpu_memory_bytes = gpu.memory_bytes;
  m.usable_bytes =
      static_cast<int64_t>(static_cast<double>(gpu.memory_bytes) * d.gpu_memory_utilization);
  m.weight_bytes = model.WeightBytesPerRank(d.tensor_parallel);
  m.activation_reserve_bytes = d.activation_reserve_bytes;
  m.framework_reserve_bytes = d.framework_reserve_bytes;
  m.kv_bytes_per_token = model.KvBytesPerTokenPerRank(d.tensor_parallel);
  m.max_model_len = d.max_model_len > 0 ? d.max_model_len : model.max_context_tokens;
  if (m.max_model_len > model.max_context_tokens) {
    Fail(c, "deployment.max_model_len",
         fmt::format("{} exceeds {}'s max context of {} tokens", m.max_model_len, model.name,
                     model.max_context_tokens));
  }
  // Each reserve within the GPU first, so that their sum cannot overflow.
  for (const auto& [key, bytes] :
       {std::pair{"deployment.activation_reserve_bytes", m.activation_reserve_bytes},
        std::pair{"deployment.framework_reserve_bytes", m.framework_reserve_bytes}}) {
    if (bytes > gpu.memory_bytes) {
      Fail(c, key,
           fmt::format("{:.1f} GiB exceeds the {:.1f} GiB of {}", ToGiB(bytes),
                       ToGiB(gpu.memory_bytes), gpu.name));
    }
  }
  const int64_t free_bytes =
      m.usable_bytes - m.weight_bytes - m.activation_reserve_bytes - m.framework_reserve_bytes;
  if (m.weight_bytes + m.activation_reserve_bytes + m.framework_reserve_bytes > m.usable_bytes) {
    Fail(c, "deployment.tensor_parallel",
         fmt::format("{} does not fit {} x {}: each GPU needs {:.1f} GiB of weights + {:.1f} GiB "
                     "reserved, but {:.2f} x {:.1f} GiB = {:.1f} GiB is usable; raise "
                     "tensor_parallel or use a larger GPU",
                     model.name, d.tensor_parallel, gpu.name, ToGiB(m.weight_bytes),
                     ToGiB(m.activation_reserve_bytes + m.framework_reserve_bytes),
                     d.gpu_memory_utilization, ToGiB(gpu.memory_bytes), ToGiB(m.usable_bytes)));
  }
  if (d.kv_capacity_bytes > 0) {
    if (d.kv_capacity_bytes > gpu.memory_bytes - m.weight_bytes) {
      Fail(c, "deployment.kv_capacity_bytes",
           fmt::format("{:.1f} GiB of KV plus {:.1f} GiB of weights exceed the {:.1f} GiB of {}",
                       ToGiB(d.kv_capacity_bytes), ToGiB(m.weight_bytes), ToGiB(gpu.memory_bytes),
                       gpu.name));
    }
    m.kv_capacity_bytes = d.kv_capacity_bytes;
  } else {
    m.kv_capacity_bytes = free_bytes;
  }
  return m;
}

ModelSpec ServedModel(const ScenarioConfig& c) {
  ModelSpec model = LoadModelSpec(c.model_path);
  model.weight_dtype_bytes = DtypeBytes(c.deployment.weight_dtype, model.dtype_bytes);
  model.kv_dtype_bytes = DtypeBytes(c.kv_cache.dtype, model.dtype_bytes);
  // A kvprobe profile times the checkpoint's 16-bit kernels: it cannot speak for others.
  if (c.timing.type == TimingType::kProfiled) {
    if (model.weight_dtype_bytes != model.dtype_bytes) {
      Fail(c, "deployment.weight_dtype",
           fmt::format("{} with timing.type: profiled: the profile timed {}-byte GEMMs; use "
                       "timing.type: roofline",
                       kDtypes.Name(c.deployment.weight_dtype), model.dtype_bytes));
    }
    if (model.kv_dtype_bytes != model.dtype_bytes) {
      Fail(c, "kv_cache.dtype",
           fmt::format("{} with timing.type: profiled: the profile timed attention over "
                       "{}-byte KV; use timing.type: roofline",
                       kDtypes.Name(c.kv_cache.dtype), model.dtype_bytes));
    }
  }
  return model;
}

namespace {

// Throws InputError when the KV manager `kv` cannot admit one request of
// max_model_len tokens, naming the key to change.
void CheckAdmitsMaxModelLen(const ScenarioConfig& c, const MemoryPlan& memory,
                            const KvCacheManager& kv) {
  if (kv.MaxAdmissibleTokens() >= memory.max_model_len) return;
  // A capacity the config states is the key to name and to raise; otherwise the
  // memory left from gpu_memory_utilization is. The watermark keeps that fraction free
  // at admission (paged and vattention).
  const bool stated = c.deployment.kv_capacity_bytes > 0;
  const double watermark =
      c.kv_cache.type == KvManagerType::kStatic ? 0.0 : c.kv_cache.paged.watermark;
  // Static reservation admits nothing at all when max_model_len does not fit (each
  // request reserves it): say how many tokens the cache holds.
  const bool reserves = c.kv_cache.type == KvManagerType::kStatic;
  const int64_t tokens =
      reserves ? memory.kv_capacity_bytes / memory.kv_bytes_per_token : kv.MaxAdmissibleTokens();
  Fail(c, stated ? "deployment.kv_capacity_bytes" : "deployment.max_model_len",
       fmt::format("the {} KV cache ({:.2f} GiB per GPU, {} bytes per token) {} {} tokens{}, "
                   "below max_model_len {}{}; lower max_model_len{}{}",
                   kKvManagerTypes.Name(c.kv_cache.type), ToGiB(memory.kv_capacity_bytes),
                   memory.kv_bytes_per_token, reserves ? "holds" : "admits at most", tokens,
                   watermark > 0
                       ? fmt::format(" with kv_cache.watermark {:g} of it kept free", watermark)
                       : "",
                   memory.max_model_len,
                   c.deployment.max_model_len > 0
                       ? ""
                       : " (unset, so the model card's context length; set it to what you serve)",
                   watermark > 0 ? ", lower kv_cache.watermark" : "",
                   stated ? " or raise deployment.kv_capacity_bytes"
                          : ", raise gpu_memory_utilization or tensor_parallel"));
}

// Throws InputError when the workload's own keys make every request (or every one
// carrying the shared prompt) reach max_model_len, so that each would be refused: fixed
// prompts (with a shared prompt every request carries) or a shared prompt that long.
void CheckServesSomething(const ScenarioConfig& c, const MemoryPlan& memory) {
  const WorkloadConfig& w = c.workload;
  const int64_t limit = memory.max_model_len;
  const int64_t prefix = w.shared_prefix.tokens;
  if (prefix >= limit) {
    Fail(c, "workload.shared_prefix.tokens",
         fmt::format("{} tokens reach max_model_len {}: every request carrying the shared prompt "
                     "would be refused; shorten it or raise deployment.max_model_len",
                     prefix, limit));
  }
  const int64_t always = w.shared_prefix.fraction >= 1 ? prefix : 0;
  if (w.lengths == LengthSource::kFixed && w.fixed_prompt_tokens + always >= limit) {
    Fail(c, "workload.lengths.prompt_tokens",
         fmt::format("{} tokens{} reach max_model_len {}: every request would be refused (a "
                     "prompt of max_model_len leaves no room for an output token); shorten it "
                     "or raise deployment.max_model_len",
                     w.fixed_prompt_tokens,
                     always > 0 ? fmt::format(" with the {}-token shared prompt", always) : "",
                     limit));
  }
}

}  // namespace

std::unique_ptr<Simulation> BuildSimulation(const ScenarioConfig& given) {
  ModelSpec model = ServedModel(given);
  GpuSpec gpu = LoadGpuSpec(given.gpu_path);
  ScenarioConfig c = OnHost(given, gpu);
  const MemoryPlan memory = PlanMemory(model, gpu, c);

  KvGeometry geometry{.capacity_bytes = memory.kv_capacity_bytes,
                      .bytes_per_token = memory.kv_bytes_per_token,
                      .bytes_per_token_per_layer =
                          model.KvBytesPerTokenPerLayerPerRank(c.deployment.tensor_parallel),
                      .num_layers = model.num_layers,
                      .max_model_len = memory.max_model_len};
  if (c.kv_cache.type == KvManagerType::kVAttention &&
      c.kv_cache.vattention.page_bytes < geometry.bytes_per_token_per_layer) {
    Fail(c, "kv_cache.page_bytes",
         fmt::format("a {}-byte page cannot hold one token's K of one layer ({} bytes)",
                     c.kv_cache.vattention.page_bytes, geometry.bytes_per_token_per_layer));
  }
  // Decoding checks this too; a ScenarioConfig built in code reaches here unchecked.
  if (c.kv_cache.type == KvManagerType::kVAttention) {
    if (const std::optional<VmmConfigError> e = CheckVmmBackend(c.kv_cache.vattention)) {
      Fail(c, "kv_cache." + e->key, e->what);
    }
  }

  // Profiled timing: one profile gives the timing model and vAttention's VMM latencies.
  std::optional<Profile> profile;
  std::optional<VmmLatencies> measured_vmm;
  if (c.timing.type == TimingType::kProfiled) {
    std::error_code ec;  // a path the file system refuses is a profile not found
    if (!std::filesystem::is_regular_file(c.timing.profile_path, ec)) {
      Fail(c, "timing.profile", fmt::format("profile '{}' not found", c.timing.profile_path));
    }
    profile = LoadProfile(c.timing.profile_path);
    if (c.kv_cache.type == KvManagerType::kVAttention) {
      measured_vmm = VmmLatencyFromProfile(*profile);
      c.kv_cache.vmm_from_profile = measured_vmm.has_value();
    }
  }
  const Profile* profile_or_null = profile ? &*profile : nullptr;
  if (c.kv_cache.type == KvManagerType::kPaged &&
      c.kv_cache.paged.block_tokens > memory.max_model_len) {
    Fail(c, "kv_cache.block_tokens",
         fmt::format("{} tokens per block exceed max_model_len {}", c.kv_cache.paged.block_tokens,
                     memory.max_model_len));
  }

  CheckServesSomething(c, memory);
  auto metrics = std::make_unique<Metrics>();
  auto timing = MakeTiming(c, model, gpu, profile_or_null);
  std::vector<std::unique_ptr<Replica>> replicas;
  for (int64_t i = 0; i < c.deployment.replicas; ++i) {
    auto kv = MakeKvManager(c, geometry, measured_vmm);
    CheckAdmitsMaxModelLen(c, memory, *kv);
    replicas.push_back(std::make_unique<Replica>(
        i, std::move(kv), MakeScheduler(c, memory.max_model_len), *timing, *metrics,
        SecondsToNanos(c.timing.engine.request_finish_s), c.simulation.skip_ahead));
  }
  std::unique_ptr<Workload> workload;
  try {
    workload = std::make_unique<Workload>(c.workload);
  } catch (const InputError& e) {
    throw InputError(fmt::format("{}: {}", c.config_file, e.what()));
  }
  return std::make_unique<Simulation>(c, std::move(model), std::move(gpu), memory,
                                      std::move(workload), NewRouter(c.deployment.router),
                                      std::move(timing), std::move(metrics), std::move(replicas));
}

}  // namespace kvsim
