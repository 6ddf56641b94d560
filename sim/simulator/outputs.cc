// Writers for run and compare outputs.
#include "sim/simulator/outputs.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <set>
#include <tuple>

#include "sim/core/check.h"
#include "sim/core/units.h"
#include "sim/metrics/json_writer.h"
#include "sim/simulator/compare_outputs.h"

namespace kvsim {

namespace {

namespace fs = std::filesystem;

}  // namespace

void WritePercentiles(JsonWriter& j, std::string_view key, const Percentiles& p) {
  j.BeginObject(key)  // NaN, so null, when there were no values
      .Field("mean", p.OrNaN(&Percentiles::mean))
      .Field("p50", p.OrNaN(&Percentiles::p50))
      .Field("p90", p.OrNaN(&Percentiles::p90))
      .Field("p99", p.OrNaN(&Percentiles::p99))
      .EndObject();
}

std::string FormatOrNa(double value, std::string_view format) {
  return std::isnan(value) ? std::string("n/a") : fmt::format(fmt::runtime(format), value);
}

namespace {

// The "scenario" object of a summary: what was simulated (model, GPU, deployment,
// scheduler, dtype sizes in bytes, workload).
void ScenarioSection(JsonWriter& j, const Simulation& sim) {
  const ScenarioConfig& c = sim.config();
  j.BeginObject("scenario")
      .Field("model", sim.model().name)
      .Field("gpu", sim.gpu().name)
      .Field("tensor_parallel", c.deployment.tensor_parallel)
      .Field("replicas", c.deployment.replicas)
      .Field("router", kRouterTypes.Name(c.deployment.router))
      .Field("scheduler", SchedulerTypeName(c.scheduler.type))
      .Field("kv_cache", KvManagerText(c))
      .Field("max_model_len", sim.memory().max_model_len)
      .Field("weight_bytes_per_param", sim.model().weight_dtype_bytes)
      .Field("kv_bytes_per_element", sim.model().kv_dtype_bytes)
      .Field("seed", static_cast<int64_t>(c.seed))
      .Field("trace", c.workload.trace_path)
      .Field("arrival_process", ArrivalProcessName(c.workload.arrival))
      .FieldExact("rate_qps", c.workload.rate_qps)
      .EndObject();
}

// The "timing" object (the timing model, its profile, engine preset, paged kernel
// and assumptions) and the "timing_caveats" array.
void TimingSections(JsonWriter& j, const Simulation& sim) {
  const ScenarioConfig& c = sim.config();
  j.BeginObject("timing")
      .Field("model", sim.timing_name())
      .Field("profile", c.timing.type == TimingType::kProfiled ? c.timing.profile_path : "");
  // The fixed model has no engine terms in its iterations (only the per-request ones).
  if (c.timing.type != TimingType::kFixed) {
    j.Field("engine_preset", EnginePresetName(c.timing.engine.preset));
  }
  if (c.timing.type != TimingType::kFixed && c.kv_cache.type == KvManagerType::kPaged) {
    j.Field("paged_kernel", PagedKernelName(c.kv_cache.paged_kernel));
  }
  j.BeginArray("assumptions");
  for (const std::string& a : sim.timing_assumptions()) j.Field({}, a);
  j.EndArray().EndObject();
  j.BeginArray("timing_caveats");
  for (const std::string& caveat : sim.timing_caveats()) j.Field({}, caveat);
  j.EndArray();
}

// The request counts, the makespan (s), the "throughput" object (per second) and
// the latency percentiles (s), with how exact they are.
void RequestSections(JsonWriter& j, const Summary& s) {
  j.Field("requests_total", s.requests_total);
  j.Field("requests_completed", s.requests_completed);
  j.Field("requests_rejected", s.requests_rejected);
  j.Field("requests_truncated", s.requests_truncated);
  j.Field("trace_rows_skipped", s.skipped_rows);
  j.Field("makespan_s", s.makespan_s);
  j.BeginObject("throughput")
      .Field("requests_per_s", s.requests_per_s)
      .Field("output_tokens_per_s", s.output_tokens_per_s)
      .Field("total_tokens_per_s", s.total_tokens_per_s)
      .EndObject();
  WritePercentiles(j, "ttft_s", s.ttft_s);
  WritePercentiles(j, "tbt_s", s.tbt_s);
  WritePercentiles(j, "tpot_s", s.tpot_s);
  WritePercentiles(j, "e2e_s", s.e2e_s);
  WritePercentiles(j, "queue_s", s.queue_s);
  // Request percentiles are exact up to MetricsOptions::exact_percentile_limit requests.
  j.Field("percentiles", s.percentiles_exact ? "exact" : "log histogram, within 0.4%");
}

// The "load" object (arrival span in s; offered rate, null for a batch; queueing
// delays and the backlog's age in s), the preemption count and the "prefix_cache"
// object (tokens and requests hit, hit rates as fractions).
void LoadAndPrefixSections(JsonWriter& j, const Summary& s) {
  j.BeginObject("load")
      .Field("arrival_span_s", s.arrival_span_s)
      .Field("offered_qps", s.offered_qps)
      .Field("queue_first_quarter_s", s.queue_first_quarter_s)
      .Field("queue_last_quarter_s", s.queue_last_quarter_s)
      .Field("backlog_age_s", s.backlog_age_s)
      .Field("overloaded", s.overloaded)
      .EndObject();
  j.Field("preemptions", s.preemptions);
  j.BeginObject("prefix_cache")
      .Field("enabled", s.prefix_caching)
      .Field("prompt_tokens", s.prompt_tokens)
      .Field("hit_tokens", s.prefix_hit_tokens)
      .Field("token_hit_rate", s.prompt_tokens > 0 ? static_cast<double>(s.prefix_hit_tokens) /
                                                         static_cast<double>(s.prompt_tokens)
                                                   : 0.0)
      .Field("hit_requests", s.prefix_hit_requests)
      .Field("request_hit_rate", s.requests_completed > 0
                                     ? static_cast<double>(s.prefix_hit_requests) /
                                           static_cast<double>(s.requests_completed)
                                     : 0.0)
      .Field("recomputed_tokens", s.recomputed_tokens)
      .EndObject();
}

// The "kv" object (KV memory in bytes), the "batch" object and, for vAttention,
// the "vattention" object (page size in bytes, map calls, overheads in s).
void MemorySections(JsonWriter& j, const Summary& s) {
  j.BeginObject("kv")
      .Field("bytes_per_token", s.kv_bytes_per_token)
      .Field("capacity_bytes", s.kv_capacity_bytes)
      .Field("peak_allocated_bytes", s.peak_allocated_bytes)
      .Field("mean_allocated_bytes", s.mean_allocated_bytes)
      .Field("mean_live_bytes", s.mean_live_bytes)
      .Field("mean_cached_bytes", s.mean_cached_bytes)
      .Field("fragmentation", s.fragmentation)
      .EndObject();
  j.BeginObject("batch")
      .Field("max_running", s.max_running)
      .Field("mean_running", s.mean_running)
      .Field("iterations", s.iterations)
      .EndObject();
  if (s.is_vattention) {
    j.BeginObject("vattention")
        .Field("page_bytes", s.page_bytes)
        .Field("map_calls", s.map_calls)
        .Field("unmap_calls", s.unmap_calls)
        .Field("exposed_overhead_s", s.exposed_overhead_s)
        .Field("hidden_overhead_s", s.hidden_overhead_s)
        .EndObject();
  }
}

}  // namespace

std::string SummaryJson(const Summary& s, const Simulation& sim) {
  JsonWriter j;
  j.BeginObject();
  j.Field("kv_manager", s.kv_manager);
  ScenarioSection(j, sim);
  TimingSections(j, sim);
  RequestSections(j, s);
  LoadAndPrefixSections(j, s);
  MemorySections(j, s);
  j.BeginObject("sim").Field("wall_s", s.wall_s).Field("events", s.events).EndObject();
  j.EndObject();
  return j.str();
}

Manifest::Manifest(const fs::path& dir) : dir_(dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    throw InputError(
        fmt::format("{}: cannot create output directory: {}", dir.string(), ec.message()));
  }
}

