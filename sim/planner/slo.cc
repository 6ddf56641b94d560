// EvaluateSlo: percentile, attainment and stability checks of one finished run
// against an SloSpec, and the verdict they add up to.
#include "sim/planner/slo.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

#include "sim/core/time.h"

namespace kvsim {
namespace {

// Stability needs this many completed requests for its two quarters to mean
// anything; with fewer the check is left out (and so cannot fail).
constexpr size_t kMinStabilityRecords = 8;

constexpr const char* kAdmitted = "admitted";
constexpr const char* kMedianWait = "stability.median_wait";

// `inside` (> 0 when the objective is met) relative to the limit. A limit of 0
// has no scale, so the margin is then `inside` itself; the sign means the same.
double RelativeMargin(double inside, double limit) {
  return limit != 0 ? inside / std::abs(limit) : inside;
}

// An upper-bound check: met when value <= limit.
SloCheck AtMost(std::string name, double value, double limit) {
  return SloCheck{std::move(name), value, limit, value <= limit,
                  RelativeMargin(limit - value, limit)};
}

// A lower-bound check: met when value >= limit.
SloCheck AtLeast(std::string name, double value, double limit) {
  return SloCheck{std::move(name), value, limit, value >= limit,
                  RelativeMargin(value - limit, limit)};
}

bool HasRequestThreshold(const SloSpec& slo) {
  return slo.request_ttft_s || slo.request_tpot_s || slo.request_e2e_s;
}

// Appends one check per set threshold of `slo`, named "<metric>.p50" etc.
void AddPercentileChecks(const std::string& metric, const PercentileSlo& slo,
                         const Percentiles& measured, std::vector<SloCheck>& checks) {
  const std::pair<const char*, const std::optional<double>*> thresholds[] = {
      {"p50", &slo.p50}, {"p90", &slo.p90}, {"p99", &slo.p99}};
  const double values[] = {measured.p50, measured.p90, measured.p99};
  for (int i = 0; i < 3; ++i) {
    const auto& [suffix, limit] = thresholds[i];
    if (*limit) checks.push_back(AtMost(metric + "." + suffix, values[i], **limit));
  }
}

// Per-request thresholds at nanosecond resolution (seconds rounded to nearest ns),
// so that a latency exactly at its threshold meets it.
struct RequestLimits {
  std::optional<Nanos> ttft, tpot, e2e;
};

RequestLimits ToNanos(const SloSpec& slo) {
  RequestLimits limits;
  if (slo.request_ttft_s) limits.ttft = SecondsToNanos(*slo.request_ttft_s);
  if (slo.request_tpot_s) limits.tpot = SecondsToNanos(*slo.request_tpot_s);
  if (slo.request_e2e_s) limits.e2e = SecondsToNanos(*slo.request_e2e_s);
  return limits;
}

// Whether (finish - first_token) / (output_tokens - 1) <= limit, exactly (no
// rounding of the quotient, no overflow). A request with at most one output
// token has no inter-token gap and passes.
bool TpotWithin(const RequestRecord& r, Nanos limit) {
  if (r.output_tokens <= 1) return true;
  const int64_t gaps = r.output_tokens - 1;
  const int64_t decode_ns = (r.finish - r.first_token).count();
  const int64_t quotient = decode_ns / gaps;
  const int64_t remainder = decode_ns % gaps;
  return quotient < limit.count() || (quotient == limit.count() && remainder <= 0);
}

bool Attains(const RequestRecord& r, const RequestLimits& limits) {
  if (limits.ttft && r.first_token - r.arrival > *limits.ttft) return false;
  if (limits.e2e && r.finish - r.arrival > *limits.e2e) return false;
  if (limits.tpot && !TpotWithin(r, *limits.tpot)) return false;
  return true;
}

// Fraction of `records` (the requests served: refused ones are the admitted check's)
// that meet every per-request threshold. REQUIRES: records non-empty.
double AttainmentFraction(const SloSpec& slo, const std::vector<RequestRecord>& records) {
  const RequestLimits limits = ToNanos(slo);
  const auto attaining = std::count_if(records.begin(), records.end(),
                                       [&](const RequestRecord& r) { return Attains(r, limits); });
  return static_cast<double>(attaining) / static_cast<double>(records.size());
}

// The admission check, named "admitted": the fraction of offered requests not refused
// for max_model_len, at least slo.admitted. None when every request was admitted and
// the limit is 1 (nothing to report: it cannot fail and never binds).
std::optional<SloCheck> AdmittedCheck(const SloSpec& slo, const Summary& summary) {
  if (summary.requests_total <= 0) return std::nullopt;
  const double admitted = 1.0 - static_cast<double>(summary.requests_rejected) /
                                    static_cast<double>(summary.requests_total);
  if (admitted >= 1.0 && slo.admitted >= 1.0) return std::nullopt;
  return AtLeast(kAdmitted, admitted, slo.admitted);
}

// The stability check: met exactly when the run is not overloaded by TestOverload
// with the plan's slack (the rule every output shares). Of the rule's two conditions,
// the wait's growth (at most the slack) and the backlog's age at the last arrival (at
// most a quarter of the arrival span), the one further inside its limit, as an upper-bound
// check: overload needs both exceeded, so one met meets the objective.
SloCheck StabilityCheck(const SloSpec& slo, const Summary& summary) {
  const OverloadTest t = TestOverload(summary, slo.stability_slack_s);
  SloCheck growth = AtMost("stability", t.growth_s, t.growth_limit_s);
  SloCheck backlog = AtMost("stability", t.backlog_age_s, t.backlog_limit_s);
  return backlog.margin > growth.margin ? backlog : growth;
}

// A failed admission check (no load can pass it), else the failed check with the most
// negative margin, else the met check with the smallest margin (admission aside: it
// does not depend on the load, so when met it binds nothing); ties go to the earlier
// check. "" for no checks.
std::string Binding(const std::vector<SloCheck>& checks) {
  const SloCheck* worst_failed = nullptr;
  const SloCheck* tightest_met = nullptr;
  for (const SloCheck& c : checks) {
    if (c.name == kAdmitted) {
      if (!c.met) return c.name;
      continue;
    }
    const SloCheck*& best = c.met ? tightest_met : worst_failed;
    if (best == nullptr || c.margin < best->margin) best = &c;
  }
  if (worst_failed != nullptr) return worst_failed->name;
  if (tightest_met != nullptr) return tightest_met->name;
  return "";
}

}  // namespace

// SloSpec::empty() is defined with SloSpec, in sim/config/plan_config.cc.

std::vector<std::string> DescribeSlo(const SloSpec& slo) {
  std::vector<std::string> lines;
  for (const auto& [metric, p] :
       {std::pair<const char*, const PercentileSlo*>{"ttft_s", &slo.ttft_s},
        {"tbt_s", &slo.tbt_s},
        {"tpot_s", &slo.tpot_s},
        {"e2e_s", &slo.e2e_s}}) {
    for (const auto& [name, limit] :
         {std::pair{"p50", &p->p50}, {"p90", &p->p90}, {"p99", &p->p99}}) {
      if (*limit) lines.push_back(fmt::format("{} {} <= {:g} s", metric, name, **limit));
    }
  }
  if (slo.attainment && HasRequestThreshold(slo)) {
    std::vector<std::string> bounds;
    if (slo.request_ttft_s) bounds.push_back(fmt::format("TTFT <= {:g} s", *slo.request_ttft_s));
    if (slo.request_tpot_s) bounds.push_back(fmt::format("TPOT <= {:g} s", *slo.request_tpot_s));
    if (slo.request_e2e_s) bounds.push_back(fmt::format("E2E <= {:g} s", *slo.request_e2e_s));
    lines.push_back(fmt::format("attainment >= {:g}: that fraction of requests has {}",
                                *slo.attainment, fmt::join(bounds, " and ")));
  }
  if (slo.stability) {
    lines.push_back(fmt::format(
        "stability: the mean queueing delay of the last quarter of the arrivals at most {:g} s "
        "over the first quarter's, or the waiting queue empty at some time in the last quarter "
        "of the arrivals (not overloaded), and the median queueing delay <= {:g} s (on unless "
        "slo.stability: false)",
        slo.stability_slack_s, slo.stability_slack_s));
  }
  lines.push_back(
      fmt::format("admitted >= {:g}: the fraction of requests admitted (a prompt reaching "
                  "deployment.max_model_len is refused, never served){}",
                  slo.admitted, slo.admitted_set ? "" : " (default; slo.admitted lowers it)"));
  return lines;
}

// Checks, in this order: ttft_s, tbt_s, tpot_s, e2e_s (each p50, p90, p99; only
// the set ones), then attainment (when attainment and a per-request threshold
// are set; over the requests served), then stability (StabilityCheck, from the
// summary's load figures) and stability.median_wait (the summary's median queueing
// delay <= stability_slack_s; both when enabled and there are at least 8 records), then
// admitted (AdmittedCheck).
// With no records every other objective that is set is reported failed, with value 0
// and margin -1, and the binding is "admitted" when that failed, else "no completed
// requests".
SloVerdict EvaluateSlo(const SloSpec& slo, const Summary& summary,
                       const std::vector<RequestRecord>& records) {
  SloVerdict verdict;
  std::vector<SloCheck>& checks = verdict.checks;
  AddPercentileChecks("ttft_s", slo.ttft_s, summary.ttft_s, checks);
  AddPercentileChecks("tbt_s", slo.tbt_s, summary.tbt_s, checks);
  AddPercentileChecks("tpot_s", slo.tpot_s, summary.tpot_s, checks);
  AddPercentileChecks("e2e_s", slo.e2e_s, summary.e2e_s, checks);
  const bool attainment_applies = slo.attainment && HasRequestThreshold(slo);

  if (records.empty()) {
    if (attainment_applies) checks.push_back(SloCheck{"attainment", 0, *slo.attainment});
    if (slo.stability) checks.push_back(SloCheck{"stability", 0, slo.stability_slack_s});
    for (SloCheck& c : checks) {
      c.value = 0;
      c.met = false;
      c.margin = -1;
    }
    const std::optional<SloCheck> admitted = AdmittedCheck(slo, summary);
    if (admitted) checks.push_back(*admitted);
    verdict.meets = false;
    verdict.binding = admitted && !admitted->met ? kAdmitted : "no completed requests";
    return verdict;
  }

  if (attainment_applies) {
    checks.push_back(AtLeast("attainment", AttainmentFraction(slo, records), *slo.attainment));
  }
  if (slo.stability && records.size() >= kMinStabilityRecords) {
    checks.push_back(StabilityCheck(slo, summary));
    // A load that rises and falls can keep its last quarter no worse than its first
    // while most requests wait: the median wait is held to the slack too.
    checks.push_back(AtMost(kMedianWait, summary.queue_s.p50, slo.stability_slack_s));
  }
  if (const std::optional<SloCheck> admitted = AdmittedCheck(slo, summary)) {
    checks.push_back(*admitted);
  }
  verdict.meets =
      std::all_of(checks.begin(), checks.end(), [](const SloCheck& c) { return c.met; });
  verdict.binding = Binding(checks);
  return verdict;
}

}  // namespace kvsim
