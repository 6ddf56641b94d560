// kvsim validate's summaries and printed table (validate.h): per-group errors, the
// tolerance count, per-class errors and the text FormatValidation prints.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "sim/timing/profile_schema.h"
#include "sim/timing/validate.h"

namespace kvsim {
namespace {

constexpr std::string_view kStep = profile_schema::section::kStep;

std::string LayoutText(const StepRow& r) {
  return r.layout == AttentionLayout::kContiguous
             ? std::string(kAttentionLayouts.Name(r.layout))
             : fmt::format("{}/{}", kAttentionLayouts.Name(r.layout), r.block_tokens);
}

// "16 x 2048" (decoding sequences x cached context), "-" without decodes.
std::string DecodeText(const StepRow& r) {
  return r.decode_seqs > 0 ? fmt::format("{} x {}", r.decode_seqs, r.context_tokens) : "-";
}

// A signed percentage with one decimal, e.g. "+10.0%".
std::string Percent(double fraction) {
  const double pct = 100 * fraction;
  // -0.04% reads +0.0%, not -0.0%.
  return fmt::format("{:+.1f}%", std::abs(pct) < 0.05 ? 0.0 : pct);
}

// The summary groups in print order: the three kinds, then models by first
// appearance; with rows of several tensor-parallel degrees, each per degree
// ("decode-only TP 2").
struct SummaryGroup {
  std::string name;
  std::function<bool(const StepRow&)> member;
};
std::vector<SummaryGroup> SummaryGroups(const Validation& v) {
  std::vector<int64_t> tps;
  for (const StepPrediction& p : v.rows) {
    if (std::find(tps.begin(), tps.end(), p.row.tensor_parallel) == tps.end()) {
      tps.push_back(p.row.tensor_parallel);
    }
  }
  std::sort(tps.begin(), tps.end());
  std::vector<SummaryGroup> groups;
  auto add = [&](const std::string& name, const std::function<bool(const StepRow&)>& member) {
    for (int64_t tp : tps) {
      groups.push_back(
          {tps.size() > 1 ? fmt::format("{} TP {}", name, tp) : name,
           [member, tp](const StepRow& r) { return r.tensor_parallel == tp && member(r); }});
    }
  };
  for (StepKind k : {StepKind::kDecode, StepKind::kPrefill, StepKind::kMixed}) {
    add(StepKindName(k), [k](const StepRow& r) { return r.kind() == k; });
  }
  std::vector<std::string> models;
  for (const StepPrediction& p : v.rows) {
    if (std::find(models.begin(), models.end(), p.row.model) == models.end()) {
      models.push_back(p.row.model);
    }
  }
  for (const std::string& m : models) {
    add(m, [m](const StepRow& r) { return r.model == m; });
  }
  return groups;
}

}  // namespace

std::vector<ErrorSummary> SummarizeErrors(const Validation& v) {
  std::vector<ErrorSummary> out;
  for (const SummaryGroup& g : SummaryGroups(v)) {
    ErrorSummary s{.group = g.name};
    for (size_t i = 0; i < v.rows.size(); ++i) {
      const StepPrediction& p = v.rows[i];
      if (!g.member(p.row)) continue;
      const double profiled = std::abs(p.profiled_error());
      const double roofline = std::abs(p.roofline_error());
      if (s.rows == 0 || profiled > std::abs(v.rows[s.profiled_worst].profiled_error())) {
        s.profiled_worst = i;
      }
      if (s.rows == 0 || roofline > std::abs(v.rows[s.roofline_worst].roofline_error())) {
        s.roofline_worst = i;
      }
      s.profiled_mean_abs += profiled;
      s.roofline_mean_abs += roofline;
      s.profiled_within += p.ProfiledWithin(v.config) ? 1 : 0;
      s.roofline_within += p.RooflineWithin(v.config) ? 1 : 0;
      ++s.rows;
    }
    if (s.rows == 0) continue;
    s.profiled_mean_abs /= static_cast<double>(s.rows);
    s.roofline_mean_abs /= static_cast<double>(s.rows);
    out.push_back(std::move(s));
  }
  return out;
}

ToleranceCount CountWithinTolerance(const Validation& v) {
  ToleranceCount n;
  for (const StepPrediction& p : v.rows) {
    ++n.rows;
    n.profiled_within += p.ProfiledWithin(v.config) ? 1 : 0;
    n.roofline_within += p.RooflineWithin(v.config) ? 1 : 0;
  }
  return n;
}

std::vector<ClassErrorSummary> SummarizeClassErrors(const Validation& v) {
  std::vector<ClassErrorSummary> out;
  for (const SummaryGroup& g : SummaryGroups(v)) {
    ClassErrorSummary s{.group = g.name};
    const auto add = [](ClassErrorSummary::Error& e, double predicted_s, double measured_s) {
      if (!(measured_s > 0)) return;
      const double error = predicted_s / measured_s - 1;
      e.mean += error;
      e.mean_abs += std::abs(error);
      ++e.rows;
    };
    for (const StepPrediction& p : v.rows) {
      if (!g.member(p.row) || !p.row.measured_classes) continue;
      const KernelClassSeconds& m = *p.row.measured_classes;
      const KernelClassSeconds& c = p.profiled_classes;
      add(s.gemm, c.gemm_s, m.gemm_s);
      add(s.attention, c.attention_s, m.attention_s);
      add(s.other, c.other_s, m.other_s);
      add(s.collective, c.collective_s, m.collective_s);
      s.pass_vs_classes += p.row.time_us * 1e-6 / m.Sum() - 1;
      ++s.rows;
    }
    if (s.rows == 0) continue;
    for (ClassErrorSummary::Error* e : {&s.gemm, &s.attention, &s.other, &s.collective}) {
      if (e->rows == 0) continue;
      e->mean /= static_cast<double>(e->rows);
      e->mean_abs /= static_cast<double>(e->rows);
    }
    s.pass_vs_classes /= static_cast<double>(s.rows);
    out.push_back(std::move(s));
  }
  return out;
}

namespace {

// FormatValidation's first lines: what was predicted, from what, and how.
std::string ValidationHeader(const Validation& v) {
  const ValidateConfig& c = v.config;
  const RooflineConfig& e = v.roofline_efficiencies;
  size_t skipped = 0;
  for (const SkippedSteps& s : v.skipped) skipped += s.lines.size();
  const std::string kernel_rows = v.steps_path == v.profile_path
                                      ? std::string("this profile's kernel rows")
                                      : fmt::format("the kernel rows of {}", v.profile_path);
  return fmt::format(
      "{}: {} [{}] rows measured on '{}', {} predicted for the {} card\n"
      "profiled: {}, prefill attention {}, paged kernel profiled (kvprobe's)\n"
      "roofline: efficiencies gemm {:g}, memory {:g}, prefill attention {:g}, decode attention "
      "{:g}; paged kernel {}\n"
      "both: no CPU time (engine preset none), kernel gap {:g} us (roofline: each of 10 kernels "
      "per layer; profiled: only small kernels estimated from their bytes, its rows being graph "
      "replays that hold each launch's boundary); error = (predicted - measured) / measured\n",
      v.steps_path, v.rows.size() + skipped, kStep, v.measured_on, v.rows.size(), v.gpu_card,
      kernel_rows, kPrefillAttentions.Name(c.profiled.prefill_attention), e.gemm_efficiency,
      e.memory_efficiency, e.attention_prefill_efficiency, e.attention_decode_efficiency,
      PagedKernelName(c.roofline_paged_kernel), c.engine.kernel_gap_s * 1e6);
}

}  // namespace

std::string FormatValidation(const Validation& v) {
  const ValidateConfig& c = v.config;
  std::string out = ValidationHeader(v);
  // The rows, then one summary line per kind and per model.
  const char* row_format =
      "{:>5}  {:<14} {:>3}  {:<12} {:>13} {:>8} {:>12} {:>12} {:>8} {:>12} {:>8}\n";
  out += fmt::format(fmt::runtime(row_format), "line", "model", "TP", "layout", "decode x ctx",
                     "prefill", "measured us", "profiled us", "error", "roofline us", "error");
  for (const StepPrediction& p : v.rows) {
    const StepRow& r = p.row;
    out += fmt::format(fmt::runtime(row_format), r.line, r.model, r.tensor_parallel, LayoutText(r),
                       DecodeText(r), r.prefill_tokens, fmt::format("{:.1f}", r.time_us),
                       fmt::format("{:.1f}", p.profiled_us), Percent(p.profiled_error()),
                       fmt::format("{:.1f}", p.roofline_us), Percent(p.roofline_error()));
  }
  const std::vector<ErrorSummary> summaries = SummarizeErrors(v);
  if (!summaries.empty()) {
    const char* summary_format = "{:<30} {:>21} {:>16} {:>7}   {:>21} {:>16} {:>7}\n";
    out += fmt::format(fmt::runtime(summary_format), "summary", "profiled mean |error|",
                       "worst (line)", "within", "roofline mean |error|", "worst (line)", "within");
    for (const ErrorSummary& s : summaries) {
      const StepPrediction& pw = v.rows[s.profiled_worst];
      const StepPrediction& rw = v.rows[s.roofline_worst];
      out += fmt::format(fmt::runtime(summary_format),
                         fmt::format("  {} ({} row{})", s.group, s.rows, s.rows == 1 ? "" : "s"),
                         fmt::format("{:.1f}%", 100 * s.profiled_mean_abs),
                         fmt::format("{} ({})", Percent(pw.profiled_error()), pw.row.line),
                         s.profiled_within, fmt::format("{:.1f}%", 100 * s.roofline_mean_abs),
                         fmt::format("{} ({})", Percent(rw.roofline_error()), rw.row.line),
                         s.roofline_within);
    }
    const ToleranceCount n = CountWithinTolerance(v);
    out += fmt::format(
        "within tolerance (|error| <= {:g}% for decode-only and prefill-only passes, {:g}% for "
        "mixed batches): profiled {} of {}, roofline {} of {}\n",
        100 * c.tolerance, 100 * c.mixed_tolerance, n.profiled_within, n.rows, n.roofline_within,
        n.rows);
  }
  const std::vector<ClassErrorSummary> classes = SummarizeClassErrors(v);
  if (!classes.empty()) {
    const char* class_format = "{:<30} {:>15} {:>15} {:>15} {:>15} {:>15}\n";
    out += fmt::format(fmt::runtime(class_format), "profiled by class, mean (|mean|)", "gemm",
                       "attention", "other", "collectives", "pass - classes");
    const auto cell = [](const ClassErrorSummary::Error& error) {
      return error.rows == 0
                 ? std::string("-")
                 : fmt::format("{} ({:.1f}%)", Percent(error.mean), 100 * error.mean_abs);
    };
    for (const ClassErrorSummary& group : classes) {
      out += fmt::format(
          fmt::runtime(class_format),
          fmt::format("  {} ({} row{})", group.group, group.rows, group.rows == 1 ? "" : "s"),
          cell(group.gemm), cell(group.attention), cell(group.other), cell(group.collective),
          Percent(group.pass_vs_classes));
    }
  }
  for (const SkippedSteps& s : v.skipped) {
    out += fmt::format("not predictable: {} at TP {}, {} row{} (line{} {}): {}\n", s.model,
                       s.tensor_parallel, s.lines.size(), s.lines.size() == 1 ? "" : "s",
                       s.lines.size() == 1 ? "" : "s", fmt::join(s.lines, ", "), s.reason);
  }
  for (const std::string& caveat : v.caveats) out += "caveat: " + caveat + "\n";
  return out;
}

}  // namespace kvsim