void Manifest::Write(const std::string& name, std::string_view text) {
  FileWriter w(dir_ / name, std::min<size_t>(text.size() + 64, size_t{1} << 20));
  w.Text(text);
  w.Commit();
  Add(name, w);
}

void Manifest::Add(const std::string& name, const FileWriter& committed) {
  files_.push_back({name, committed.bytes(), committed.crc32()});
}

void Manifest::Close() {
  JsonWriter j;
  j.BeginObject();
  j.Field("kvsim_version", KvsimVersion());
  j.BeginArray("files");
  for (const File& f : files_) {
    j.BeginObject()
        .Field("name", f.name)
        .Field("bytes", f.bytes)
        .Field("crc32", fmt::format("{:08x}", f.crc32))
        .EndObject();
  }
  j.EndArray().EndObject();
  WriteFileAtomically(dir_ / "manifest.json", j.str());
}

RunOutputWriter::RunOutputWriter(const fs::path& dir, const OutputConfig& output)
    : dir_(dir), output_(output), out_(dir) {
  if (output_.requests_csv) {
    requests_ = std::make_unique<FileWriter>(dir_ / "requests.csv");
    requests_->Text(
        "id,replica,arrival_s,first_scheduled_s,first_token_s,finish_s,prompt_tokens,"
        "output_tokens,preemptions\n");
  }
  if (output_.timeseries_csv) {
    timeseries_ = std::make_unique<FileWriter>(dir_ / "timeseries.csv");
    timeseries_->Text(output_.timeseries_interval > Nanos(0)
                          ? "time_s,replica,interval_s,iterations,busy_s,mean_running,"
                            "max_running,max_waiting,prefill_tokens,decode_tokens,"
                            "mean_allocated_bytes,peak_allocated_bytes,mean_live_bytes,"
                            "mean_cached_bytes,exposed_overhead_s\n"
                          : "time_s,replica,duration_s,running,waiting,prefill_tokens,"
                            "decode_tokens,allocated_bytes,live_bytes,cached_bytes,"
                            "exposed_overhead_s\n");
  }
}

