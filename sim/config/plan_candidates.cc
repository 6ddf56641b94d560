// Decoding of a plan's candidate space (see plan_candidates.h).
#include "sim/config/plan_candidates.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <map>
#include <set>

#include "sim/config/scenario_resolve.h"
#include "sim/core/check.h"
#include "sim/core/units.h"

namespace kvsim {
namespace {

// What one scalar of a dimension is, for messages: "an integer", "a byte size".
const char* KindName(ScalarKind kind) {
  return kind == ScalarKind::kByteSize ? "a byte size" : "an integer";
}

// One scalar of a dimension at `where` ("file:line: key.path").
int64_t ScalarValue(const YAML::Node& n, const std::string& where, ScalarKind kind) {
  if (n.IsNull()) {
    throw InputError(
        fmt::format("{}: expected {}, got no value (empty, ~ or null)", where, KindName(kind)));
  }
  if (!n.IsScalar()) throw InputError(fmt::format("{}: expected {}", where, KindName(kind)));
  if (kind == ScalarKind::kByteSize) return ParseByteSize(n.Scalar(), where);
  try {
    return n.as<int64_t>();
  } catch (const YAML::Exception&) {
    throw InputError(fmt::format("{}: expected an integer, got '{}'", where, n.Scalar()));
  }
}

void CheckBounds(int64_t v, const std::string& where, int64_t min_value, int64_t max_value) {
  if (v < min_value)
    throw InputError(fmt::format("{}: must be >= {}, got {}", where, min_value, v));
  if (v > max_value)
    throw InputError(fmt::format("{}: must be <= {}, got {}", where, max_value, v));
}

// {from, to, step | times} read by `r` (the range's own mapping).
std::vector<int64_t> RangeValues(MapReader r, int64_t min_value, int64_t max_value,
                                 ScalarKind kind) {
  const auto read = [&](const std::string& key) {
    if (!r.HasScalar(key, KindName(kind)))
      r.Fail(key, "required in a range {from, to, step or times}");
    const int64_t v = ScalarValue(r.Value(key), r.Where(r.Value(key), r.KeyPath(key)), kind);
    CheckBounds(v, r.Where(r.Value(key), r.KeyPath(key)), min_value, max_value);
    return v;
  };
  const int64_t from = read("from");
  const int64_t to = read("to");
  const bool has_step = r.HasScalar("step", KindName(kind));
  const bool has_times = r.HasScalar("times", "an integer");
  if (has_step == has_times)
    r.Fail("from", "give exactly one of step (A, A+S, ...) and times (A, A*F, ...)");
  if (to < from) r.Fail("to", fmt::format("must be >= from ({}), got {}", from, to));
  std::vector<int64_t> values;
  const auto push = [&](int64_t v) {
    if (static_cast<int64_t>(values.size()) == kMaxValuesPerDimension) {
      r.Fail(has_step ? "step" : "times",
             fmt::format("the range gives more than {} values", kMaxValuesPerDimension));
    }
    values.push_back(v);
  };
  if (has_step) {
    const YAML::Node node = r.Value("step");
    const int64_t step = ScalarValue(node, r.Where(node, r.KeyPath("step")), kind);
    if (step < 1) r.Fail("step", fmt::format("must be >= 1, got {}", step));
    for (int64_t v = from; v <= to; v += step) {
      push(v);
      if (v > to - step) break;  // the next would pass `to` (or overflow)
    }
  } else {
    const int64_t times = r.Int("times", 0, 2, 1 << 20);
    for (int64_t v = from; v <= to; v *= times) {
      push(v);
      if (v > to / times) break;
    }
  }
  r.Finish();
  return values;
}

}  // namespace

std::vector<int64_t> DimensionValues(MapReader& m, const std::string& key, int64_t def,
                                     int64_t min_value, int64_t max_value, ScalarKind kind) {
  if (!m.HasValue(
          key, fmt::format("{}, a list or a range {{from, to, step or times}}", KindName(kind)))) {
    return {def};
  }
  const YAML::Node n = m.Value(key);
  const std::string path = m.KeyPath(key);
  if (n.IsMap()) return RangeValues(MapReader(n, path, m.context()), min_value, max_value, kind);
  if (!n.IsSequence()) {
    const int64_t v = ScalarValue(n, m.Where(n, path), kind);
    CheckBounds(v, m.Where(n, path), min_value, max_value);
    return {v};
  }
  if (n.size() == 0)
    m.Fail(key, "expected a non-empty list, one value or a range {from, to, step or times}");
  if (n.size() > static_cast<size_t>(kMaxValuesPerDimension)) {
    m.Fail(key, fmt::format("more than {} values", kMaxValuesPerDimension));
  }
  std::vector<int64_t> values;
  std::set<int64_t> seen;
  for (size_t i = 0; i < n.size(); ++i) {
    const std::string where = m.Where(n[i], fmt::format("{}[{}]", path, i));
    const int64_t v = ScalarValue(n[i], where, kind);
    CheckBounds(v, where, min_value, max_value);
    if (!seen.insert(v).second) throw InputError(fmt::format("{}: {} is listed twice", where, v));
    values.push_back(v);
  }
  return values;
}

namespace {

// A non-empty YAML list under `key`, each element handed to `each(node, path)`.
template <typename Each>
void ForEachListItem(MapReader& r, const std::string& key, Each each) {
  if (!r.HasValue(key, "a non-empty list")) r.Fail(key, "required: a non-empty list");
  const YAML::Node list = r.Value(key);
  if (!list.IsSequence() || list.size() == 0) r.Fail(key, "expected a non-empty list");
  for (size_t i = 0; i < list.size(); ++i) each(list[i], fmt::format("{}[{}]", r.KeyPath(key), i));
}

// Remembers where each candidate name part was given, so that a second entry giving
// the same one fails naming both.
class UniqueLabels {
 public:
  explicit UniqueLabels(std::string what) : what_(std::move(what)) {}
  void Add(const std::string& label, const std::string& where) {
    const auto [it, inserted] = first_.emplace(label, where);
    if (!inserted) {
      throw InputError(
          fmt::format("{}: gives the {} '{}' again (first given by {}); each candidate "
                      "must differ from every other",
                      where, what_, label, it->second));
    }
  }

