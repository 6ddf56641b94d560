// The event loop: arrivals, iteration starts and iteration completions.
#include "sim/simulator/simulator.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "sim/cluster/admission.h"
#include "sim/core/check.h"
#include "sim/core/event_queue.h"

namespace kvsim {

Simulation::Simulation(ScenarioConfig config, ModelSpec model, GpuSpec gpu, MemoryPlan memory,
                       std::unique_ptr<Workload> workload, std::unique_ptr<Router> router,
                       std::unique_ptr<ExecutionTimeModel> timing, std::unique_ptr<Metrics> metrics,
                       std::vector<std::unique_ptr<Replica>> replicas)
    : config_(std::move(config)),
      model_(std::move(model)),
      gpu_(std::move(gpu)),
      memory_(memory),
      workload_(std::move(workload)),
      router_(std::move(router)),
      timing_(std::move(timing)),
      metrics_(std::move(metrics)),
      replicas_(std::move(replicas)),
      kv_label_(kKvManagerTypes.Name(config_.kv_cache.type)) {
  // Several replicas record iterations out of start order (a skip-ahead run records
  // its iterations when it starts); Run's clock puts them back in order.
  if (replicas_.size() > 1) metrics_->OrderIterations();
}

Simulation::~Simulation() = default;

std::vector<std::string> Simulation::timing_assumptions() const {
  std::vector<std::string> out = timing_->Assumptions();
  if (gpu_.gpus_per_host == 0 && config_.deployment.tensor_parallel > 1) {
    out.push_back(fmt::format(
        "gpus_per_host: the {} card states none, so its {} tensor-parallel GPUs are taken to "
        "share one host and its links (no host size bounds the TP degree)",
        gpu_.name, config_.deployment.tensor_parallel));
  }
  if (config_.kv_cache.type == KvManagerType::kVAttention) {
    std::string vmm = VmmCostCaveat(config_.kv_cache.vattention);
    if (!vmm.empty()) out.push_back(std::move(vmm));
    // The stock defaults are medians measured on an H100-SXM: on another GPU, without a
    // profile's [vmm] rows or the config's own values, they are assumed.
    const KvCacheConfig& k = config_.kv_cache;
    const bool all_set = k.vmm_set.map_s && k.vmm_set.set_access_s && k.vmm_set.unmap_s;
    if (k.vattention.backend == VmmBackend::kStock && !all_set && !k.vmm_from_profile &&
        gpu_.name != "H100-SXM") {
      out.push_back(fmt::format(
          "kv_cache.vmm: the stock driver's call costs (cuMemMap {:g} us, cuMemSetAccess {:g} us, "
          "cuMemUnmap {:g} us per page, those kv_cache.vmm does not set) are medians measured "
          "on an H100-SXM, not on the {}; a kvprobe profile of this GPU measures them",
          ToSeconds(k.vattention.map_latency) * 1e6,
          ToSeconds(k.vattention.set_access_latency) * 1e6,
          ToSeconds(k.vattention.unmap_latency) * 1e6, gpu_.name));
    }
  }
  const TimingConfig::Calibrated& cal = config_.timing.calibration;
  if (!cal.path.empty()) {
    const auto join = [](const std::vector<std::string>& v) {
      std::string s;
      for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
      return s.empty() ? std::string("-") : s;
    };
    std::string line = fmt::format(
        "timing.calibration: {} set {} by kvsim fit on measured runs ({}, GPU {}): fitted, not "
        "measured directly",
        cal.path, join(cal.keys), join(cal.runs), join(cal.gpus));
    if (std::find(cal.gpus.begin(), cal.gpus.end(), gpu_.name) == cal.gpus.end()) {
      line += fmt::format(
          "; this run's GPU ({}) was not among them, so terms tied to the GPU "
          "carry over untested",
          gpu_.name);
    }
    // The engine terms absorb the model's and the parallelism's errors too.
    if (!cal.models.empty() &&
        std::find(cal.models.begin(), cal.models.end(), model_.name) == cal.models.end()) {
      line += fmt::format(
          "; this run's model ({}) was not among them ({}), so the fitted terms carry over "
          "untested",
          model_.name, join(cal.models));
    }
    const int64_t tp = config_.deployment.tensor_parallel;
    const std::vector<int64_t>& tps = cal.tensor_parallel;
    if (!tps.empty() && std::find(tps.begin(), tps.end(), tp) == tps.end()) {
      line += fmt::format(
          "; this run's tensor parallelism ({}) was not among them ({}), so the fitted terms "
          "carry over untested",
          tp, fmt::join(tps, ", "));
    }
    out.push_back(std::move(line));
  }
  return out;
}

std::string Simulation::TimingLine() const {
  const ScenarioConfig& c = config_;
  std::string line = "timing: " + timing_->Name();
  if (c.timing.type == TimingType::kProfiled) line += " (" + c.timing.profile_path + ")";
  if (c.timing.type != TimingType::kFixed) {
    line += fmt::format("; engine {}", EnginePresetName(c.timing.engine.preset));
    const std::string set = ConfiguredEngineTerms(c.timing.engine);
    if (!set.empty()) line += " (" + set + ")";
    if (c.kv_cache.type == KvManagerType::kPaged) {
      line += fmt::format("; paged kernel {}", PagedKernelName(c.kv_cache.paged_kernel));
    }
  }
  if (c.kv_cache.type == KvManagerType::kVAttention) {
    line += fmt::format("; VMM backend {}", kVmmBackends.Name(c.kv_cache.vattention.backend));
  }
  if (!c.timing.calibration.path.empty())
    line += "; calibrated (" + c.timing.calibration.path + ")";
  return line;
}

namespace {

// Queues `spec` on the replica the router picks from every replica's current load
// (`loads`: scratch space, one per replica); returns that replica's index.
size_t RouteToReplica(RequestSpec spec, Router& router,
                      const std::vector<std::unique_ptr<Replica>>& replicas,
                      std::vector<ReplicaLoad>& loads) {
  for (size_t i = 0; i < replicas.size(); ++i) loads[i] = replicas[i]->load();
  const size_t r = router.Route(spec, loads);
  KVSIM_CHECK(r < replicas.size(), "router chose a missing replica");
  replicas[r]->Enqueue(std::move(spec));
  return r;
}

// The time at which the next request may reach any replica's queues: the next
// arrival, or the oldest arrival on its way plus `ready_delay`, whichever is first
// (Nanos::max() when neither is left).
Nanos NextQueueChange(const std::optional<RequestSpec>& next,
                      const std::deque<RequestSpec>& on_the_way, Nanos ready_delay) {
  Nanos horizon = next ? next->arrival : Nanos::max();
  if (!on_the_way.empty()) horizon = std::min(horizon, on_the_way.front().arrival + ready_delay);
  return horizon;
}

// Throws InputError when an iteration of `replica` starting at `now` and lasting
// `duration` would end past kMaxSimulatedSeconds.
void CheckSimulatedTime(const std::string& config_file, Nanos now, Nanos duration, size_t replica) {
  if (ToSeconds(now) + ToSeconds(duration) > kMaxSimulatedSeconds) {
    throw InputError(fmt::format(
        "{}: the simulation passed the {:g} s kvsim simulates ({:g} s at an iteration of "
        "replica {}): the load or the timing terms are out of range",
        config_file, kMaxSimulatedSeconds, ToSeconds(now + duration), replica));
  }
}

// The finished run's summary: the metrics' own, with the facts of the scenario (the
// KV manager's label, skipped trace rows, prefix caching, KV bytes per token and
// capacity, vAttention's page size in bytes, 0 for other managers), the `events`
// handled and the wall time since `wall_start` (s). Every offered request either
// finished or was rejected: a request left queued would be a wrong answer, not a result.
Summary FinalSummary(const Simulation& sim, const Workload& workload, uint64_t events,
                     std::chrono::steady_clock::time_point wall_start) {
  const KvCacheConfig& kv = sim.config().kv_cache;
  RunFacts facts;
  facts.kv_manager = sim.kv_manager_label();
  facts.skipped_rows = workload.SkippedRowsNote();
  facts.prefix_caching = (kv.type == KvManagerType::kPaged && kv.paged.prefix_caching) ||
                         (kv.type == KvManagerType::kVAttention && kv.vattention.prefix_caching);
  facts.kv_bytes_per_token = sim.memory().kv_bytes_per_token;
  facts.kv_capacity_bytes = sim.memory().kv_capacity_bytes;
  facts.is_vattention = kv.type == KvManagerType::kVAttention;
  facts.page_bytes = facts.is_vattention ? kv.vattention.page_bytes : 0;
  facts.events = static_cast<int64_t>(events);
  facts.wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  Summary s = sim.metrics().Summarize(facts);
  KVSIM_CHECK(s.requests_completed + s.requests_rejected == s.requests_total,
              "the event loop ended with requests neither finished nor rejected");
  return s;
}

}  // namespace

std::optional<RequestSpec> Simulation::NextRequest() {
  try {
    return workload_->Next();
  } catch (const InputError& e) {
    throw InputError(fmt::format("{}: {}", config_.config_file, e.what()));
  }
}

RunResult Simulation::Run() {
  KVSIM_CHECK(!ran_, "a Simulation runs once");
  ran_ = true;
  const auto wall_start = std::chrono::steady_clock::now();

  EventQueue<Payload> events;
  std::vector<bool> step_pending(replicas_.size(), false);
  std::vector<ReplicaLoad> loads(replicas_.size());
  std::optional<RequestSpec> next = NextRequest();
  if (next) events.Push(next->arrival, EventPhase::kArrival, Arrival{});
  uint64_t handled = 0;
  // Arrivals on their way to the scheduler, oldest first (the delay is the same for
  // every request, so they become ready in arrival order).
  const Nanos ready_delay = SecondsToNanos(config_.timing.engine.request_arrival_s);
  std::deque<RequestSpec> on_the_way;
  Admission admission(memory_.max_model_len, *metrics_);
  auto route = [&](RequestSpec spec) {
    return RouteToReplica(std::move(spec), *router_, replicas_, loads);
  };
  auto request_step = [&](size_t r, Nanos now) {
    if (!step_pending[r] && !replicas_[r]->busy()) {
      step_pending[r] = true;
      events.Push(now, EventPhase::kSchedule, Step{r}, r);
    }
  };

  while (!events.empty()) {
    auto event = events.Pop();
    ++handled;
    const Nanos now = event.time;
    metrics_->AdvanceClock(now);  // what is recorded from here on starts at or after now
    if (std::holds_alternative<Arrival>(event.payload)) {
      RequestSpec spec = std::move(*next);
      if (admission.Admit(spec)) {
        if (ready_delay > Nanos(0)) {
          on_the_way.push_back(std::move(spec));
          events.Push(now + ready_delay, EventPhase::kArrival, Ready{});
        } else {
          request_step(route(std::move(spec)), now);
        }
      }
      next = NextRequest();
      if (next) {
        KVSIM_CHECK(next->arrival >= now, "workload arrivals must not go back in time");
        events.Push(next->arrival, EventPhase::kArrival, Arrival{});
      }
    } else if (std::holds_alternative<Ready>(event.payload)) {
      KVSIM_CHECK(!on_the_way.empty(), "a request became ready that never arrived");
      RequestSpec spec = std::move(on_the_way.front());
      on_the_way.pop_front();
      request_step(route(std::move(spec)), now);
    } else if (const auto* step = std::get_if<Step>(&event.payload)) {
      step_pending[step->replica] = false;
      // The next arrival anywhere may change this replica's queues: a run of decode
      // iterations (skip-ahead) must not start an iteration at or after it.
      const Nanos horizon = NextQueueChange(next, on_the_way, ready_delay);
      const Nanos duration = replicas_[step->replica]->StartIteration(now, horizon);
      CheckSimulatedTime(config_.config_file, now, duration, step->replica);
      if (duration > Nanos(0)) {
        // By replica at equal times, so the order does not depend on when the event
        // was pushed (a skip-ahead run pushes its end early).
        events.Push(now + duration, EventPhase::kCompletion, IterationDone{step->replica},
                    step->replica);
      }
    } else {
      const size_t r = std::get<IterationDone>(event.payload).replica;
      replicas_[r]->CompleteIteration(now);
      request_step(r, now);
    }
  }
  metrics_->FlushIterations();
  RunResult result;
  result.summary = FinalSummary(*this, *workload_, handled, wall_start);
  result.records = metrics_->TakeRecords();
  result.timing_caveats = timing_caveats();
  result.timing_assumptions = timing_assumptions();
  result.timing_line = TimingLine();
  return result;
}

}  // namespace kvsim