RunOutputWriter::~RunOutputWriter() = default;

void RunOutputWriter::OnRequest(const RequestRecord& r) {
  if (!requests_) return;
  requests_->Int(r.id).Char(',').Int(r.replica).Char(',');
  requests_->Seconds(r.arrival).Char(',').Seconds(r.first_scheduled).Char(',');
  requests_->Seconds(r.first_token).Char(',').Seconds(r.finish).Char(',');
  requests_->Int(r.prompt_tokens).Char(',').Int(r.output_tokens).Char(',');
  requests_->Int(r.preemptions).Char('\n');
}

void RunOutputWriter::OnIteration(const IterationSample& x) {
  if (!timeseries_) return;
  const Nanos interval = output_.timeseries_interval;
  if (interval <= Nanos(0)) {
    FileWriter& w = *timeseries_;
    w.Seconds(x.start).Char(',').Int(x.replica).Char(',').Seconds(x.duration).Char(',');
    w.Int(x.running).Char(',').Int(x.waiting).Char(',').Int(x.prefill_tokens).Char(',');
    w.Int(x.decode_tokens).Char(',').Int(x.allocated_bytes).Char(',').Int(x.live_bytes);
    w.Char(',').Int(x.cached_bytes).Char(',').Seconds(x.exposed_overhead).Char('\n');
    return;
  }
  const auto replica = static_cast<size_t>(x.replica);
  if (replica >= open_.size()) open_.resize(replica + 1);
  const int64_t index = x.start.count() / interval.count();
  // Iterations arrive in start order, so once one starts in interval `index`, no
  // replica's earlier interval gets more: write them all, by (interval, replica).
  if (index > latest_index_) {
    CloseIntervalsBefore(index);
    latest_index_ = index;
  }
  Interval& o = open_[replica];
  if (o.index != index) {
    o = Interval{};
    o.index = index;
  }
  const auto d = static_cast<double>(x.duration.count());
  ++o.iterations;
  o.busy += x.duration;
  o.exposed += x.exposed_overhead;
  o.running_ns += d * static_cast<double>(x.running);
  o.allocated_ns += d * static_cast<double>(x.allocated_bytes);
  o.live_ns += d * static_cast<double>(x.live_bytes);
  o.cached_ns += d * static_cast<double>(x.cached_bytes);
  o.max_running = std::max(o.max_running, x.running);
  o.max_waiting = std::max(o.max_waiting, x.waiting);
  o.prefill_tokens += x.prefill_tokens;
  o.decode_tokens += x.decode_tokens;
  o.peak_allocated = std::max(o.peak_allocated, x.allocated_bytes);
}