 private:
  std::string what_;
  std::map<std::string, std::string> first_;
};

constexpr int64_t kMaxTokens = int64_t{1} << 24;

// One dimension of a KV-manager or scheduler entry: its key, the largest value it
// takes, how a value reads, and the member of the choice it sets.
template <typename Choice>
struct Dimension {
  const char* key;
  int64_t max_value;
  ScalarKind kind;
  int64_t Choice::*member;
  // The entry types it applies to (bit 1 << type) and their names: given for another
  // type it would change nothing but the candidate's name, so it is an error.
  uint32_t types;
  const char* types_text;
  // Values the key takes at all (nullptr: any in range) and what they are, for errors.
  bool (*valid)(int64_t) = nullptr;
  const char* valid_text = "";

  template <typename Type>
  bool AppliesTo(Type type) const {
    return (types >> static_cast<uint32_t>(type) & 1U) != 0;
  }
};

template <typename... Types>
constexpr uint32_t TypeBits(Types... types) {
  return ((uint32_t{1} << static_cast<uint32_t>(types)) | ...);
}

// The entries of list `key`, each a mapping with a `type` (named by `table`) and the
// `dims`: every entry expands to the product of its dimensions' values, the first
// dimension outermost, appended to `out`; two choices with one label fail naming
// both entries (`what`: "KV manager", "scheduler").
template <typename Choice, typename Table, size_t N>
void DecodeChoices(MapReader& k, const DecodeContext& ctx, const std::string& key,
                   const std::string& what, const Table& table,
                   const std::array<Dimension<Choice>, N>& dims, std::vector<Choice>& out) {
  UniqueLabels labels(what);
  ForEachListItem(k, key, [&](const YAML::Node& n, const std::string& p) {
    MapReader m(n, p, ctx);
    Choice choice;
    choice.type = m.Enum("type", table);
    for (const Dimension<Choice>& d : dims) {
      if (m.Present(d.key) && !d.AppliesTo(choice.type)) {
        m.Fail(d.key, fmt::format("does not apply to the {} {} ({}: {} only), whose candidates "
                                  "it would only rename; leave it out",
                                  table.Name(choice.type), what, d.key, d.types_text));
      }
    }
    std::array<std::vector<int64_t>, N> values;
    for (size_t d = 0; d < N; ++d) {
      values[d] = DimensionValues(m, dims[d].key, 0, 1, dims[d].max_value, dims[d].kind);
      for (const int64_t v : values[d]) {
        if (v != 0 && dims[d].valid != nullptr && !dims[d].valid(v)) {  // 0: unset
          m.Fail(dims[d].key, fmt::format("{} is not {}", v, dims[d].valid_text));
        }
      }
    }
    m.Finish();
    double combinations = 1;  // in doubles: three dimensions of 4,096 values pass 2^32
    for (const std::vector<int64_t>& v : values) combinations *= static_cast<double>(v.size());
    if (static_cast<double>(out.size()) + combinations > static_cast<double>(kMaxPlanSearches)) {
      throw InputError(fmt::format(
          "{}: expands to {:.4g} {}s, more than the {} searches one plan may hold; narrow its "
          "lists and ranges",
          k.Where(n, p), static_cast<double>(out.size()) + combinations, what, kMaxPlanSearches));
    }
    // An odometer over the dimensions, the last turning fastest.
    std::array<size_t, N> at{};
    for (;;) {
      for (size_t d = 0; d < N; ++d) choice.*(dims[d].member) = values[d][at[d]];
      labels.Add(choice.Label(), k.Where(n, p));
      out.push_back(choice);
      size_t d = N;
      while (d > 0 && ++at[d - 1] == values[d - 1].size()) at[--d] = 0;
      if (d == 0) return;
    }
  });
}

// Which keys each type reads: the builder's KV managers (block tables for paged, pages
// for vattention) and MakeScheduler (chunks for sarathi; a token budget for all but
// static batching).
constexpr std::array<Dimension<KvChoice>, 2> kKvDimensions = {{
    {"block_tokens", kMaxTokens, ScalarKind::kInteger, &KvChoice::block_tokens,
     TypeBits(KvManagerType::kPaged), "paged"},
    {"page_bytes", int64_t{1} << 40, ScalarKind::kByteSize, &KvChoice::page_bytes,
     TypeBits(KvManagerType::kVAttention), "vattention", &IsVAttentionPageSize,
     "a vAttention page size (64KiB, 128KiB, 256KiB or 2MiB)"},
}};

constexpr std::array<Dimension<SchedulerChoice>, 3> kSchedulerDimensions = {{
    {"chunk_tokens", kMaxTokens, ScalarKind::kInteger, &SchedulerChoice::chunk_tokens,
     TypeBits(SchedulerType::kSarathi), "sarathi"},
    {"max_num_batched_tokens", kMaxTokens, ScalarKind::kInteger,
     &SchedulerChoice::max_num_batched_tokens,
     TypeBits(SchedulerType::kVllm, SchedulerType::kSarathi, SchedulerType::kVllmV1),
     "vllm, sarathi and vllm_v1"},
    {"max_num_seqs", int64_t{1} << 20, ScalarKind::kInteger, &SchedulerChoice::max_num_seqs,
     TypeBits(SchedulerType::kVllm, SchedulerType::kSarathi, SchedulerType::kVllmV1,
              SchedulerType::kStaticBatching),
     "every scheduler"},
}};

}  // namespace

void DecodeCandidates(MapReader k, const DecodeContext& ctx, PlanConfig& c) {
  UniqueLabels gpus("GPU");
  ForEachListItem(k, "gpus", [&](const YAML::Node& n, const std::string& p) {
    if (!n.IsScalar()) throw InputError(k.Where(n, p) + ": expected a GPU card name");
    gpus.Add(n.Scalar(), k.Where(n, p));
    c.gpus.push_back(n.Scalar());
    c.gpu_where.push_back(k.Where(n, p));
  });
  if (!k.Present("tensor_parallel")) {  // DimensionValues refuses a null value
    k.Fail("tensor_parallel", "required: a list or a range of GPUs per replica");
  }
  c.tensor_parallel = DimensionValues(k, "tensor_parallel", 1, 1, 1024, ScalarKind::kInteger);
  DecodeChoices(k, ctx, "kv_managers", "KV manager", kKvManagerTypes, kKvDimensions, c.kv_managers);
  DecodeChoices(k, ctx, "schedulers", "scheduler", kSchedulerTypes, kSchedulerDimensions,
                c.schedulers);
  k.Finish();
}

}  // namespace kvsim
