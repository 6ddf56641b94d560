// compare's outputs: compare.json, the side-by-side table and its verdict line.
#include "sim/simulator/compare_outputs.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "sim/core/units.h"
#include "sim/metrics/json_writer.h"
#include "sim/simulator/outputs.h"

namespace kvsim {

std::string CompareJson(const std::vector<LabeledRun>& runs) {
  JsonWriter j;
  j.BeginArray();
  for (const LabeledRun& run : runs) {
    std::string_view summary = run.summary_json;
    if (summary.ends_with('\n')) summary.remove_suffix(1);
    j.BeginObject().Field("label", run.label).Raw("summary", summary).EndObject();
  }
  j.EndArray();
  return j.str();
}
namespace {

// The run ratios are taken against: the one labelled "paged", else the first paged
// run, else none.
const LabeledRun* PagedBase(const std::vector<LabeledRun>& runs) {
  for (const LabeledRun& r : runs) {
    if (r.label == "paged") return &r;
  }
  for (const LabeledRun& r : runs) {
    if (r.summary.kv_manager == kKvManagerTypes.Name(KvManagerType::kPaged)) return &r;
  }
  return nullptr;
}

// The runs that fall behind, as "; ..." clauses, "" when none does: overloaded (the
// wait grew through the trace and the queue never drained: Summary::overloaded);
// waiting (the median request waits over a second before its first iteration, where an
// engine with room starts a request within an iteration, tens of ms); or slow (TTFT
// p50 over a second and ten times `best_ttft_s`, the best run's).
std::string BehindClause(const std::vector<const LabeledRun*>& runs, double best_ttft_s) {
  std::vector<std::string> overloaded, waiting, waits, slow;
  for (const LabeledRun* r : runs) {
    const double ttft = r->summary.ttft_s.p50;
    const double wait = r->summary.queue_s.p50;
    if (r->summary.overloaded) {
      overloaded.push_back(r->label);
    } else if (MedianWaitOverASecond(r->summary)) {
      waiting.push_back(r->label);
      waits.push_back(fmt::format("{:.3g} s", wait));
    } else if (ttft > 1.0 && ttft > 10 * best_ttft_s) {
      slow.push_back(r->label);
    }
  }
  if (overloaded.size() == runs.size()) {
    return "; no run keeps up with the load (in each one the wait grows through the trace and "
           "the queue never drains, so its latencies depend on the trace's length)";
  }
  std::string out;
  if (!overloaded.empty()) {
    out += fmt::format("; {} {} not keep up with the load (the queue grows and never drains)",
                       fmt::join(overloaded, ", "), overloaded.size() == 1 ? "does" : "do");
  }
  if (!waiting.empty()) {
    out += fmt::format("; {} {} (median wait before the first iteration {}, over 1 s)",
                       fmt::join(waiting, ", "), waiting.size() == 1 ? "queues" : "queue",
                       fmt::join(waits, ", "));
  }
  if (!slow.empty()) {
    out += fmt::format("; {} queue{} (TTFT p50 > 1 s and 10x the best)", fmt::join(slow, ", "),
                       slow.size() == 1 ? "s" : "");
  }
  return out;
}

}  // namespace

std::string RefusalText(const std::vector<std::pair<std::string, const Summary*>>& runs) {
  std::vector<std::string> refusing;
  bool all_alike = true;
  for (const auto& [label, s] : runs) {
    if (s->requests_rejected > 0) {
      refusing.push_back(fmt::format("{} refuses {} of {} requests", label, s->requests_rejected,
                                     s->requests_total));
    }
    const Summary& first = *runs.front().second;
    all_alike = all_alike && s->requests_rejected == first.requests_rejected &&
                s->requests_total == first.requests_total;
  }
  if (refusing.empty()) return "";
  if (all_alike && refusing.size() > 1) {
    const Summary& s = *runs.front().second;
    return fmt::format("every run refuses {} of {} requests", s.requests_rejected,
                       s.requests_total);
  }
  return fmt::format("{}", fmt::join(refusing, ", "));
}

std::string FormatVerdict(const std::vector<LabeledRun>& runs) {
  // Runs that completed nothing have no latencies to compare.
  std::vector<const LabeledRun*> done;
  for (const LabeledRun& r : runs) {
    if (r.summary.requests_completed > 0) done.push_back(&r);
  }
  // Refusals in every run, one that completed nothing included.
  std::vector<std::pair<std::string, const Summary*>> labelled;
  for (const LabeledRun& r : runs) labelled.emplace_back(r.label, &r.summary);
  std::string refusals = RefusalText(labelled);
  if (!refusals.empty()) {
    refusals = "; " + refusals +
               " (prompt at or past max_model_len: in no latency above, so the load served is "
               "lighter than the load offered)";
  }
  if (done.empty()) {
    return runs.empty() ? "" : "verdict: no run completed a request" + refusals + "\n";
  }
  const LabeledRun* paged = PagedBase(runs);
  double best_ttft = done.front()->summary.ttft_s.p50;
  for (const LabeledRun* r : done) best_ttft = std::min(best_ttft, r->summary.ttft_s.p50);
  const std::string behind = BehindClause(done, best_ttft);
  // Each figure's best run, or every run within kVerdictTieFraction of the best: a
  // difference that small is named a tie, not a winner ("alike" when every run ties).
  const auto leaders = [&](double (*get)(const Summary&), bool lowest) {
    double best = get(done.front()->summary);
    for (const LabeledRun* r : done) {
      best = lowest ? std::min(best, get(r->summary)) : std::max(best, get(r->summary));
    }
    std::vector<const LabeledRun*> out;
    for (const LabeledRun* r : done) {
      if (std::abs(get(r->summary) - best) <= kVerdictTieFraction * std::abs(best)) {
        out.push_back(r);
      }
    }
    // The best itself first: its figure is the one printed.
    std::stable_partition(out.begin(), out.end(),
                          [&](const LabeledRun* r) { return get(r->summary) == best; });
    return out;
  };
  // The best first (its figure is the one printed), then its ties in the runs' order.
  const auto names = [&](const std::vector<const LabeledRun*>& group) {
    if (group.size() == done.size() && done.size() > 1) return std::string("alike in every run");
    std::vector<std::string> labels = {group.front()->label};
    for (const LabeledRun* r : done) {
      if (r != group.front() && std::find(group.begin(), group.end(), r) != group.end()) {
        labels.push_back(r->label);
      }
    }
    return fmt::format("{}", fmt::join(labels, ", "));
  };
  const auto e2e = leaders([](const Summary& s) { return s.e2e_s.p50; }, true);
  const auto kv = leaders([](const Summary& s) { return double(s.peak_allocated_bytes); }, true);
  const auto batch = leaders([](const Summary& s) { return double(s.max_running); }, false);
  const LabeledRun* fastest = e2e.front();
  std::string out =
      fmt::format("verdict: lowest E2E p50 {} ({:.3f} s", names(e2e), fastest->summary.e2e_s.p50);
  if (paged != nullptr && std::find(e2e.begin(), e2e.end(), paged) == e2e.end() &&
      paged->summary.requests_completed > 0 && paged->summary.e2e_s.p50 > 0) {
    out += fmt::format(", {:.2f}x {}", fastest->summary.e2e_s.p50 / paged->summary.e2e_s.p50,
                       paged->label);
  }
  // Under tight memory every run fills its KV cache, and a lower peak is only coarser
  // granularity stranding what it cannot use: no "least" then.
  const bool all_full = std::all_of(done.begin(), done.end(), [](const LabeledRun* r) {
    return r->summary.kv_capacity_bytes > 0 &&
           static_cast<double>(r->summary.peak_allocated_bytes) >=
               kKvFullFraction * static_cast<double>(r->summary.kv_capacity_bytes);
  });
  out += all_full ? fmt::format(
                        "); the KV cache filled in every run (peak within {:.0f}% of its "
                        "capacity: memory binds)",
                        100 * (1 - kKvFullFraction))
                  : fmt::format("); least KV at peak {} ({:.2f} GiB)", names(kv),
                                ToGiB(kv.front()->summary.peak_allocated_bytes));
  out += fmt::format("; largest batch {} ({} running)", names(batch),
                     batch.front()->summary.max_running);
  out += behind.empty() ? "; every run keeps up with the load" : behind;
  return out + refusals + "\n";
}

namespace {

// One row of the compare table: its name, its value in a summary, its format.
struct Row {
  const char* name;
  double (*get)(const Summary&);
  const char* format;
  // Shown only when some run caches prefixes, or when some run refused or truncated
  // requests for max_model_len.
  enum class Shown { kAlways, kPrefixCache, kMaxModelLen } shown = Shown::kAlways;
  // Whether a ratio to the base run follows the value: not for percentages, whose
  // ratio to a near-zero base says nothing (fragmentation 84.5% against 0.6%).
  bool ratio = true;
};
const Row kRows[] = {
    {"requests refused", [](const Summary& s) { return double(s.requests_rejected); }, "{:.0f}",
     Row::Shown::kMaxModelLen},
    {"requests truncated", [](const Summary& s) { return double(s.requests_truncated); }, "{:.0f}",
     Row::Shown::kMaxModelLen},
    {"throughput (req/s)", [](const Summary& s) { return s.requests_per_s; }, "{:.2f}"},
    {"output tokens/s", [](const Summary& s) { return s.output_tokens_per_s; }, "{:.0f}"},
    {"TTFT p50 (ms)", [](const Summary& s) { return 1e3 * s.ttft_s.OrNaN(&Percentiles::p50); },
     "{:.1f}"},
    {"TTFT p99 (ms)", [](const Summary& s) { return 1e3 * s.ttft_s.OrNaN(&Percentiles::p99); },
     "{:.1f}"},
    {"TBT p50 (ms)", [](const Summary& s) { return 1e3 * s.tbt_s.OrNaN(&Percentiles::p50); },
     "{:.2f}"},
    {"TBT p99 (ms)", [](const Summary& s) { return 1e3 * s.tbt_s.OrNaN(&Percentiles::p99); },
     "{:.2f}"},
    {"TPOT p50 (ms)", [](const Summary& s) { return 1e3 * s.tpot_s.OrNaN(&Percentiles::p50); },
     "{:.2f}"},
    {"TPOT p99 (ms)", [](const Summary& s) { return 1e3 * s.tpot_s.OrNaN(&Percentiles::p99); },
     "{:.2f}"},
    {"E2E p50 (s)", [](const Summary& s) { return s.e2e_s.OrNaN(&Percentiles::p50); }, "{:.3f}"},
    {"E2E p99 (s)", [](const Summary& s) { return s.e2e_s.OrNaN(&Percentiles::p99); }, "{:.3f}"},
    {"max running batch", [](const Summary& s) { return double(s.max_running); }, "{:.0f}"},
    {"mean running batch", [](const Summary& s) { return s.mean_running; }, "{:.1f}"},
    {"KV fragmentation (%)", [](const Summary& s) { return 100 * s.fragmentation; }, "{:.1f}",
     Row::Shown::kAlways, false},
    {"KV peak allocated (GiB)", [](const Summary& s) { return ToGiB(s.peak_allocated_bytes); },
     "{:.2f}"},
    {"preemptions", [](const Summary& s) { return double(s.preemptions); }, "{:.0f}"},
    {"prefix hit (% prompt)",
     [](const Summary& s) {
       return s.prompt_tokens > 0 ? 100.0 * static_cast<double>(s.prefix_hit_tokens) /
                                        static_cast<double>(s.prompt_tokens)
                                  : 0.0;
     },
     "{:.1f}", Row::Shown::kPrefixCache, false},
    {"recomputed tokens", [](const Summary& s) { return double(s.recomputed_tokens); }, "{:.0f}",
     Row::Shown::kPrefixCache},
    {"exposed mapping (s)", [](const Summary& s) { return s.exposed_overhead_s; }, "{:.3f}"},
};

}  // namespace

std::string FormatCompareTable(const std::vector<LabeledRun>& runs) {
  const LabeledRun* base = PagedBase(runs);
  const bool any_prefix_cache = std::any_of(
      runs.begin(), runs.end(), [](const LabeledRun& r) { return r.summary.prefix_caching; });
  const bool any_max_model_len = std::any_of(runs.begin(), runs.end(), [](const LabeledRun& r) {
    return r.summary.requests_rejected > 0 || r.summary.requests_truncated > 0;
  });
  // Cells first: each column is as wide as its widest cell or label plus two spaces
  // (at least 18), so that no value runs into the one before it.
  std::vector<std::pair<const char*, std::vector<std::string>>> table;
  std::vector<size_t> width(runs.size(), 18);
  for (size_t i = 0; i < runs.size(); ++i) width[i] = std::max(width[i], runs[i].label.size() + 2);
  for (const Row& row : kRows) {
    if ((row.shown == Row::Shown::kPrefixCache && !any_prefix_cache) ||
        (row.shown == Row::Shown::kMaxModelLen && !any_max_model_len)) {
      continue;
    }
    const double b = base ? row.get(base->summary) : 0;
    std::vector<std::string> cells;
    for (const LabeledRun& r : runs) {
      const double v = row.get(r.summary);
      std::string cell = FormatOrNa(v, row.format);
      if (row.ratio && base && &r != base && b != 0 && std::isfinite(v / b)) {
        cell += fmt::format(" ({:.2f}x)", v / b);
      }
      width[cells.size()] = std::max(width[cells.size()], cell.size() + 2);
      cells.push_back(std::move(cell));
    }
    table.emplace_back(row.name, std::move(cells));
  }
  constexpr int kName = 24;
  std::string out = fmt::format("{:<{}}", "", kName);
  for (size_t i = 0; i < runs.size(); ++i) out += fmt::format("{:>{}}", runs[i].label, width[i]);
  out += "\n";
  for (const auto& [name, cells] : table) {
    out += fmt::format("{:<{}}", name, kName);
    for (size_t i = 0; i < cells.size(); ++i) out += fmt::format("{:>{}}", cells[i], width[i]);
    out += "\n";
  }
  if (base) out += fmt::format("ratios in brackets are to '{}'\n", base->label);
  return out;
}

}  // namespace kvsim