void RunOutputWriter::CloseIntervalsBefore(int64_t index) {
  for (;;) {
    size_t first = open_.size();  // the open interval to write next, by (index, replica)
    for (size_t r = 0; r < open_.size(); ++r) {
      if (open_[r].index >= 0 && open_[r].index < index &&
          (first == open_.size() || open_[r].index < open_[first].index)) {
        first = r;
      }
    }
    if (first == open_.size()) return;
    WriteInterval(static_cast<int64_t>(first), open_[first]);
    open_[first] = Interval{};
  }
}

void RunOutputWriter::WriteInterval(int64_t replica, const Interval& o) {
  FileWriter& w = *timeseries_;
  const Nanos interval = output_.timeseries_interval;
  const auto busy = static_cast<double>(o.busy.count());  // > 0: iterations take time
  const auto mean = [busy](double integral) { return std::llround(integral / busy); };
  w.Seconds(interval * o.index).Char(',').Int(replica).Char(',').Seconds(interval).Char(',');
  w.Int(o.iterations).Char(',').Seconds(o.busy).Char(',').Double(o.running_ns / busy);
  w.Char(',').Int(o.max_running).Char(',').Int(o.max_waiting).Char(',').Int(o.prefill_tokens);
  w.Char(',').Int(o.decode_tokens).Char(',').Int(mean(o.allocated_ns)).Char(',');
  w.Int(o.peak_allocated).Char(',').Int(mean(o.live_ns)).Char(',').Int(mean(o.cached_ns));
  w.Char(',').Seconds(o.exposed).Char('\n');
}

void RunOutputWriter::Finish(const Simulation& sim, const Summary& summary,
                             const std::string& resolved_yaml) {
  if (timeseries_) {
    CloseIntervalsBefore(std::numeric_limits<int64_t>::max());
    open_.clear();
    timeseries_->Commit();
    out_.Add("timeseries.csv", *timeseries_);
  }
  if (requests_) {
    requests_->Commit();
    out_.Add("requests.csv", *requests_);
  }
  out_.Write("summary.json", SummaryJson(summary, sim));
  out_.Write("config.yaml", resolved_yaml);
  out_.Close();
}

std::string DeploymentText(const Simulation& sim) {
  const DeploymentConfig& d = sim.config().deployment;
  std::string out = fmt::format("{} replica(s) x {} {} (TP {})", d.replicas, d.tensor_parallel,
                                sim.gpu().name, d.tensor_parallel);
  if (d.replicas > 1) out += fmt::format(", router {}", kRouterTypes.Name(d.router));
  return out;
}

std::string KvManagerText(const ScenarioConfig& c) {
  const KvCacheConfig& k = c.kv_cache;
  switch (k.type) {
    case KvManagerType::kPaged:
      return fmt::format("paged ({}-token blocks)", k.paged.block_tokens);
    case KvManagerType::kVAttention:
      return fmt::format("vattention ({} pages, {} VMM)", PageSizeText(k.vattention.page_bytes),
                         kVmmBackends.Name(k.vattention.backend));
    case KvManagerType::kStatic:
      return fmt::format("static (reserves {})", kStaticReserves.Name(k.static_kv.reserve));
  }
  return "";
}

