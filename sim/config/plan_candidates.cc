// Decoding of a plan's candidate space (see plan_candidates.h).
#include "sim/config/plan_candidates.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <map>
#include <set>

#include "sim/core/check.h"
#include "sim/core/units.h"

namespace kvsim {
namespace {

// One scalar of a dimension at `where` ("file:line: key.path").
int64_t ScalarValue(const YAML::Node& n, const std::string& where, ScalarKind kind) {
  if (!n.IsScalar()) {
    throw InputError(where + (kind == ScalarKind::kByteSize ? ": expected a byte size"
                                                            : ": expected an integer"));
  }
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
    if (!r.Has(key)) r.Fail(key, "required in a range {from, to, step or times}");
    const int64_t v = ScalarValue(r.Value(key), r.Where(r.Value(key), r.KeyPath(key)), kind);
    CheckBounds(v, r.Where(r.Value(key), r.KeyPath(key)), min_value, max_value);
    return v;
  };
  const int64_t from = read("from");
  const int64_t to = read("to");
  const bool has_step = r.Has("step"), has_times = r.Has("times");
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
  if (!m.Has(key)) return {def};
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
  if (!r.Has(key)) r.Fail(key, "required: a non-empty list");
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

void DecodeKvManagers(MapReader& k, const DecodeContext& ctx, PlanConfig& c) {
  UniqueLabels labels("KV manager");
  ForEachListItem(k, "kv_managers", [&](const YAML::Node& n, const std::string& p) {
    MapReader m(n, p, ctx);
    KvChoice choice;
    choice.type = m.Enum("type", kKvManagerTypes);
    const std::vector<int64_t> blocks =
        DimensionValues(m, "block_tokens", 0, 1, kMaxTokens, ScalarKind::kInteger);
    const std::vector<int64_t> pages =
        DimensionValues(m, "page_bytes", 0, 1, int64_t{1} << 40, ScalarKind::kByteSize);
    m.Finish();
    for (int64_t block_tokens : blocks) {
      for (int64_t page_bytes : pages) {
        choice.block_tokens = block_tokens;
        choice.page_bytes = page_bytes;
        labels.Add(choice.Label(), k.Where(n, p));
        c.kv_managers.push_back(choice);
      }
    }
  });
}

void DecodeSchedulers(MapReader& k, const DecodeContext& ctx, PlanConfig& c) {
  UniqueLabels labels("scheduler");
  ForEachListItem(k, "schedulers", [&](const YAML::Node& n, const std::string& p) {
    MapReader m(n, p, ctx);
    SchedulerChoice choice;
    choice.type = m.Enum("type", kSchedulerTypes);
    const std::vector<int64_t> chunks =
        DimensionValues(m, "chunk_tokens", 0, 1, kMaxTokens, ScalarKind::kInteger);
    const std::vector<int64_t> batched =
        DimensionValues(m, "max_num_batched_tokens", 0, 1, kMaxTokens, ScalarKind::kInteger);
    const std::vector<int64_t> seqs =
        DimensionValues(m, "max_num_seqs", 0, 1, int64_t{1} << 20, ScalarKind::kInteger);
    m.Finish();
    for (int64_t chunk_tokens : chunks) {
      for (int64_t max_num_batched_tokens : batched) {
        for (int64_t max_num_seqs : seqs) {
          choice.chunk_tokens = chunk_tokens;
          choice.max_num_batched_tokens = max_num_batched_tokens;
          choice.max_num_seqs = max_num_seqs;
          labels.Add(choice.Label(), k.Where(n, p));
          c.schedulers.push_back(choice);
        }
      }
    }
  });
}

}  // namespace

void DecodeCandidates(MapReader k, const DecodeContext& ctx, PlanConfig& c) {
  UniqueLabels gpus("GPU");
  ForEachListItem(k, "gpus", [&](const YAML::Node& n, const std::string& p) {
    if (!n.IsScalar()) throw InputError(k.Where(n, p) + ": expected a GPU card name");
    gpus.Add(n.Scalar(), k.Where(n, p));
    c.gpus.push_back(n.Scalar());
    c.gpu_where.push_back(k.Where(n, p));
  });
  if (!k.Has("tensor_parallel")) {
    k.Fail("tensor_parallel", "required: a list or a range of GPUs per replica");
  }
  c.tensor_parallel = DimensionValues(k, "tensor_parallel", 1, 1, 1024, ScalarKind::kInteger);
  DecodeKvManagers(k, ctx, c);
  DecodeSchedulers(k, ctx, c);
  k.Finish();
}

}  // namespace kvsim