namespace {

// The load offered: "at 4 req/s offered", or for arrivals that span no time "all 200
// requests arriving at once" (a batch has no rate: Summary::offered_qps is NaN).
std::string OfferedLoadText(const Summary& s) {
  if (std::isfinite(s.offered_qps)) return fmt::format("at {:.3g} req/s offered", s.offered_qps);
  if (s.requests_total == 0) return "with no request offered";
  if (s.requests_total == 1) return "its one request arriving alone";
  return fmt::format("all {} requests arriving at once", s.requests_total);
}

// Why a run that is not overloaded (TestOverload) is not: a batch; its waiting queue
// emptied in the last quarter of the arrivals; or its wait did not grow.
std::string WhyNotOverloaded(const Summary& s) {
  const OverloadTest t = TestOverload(s);
  if (s.arrival_span_s <= 0) return "a batch has no rate to fall behind, so it is not overloaded";
  if (t.backlog_age_s <= 0) {
    return "the waiting queue was empty when the last request arrived: not overloaded";
  }
  if (t.backlog_age_s <= t.backlog_limit_s) {
    return fmt::format(
        "the waiting queue last emptied {:.3g} s before the last arrival, in the last quarter of "
        "the {:.3g} s of arrivals: it drains between bursts, not overloaded",
        t.backlog_age_s, s.arrival_span_s);
  }
  return fmt::format("the mean wait grew by no more than {:g} s through the trace: not overloaded",
                     t.growth_limit_s);
}

// run's line on the load when it outruns the deployment: OVERLOADED (TestOverload), or
// QUEUEING when the median request waited over a second; "" otherwise.
std::string LoadLine(const Summary& s) {
  if (s.overloaded) {
    return fmt::format(
        "  OVERLOADED: the mean wait before the first iteration grew from {:.3f} s (first quarter "
        "of the arrivals) to {:.3f} s (last quarter), and requests had waited without a break "
        "for {:.3g} s of the {:.3g} s of arrivals when the last one came, {}; this deployment "
        "does not keep up, so the latencies depend on how long the trace is",
        s.queue_first_quarter_s, s.queue_last_quarter_s, s.backlog_age_s, s.arrival_span_s,
        OfferedLoadText(s));
  }
  if (!MedianWaitOverASecond(s)) return "";
  // Not overloaded, yet most requests wait: a load that rises and falls past what the
  // deployment serves (compare's verdict says "queues").
  return fmt::format(
      "  QUEUEING: the median request waited {:.3f} s before its first iteration, {}; {}, but {}",
      s.queue_s.p50, OfferedLoadText(s), WhyNotOverloaded(s),
      s.arrival_span_s > 0 ? "this deployment falls short of the load where it peaks"
                           : "it is more than this deployment starts at once");
}

}  // namespace

std::string FormatSummary(const Summary& s, const Simulation& sim) {
  const ScenarioConfig& c = sim.config();
  const MemoryPlan& m = sim.memory();
  std::string out;
  auto line = [&out](const std::string& text) { out += text + "\n"; };
  line(fmt::format("{} on {}, scheduler {}, KV manager {}", sim.model().name, DeploymentText(sim),
                   SchedulerTypeName(c.scheduler.type), KvManagerText(c)));
  line(
      fmt::format("  memory per GPU: weights {:.2f} GiB, KV capacity {:.2f} GiB, {} KiB/token, "
                  "max_model_len {}",
                  ToGiB(m.weight_bytes), ToGiB(m.kv_capacity_bytes),
                  static_cast<double>(m.kv_bytes_per_token) / 1024.0, m.max_model_len));
  line(fmt::format("  requests: {} completed of {} ({} rejected, {} truncated to max_model_len){}",
                   s.requests_completed, s.requests_total, s.requests_rejected,
                   s.requests_truncated,
                   s.requests_total > 1 && s.arrival_span_s <= 0
                       ? ", all arriving at once (a batch: no offered rate)"
                       : ""));
  if (!s.skipped_rows.empty()) line("  trace: " + s.skipped_rows);
  if (c.workload.max_requests > s.requests_total) {
    line(
        fmt::format("  workload: max_requests {} asks for more requests than the workload holds; "
                    "it ran all {}",
                    c.workload.max_requests, s.requests_total));
  }
  line(fmt::format("  makespan {:.2f} s; throughput {:.2f} req/s, {:.0f} output tok/s",
                   s.makespan_s, s.requests_per_s, s.output_tokens_per_s));
  const std::string load = LoadLine(s);
  if (!load.empty()) line(load);
  // Per-token latencies in milliseconds, whole requests in seconds.
  for (const auto& [name, p, scale, format, unit] :
       {std::tuple{"TTFT", &s.ttft_s, 1e3, "{:8.1f}", "ms"},
        {"TBT ", &s.tbt_s, 1e3, "{:8.2f}", "ms"},
        {"TPOT", &s.tpot_s, 1e3, "{:8.2f}", "ms"},
        {"E2E ", &s.e2e_s, 1.0, "{:8.3f}", "s"}}) {
    line(fmt::format("  {}  p50 {:>8} {:<2}  p99 {:>8} {}", name,
                     FormatOrNa(scale * p->OrNaN(&Percentiles::p50), format), unit,
                     FormatOrNa(scale * p->OrNaN(&Percentiles::p99), format), unit));
  }
  const bool fleet = c.deployment.replicas > 1;
  line(fmt::format("  batch{}: max {} / mean {:.1f} running; {} preemptions",
                   fleet ? " per replica" : "", s.max_running, s.mean_running, s.preemptions));
  if (s.prefix_caching) {
    line(
        fmt::format("  prefix cache: {:.1f}% of prompt tokens found cached, {} of {} requests hit; "
                    "{} tokens recomputed after preemptions",
                    s.prompt_tokens > 0 ? 100.0 * static_cast<double>(s.prefix_hit_tokens) /
                                              static_cast<double>(s.prompt_tokens)
                                        : 0.0,
                    s.prefix_hit_requests, s.requests_completed, s.recomputed_tokens));
  }
  line(fmt::format(
      "  KV per GPU{}: peak {:.2f} GiB, mean allocated {:.2f} GiB, mean live {:.2f} "
      "GiB, fragmentation {:.1f}%",
      fleet ? " (the largest replica's peak, means over all)" : "", ToGiB(s.peak_allocated_bytes),
      ToGiB(s.mean_allocated_bytes), ToGiB(s.mean_live_bytes), 100 * s.fragmentation));
  if (s.is_vattention) {
    line(fmt::format(
        "  vAttention: {} KiB pages, {} map / {} unmap calls, exposed {:.3f} s, "
        "hidden {:.3f} s{}; {:.2f} GiB {} on average",
        s.page_bytes / 1024, s.map_calls, s.unmap_calls, s.exposed_overhead_s, s.hidden_overhead_s,
        fleet ? " (summed over replicas)" : "", ToGiB(s.mean_cached_bytes),
        // With prefix caching, cached page groups keep their content
        // whether or not a range maps them.
        s.prefix_caching ? "unneeded but mapped or caching content (reusable)"
                         : "mapped but unneeded (reusable)"));
  }
  line(fmt::format("  simulated {} events in {:.3f} s wall", s.events, s.wall_s));
  line("  " + sim.TimingLine());
  for (const std::string& caveat : sim.timing_caveats()) line("  caveat: " + caveat);
  for (const std::string& a : sim.timing_assumptions()) line("  assumed: " + a);
  return out;
}

const char* KvsimVersion() { return KVSIM_VERSION; }

std::string FormatCaveats(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& labelled,
    const char* prefix) {
  std::vector<std::pair<std::string, std::vector<std::string>>> caveats;  // text, its labels
  std::set<std::string> all_labels;
  for (const auto& [label, texts] : labelled) {
    all_labels.insert(label);
    for (const std::string& text : texts) {
      auto it = std::find_if(caveats.begin(), caveats.end(),
                             [&](const auto& c) { return c.first == text; });
      if (it == caveats.end()) it = caveats.insert(caveats.end(), {text, {}});
      if (std::find(it->second.begin(), it->second.end(), label) == it->second.end()) {
        it->second.push_back(label);
      }
    }
  }
  std::string out;
  for (const auto& [text, labels] : caveats) {
    out += labels.size() == all_labels.size()
               ? fmt::format("{}: {}\n", prefix, text)
               : fmt::format("{} ({}): {}\n", prefix, fmt::join(labels, ", "), text);
  }
  return out;
}

}  // namespace kvsim
