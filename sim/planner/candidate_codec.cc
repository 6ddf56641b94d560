// CandidateResult's JSON encoding (candidate_codec.h).
//
// Field coverage: each struct's members are listed once, in FieldList below, and both
// directions walk that one list, so what is encoded is what is decoded. Checks at
// compile time make each list name every member of its struct exactly once: an entry
// is built from the member's name (&S::m must exist, and the key is #m), no two
// entries share a name, and the number of entries equals the number of members of
// the aggregate (MemberCount). A member added to Summary, CandidateResult or any
// struct inside them therefore stops this file from compiling until it is listed
// here (and kCandidateCodecVersion changed); a member of a type the codec does not
// know (Put, Get) does the same.
#include "sim/planner/candidate_codec.h"

#include <fmt/format.h>

#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <iterator>
#include <limits>
#include <optional>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include "sim/core/check.h"
#include "sim/metrics/json_writer.h"

namespace kvsim {
namespace {

// --- Field lists ---------------------------------------------------------------------

// One member of S: its key in the encoding (the member's name) and the member.
template <typename S, typename M>
struct Field {
  const char* name;
  M S::*member;
};

template <typename S, typename M>
constexpr Field<S, M> MakeField(const char* name, M S::*member) {
  return {name, member};
}

// The member `m` of the struct S in scope, keyed by its name.
#define KVSIM_CODEC_FIELD(m) MakeField(#m, &S::m)

// FieldList<S>::kFields: every member of S as a Field, in declaration order.
template <typename S>
struct FieldList;

template <>
struct FieldList<Percentiles> {
  using S = Percentiles;
  static constexpr auto kFields =
      std::make_tuple(KVSIM_CODEC_FIELD(mean), KVSIM_CODEC_FIELD(p50), KVSIM_CODEC_FIELD(p90),
                      KVSIM_CODEC_FIELD(p99), KVSIM_CODEC_FIELD(count));
};

template <>
struct FieldList<Summary> {
  using S = Summary;
  static constexpr auto kFields = std::make_tuple(
      KVSIM_CODEC_FIELD(kv_manager), KVSIM_CODEC_FIELD(requests_total),
      KVSIM_CODEC_FIELD(requests_completed), KVSIM_CODEC_FIELD(requests_rejected),
      KVSIM_CODEC_FIELD(requests_truncated), KVSIM_CODEC_FIELD(makespan_s),
      KVSIM_CODEC_FIELD(requests_per_s), KVSIM_CODEC_FIELD(output_tokens_per_s),
      KVSIM_CODEC_FIELD(total_tokens_per_s), KVSIM_CODEC_FIELD(ttft_s), KVSIM_CODEC_FIELD(tbt_s),
      KVSIM_CODEC_FIELD(tpot_s), KVSIM_CODEC_FIELD(e2e_s), KVSIM_CODEC_FIELD(queue_s),
      KVSIM_CODEC_FIELD(preemptions), KVSIM_CODEC_FIELD(prompt_tokens),
      KVSIM_CODEC_FIELD(prefix_hit_tokens), KVSIM_CODEC_FIELD(prefix_hit_requests),
      KVSIM_CODEC_FIELD(recomputed_tokens), KVSIM_CODEC_FIELD(prefix_caching),
      KVSIM_CODEC_FIELD(kv_bytes_per_token), KVSIM_CODEC_FIELD(kv_capacity_bytes),
      KVSIM_CODEC_FIELD(peak_allocated_bytes), KVSIM_CODEC_FIELD(mean_allocated_bytes),
      KVSIM_CODEC_FIELD(mean_live_bytes), KVSIM_CODEC_FIELD(mean_cached_bytes),
      KVSIM_CODEC_FIELD(fragmentation), KVSIM_CODEC_FIELD(max_running),
      KVSIM_CODEC_FIELD(mean_running), KVSIM_CODEC_FIELD(iterations),
      KVSIM_CODEC_FIELD(is_vattention), KVSIM_CODEC_FIELD(page_bytes), KVSIM_CODEC_FIELD(map_calls),
      KVSIM_CODEC_FIELD(unmap_calls), KVSIM_CODEC_FIELD(exposed_overhead_s),
      KVSIM_CODEC_FIELD(hidden_overhead_s), KVSIM_CODEC_FIELD(wall_s), KVSIM_CODEC_FIELD(events),
      KVSIM_CODEC_FIELD(percentiles_exact), KVSIM_CODEC_FIELD(offered_qps),
      KVSIM_CODEC_FIELD(queue_first_quarter_s), KVSIM_CODEC_FIELD(queue_last_quarter_s),
      KVSIM_CODEC_FIELD(overloaded), KVSIM_CODEC_FIELD(skipped_rows));
};

template <>
struct FieldList<SearchStep> {
  using S = SearchStep;
  static constexpr auto kFields =
      std::make_tuple(KVSIM_CODEC_FIELD(qps), KVSIM_CODEC_FIELD(meets), KVSIM_CODEC_FIELD(binding));
};

template <>
struct FieldList<SearchResult> {
  using S = SearchResult;
  static constexpr auto kFields = std::make_tuple(
      KVSIM_CODEC_FIELD(status), KVSIM_CODEC_FIELD(max_qps), KVSIM_CODEC_FIELD(first_fail_qps),
      KVSIM_CODEC_FIELD(binding), KVSIM_CODEC_FIELD(steps));
};

template <>
struct FieldList<KvChoice> {
  using S = KvChoice;
  static constexpr auto kFields = std::make_tuple(
      KVSIM_CODEC_FIELD(type), KVSIM_CODEC_FIELD(block_tokens), KVSIM_CODEC_FIELD(page_bytes));
};

template <>
struct FieldList<SchedulerChoice> {
  using S = SchedulerChoice;
  static constexpr auto kFields =
      std::make_tuple(KVSIM_CODEC_FIELD(type), KVSIM_CODEC_FIELD(max_num_seqs),
                      KVSIM_CODEC_FIELD(max_num_batched_tokens), KVSIM_CODEC_FIELD(chunk_tokens));
};

template <>
struct FieldList<CandidateResult> {
  using S = CandidateResult;
  static constexpr auto kFields = std::make_tuple(
      KVSIM_CODEC_FIELD(name), KVSIM_CODEC_FIELD(scenario), KVSIM_CODEC_FIELD(gpu),
      KVSIM_CODEC_FIELD(tensor_parallel), KVSIM_CODEC_FIELD(kv), KVSIM_CODEC_FIELD(scheduler),
      KVSIM_CODEC_FIELD(feasible), KVSIM_CODEC_FIELD(note), KVSIM_CODEC_FIELD(timing_caveats),
      KVSIM_CODEC_FIELD(timing_assumptions), KVSIM_CODEC_FIELD(timing_line),
      KVSIM_CODEC_FIELD(search), KVSIM_CODEC_FIELD(meets_slo),
      KVSIM_CODEC_FIELD(max_qps_per_replica), KVSIM_CODEC_FIELD(max_qps_per_gpu),
      KVSIM_CODEC_FIELD(replicas), KVSIM_CODEC_FIELD(gpus), KVSIM_CODEC_FIELD(price_per_gpu_hour),
      KVSIM_CODEC_FIELD(cost_per_hour), KVSIM_CODEC_FIELD(cost_per_million_output_tokens),
      KVSIM_CODEC_FIELD(at_max), KVSIM_CODEC_FIELD(pareto));
};

#undef KVSIM_CODEC_FIELD

// The key of the encoding's version, beside CandidateResult's members.
constexpr std::string_view kVersionKey = "version";

// --- Coverage checks -----------------------------------------------------------------

// Converts to any type; named only in unevaluated operands, to count members.
struct AnyMember {
  template <typename T>
  operator T() const;
};

// The number of members of the aggregate S: the most initializers S{...} accepts (each
// initializer converts to its member's type, so none is taken for a nested member).
template <typename S, typename... Initializers>
constexpr size_t MemberCount() {
  if constexpr (requires { S{Initializers{}..., AnyMember{}}; }) {
    return MemberCount<S, Initializers..., AnyMember>();
  } else {
    return sizeof...(Initializers);
  }
}

// Whether `key` names a field of the list.
template <typename Tuple>
constexpr bool HasField(const Tuple& fields, std::string_view key) {
  return std::apply([key](const auto&... f) { return ((key == f.name) || ...); }, fields);
}

// Whether the list's names are distinct and none is the version's key.
template <typename Tuple>
constexpr bool DistinctNames(const Tuple& fields) {
  return std::apply(
      [](const auto&... f) {
        const std::array<std::string_view, sizeof...(f)> names{std::string_view(f.name)...};
        for (size_t i = 0; i < names.size(); ++i) {
          if (names[i] == kVersionKey) return false;
          for (size_t j = 0; j < i; ++j) {
            if (names[i] == names[j]) return false;
          }
        }
        return true;
      },
      fields);
}

// Whether FieldList<S> lists every member of S once.
template <typename S>
constexpr bool ListsEveryMember() {
  constexpr auto& fields = FieldList<S>::kFields;
  return std::is_aggregate_v<S> && DistinctNames(fields) &&
         std::tuple_size_v<std::remove_cvref_t<decltype(fields)>> == MemberCount<S>();
}

// A failure here: the struct gained, lost or renamed a member. List each of its
// members in its FieldList above and change kCandidateCodecVersion.
static_assert(ListsEveryMember<Percentiles>(),
              "Percentiles changed: update FieldList<Percentiles>");
static_assert(ListsEveryMember<Summary>(), "Summary changed: update FieldList<Summary>");
static_assert(ListsEveryMember<SearchStep>(), "SearchStep changed: update FieldList<SearchStep>");
static_assert(ListsEveryMember<SearchResult>(),
              "SearchResult changed: update FieldList<SearchResult>");
static_assert(ListsEveryMember<KvChoice>(), "KvChoice changed: update FieldList<KvChoice>");
static_assert(ListsEveryMember<SchedulerChoice>(),
              "SchedulerChoice changed: update FieldList<SchedulerChoice>");
static_assert(ListsEveryMember<CandidateResult>(),
              "CandidateResult changed: update FieldList<CandidateResult>");

// --- Values --------------------------------------------------------------------------

constexpr const auto& TableOf(KvManagerType) { return kKvManagerTypes; }
constexpr const auto& TableOf(SchedulerType) { return kSchedulerTypes; }
constexpr const auto& TableOf(SearchStatus) { return kSearchStatuses; }

template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {};

template <typename T>
concept Listed = requires {
  FieldList<T>::kFields;
};

// Bits of the quiet NaN (positive); with the sign bit, the negative one.
constexpr uint64_t kQuietNanBits = 0x7ff8000000000000;
constexpr uint64_t kSignBit = 0x8000000000000000;
constexpr std::string_view kNanBitsPrefix = "NaN:0x";

// Appends `v`: finite as the shortest decimal that reads back to the same bits,
// non-finite as a string (candidate_codec.h). Metrics::Summarize guards its divisions
// and Percentiles of no values are 0, so runs give finite values; any value is kept.
void PutDouble(std::string& out, double v) {
  if (std::isfinite(v)) {
    fmt::format_to(std::back_inserter(out), "{}", v);
  } else if (std::isinf(v)) {
    out += v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  } else if (const auto bits = std::bit_cast<uint64_t>(v); bits == kQuietNanBits) {
    out += "\"NaN\"";
  } else if (bits == (kQuietNanBits | kSignBit)) {
    out += "\"-NaN\"";
  } else {
    fmt::format_to(std::back_inserter(out), "\"{}{:016x}\"", kNanBitsPrefix, bits);
  }
}

// The non-finite double that PutDouble writes as the string `s`, or nullopt.
std::optional<double> NonFinite(std::string_view s) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  if (s == "Infinity") return kInf;
  if (s == "-Infinity") return -kInf;
  if (s == "NaN") return std::bit_cast<double>(kQuietNanBits);
  if (s == "-NaN") return std::bit_cast<double>(kQuietNanBits | kSignBit);
  if (!s.starts_with(kNanBitsPrefix) || s.size() != kNanBitsPrefix.size() + 16) {
    return std::nullopt;
  }
  uint64_t bits = 0;
  const char* last = s.data() + s.size();
  const auto [ptr, ec] = std::from_chars(s.data() + kNanBitsPrefix.size(), last, bits, 16);
  if (ec != std::errc() || ptr != last || !std::isnan(std::bit_cast<double>(bits))) {
    return std::nullopt;
  }
  return std::bit_cast<double>(bits);
}

template <typename T>
void Put(std::string& out, const T& v);

// Appends ,"name":value for each member of `s` (no comma before the first when
// `first`).
template <typename S>
void PutMembers(std::string& out, const S& s, bool first) {
  const auto member = [&](const auto& f) {
    if (!first) out += ',';
    first = false;
    out += JsonWriter::Quote(f.name);
    out += ':';
    Put(out, s.*(f.member));
  };
  std::apply([&](const auto&... f) { (member(f), ...); }, FieldList<S>::kFields);
}

// Appends `v` as JSON.
template <typename T>
void Put(std::string& out, const T& v) {
  if constexpr (std::is_same_v<T, double>) {
    PutDouble(out, v);
  } else if constexpr (std::is_same_v<T, int64_t>) {
    fmt::format_to(std::back_inserter(out), "{}", v);
  } else if constexpr (std::is_same_v<T, bool>) {
    out += v ? "true" : "false";
  } else if constexpr (std::is_same_v<T, std::string>) {
    out += JsonWriter::Quote(v);
  } else if constexpr (std::is_enum_v<T>) {
    out += JsonWriter::Quote(TableOf(v).Name(v));
  } else if constexpr (IsVector<T>::value) {
    out += '[';
    for (size_t i = 0; i < v.size(); ++i) {
      if (i > 0) out += ',';
      Put(out, v[i]);
    }
    out += ']';
  } else {
    static_assert(Listed<T>, "a member's type has no encoding: add it to Put and Get");
    out += '{';
    PutMembers(out, v, true);
    out += '}';
  }
}

// --- Decoding ------------------------------------------------------------------------

// Throws InputError "where:line: 'path': what" ("where:line: what" for the root).
[[noreturn]] void Fail(const std::string& where, const JsonValue& v, const std::string& path,
                       std::string_view what) {
  if (path.empty()) throw InputError(fmt::format("{}:{}: {}", where, v.line(), what));
  throw InputError(fmt::format("{}:{}: '{}': {}", where, v.line(), path, what));
}

[[noreturn]] void FailType(const std::string& where, const JsonValue& v, const std::string& path,
                           std::string_view expected) {
  Fail(where, v, path, fmt::format("expected {}, got {}", expected, JsonValue::TypeName(v.type())));
}

std::string MemberPath(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
}

double GetDouble(const std::string& where, const JsonValue& v, const std::string& path) {
  if (v.IsNumber()) return v.AsNumber();
  if (!v.IsString()) FailType(where, v, path, "a number");
  const std::optional<double> d = NonFinite(v.AsString());
  if (!d) {
    Fail(where, v, path,
         fmt::format("expected a number, \"Infinity\", \"-Infinity\", \"NaN\", \"-NaN\" or "
                     "\"{}\" and 16 hex digits of a NaN, got \"{}\"",
                     kNanBitsPrefix, v.AsString()));
  }
  return *d;
}

int64_t GetInt(const std::string& where, const JsonValue& v, const std::string& path) {
  if (!v.IsNumber()) FailType(where, v, path, "an integer");
  if (!v.IsIntegral()) {
    Fail(
        where, v, path,
        fmt::format("expected an integer literal (no fraction or exponent), got {}", v.AsNumber()));
  }
  try {
    return v.AsInt();
  } catch (const InputError&) {
    Fail(where, v, path, "integer out of the 64-bit range");
  }
}

template <typename T>
void Get(const std::string& where, const JsonValue& v, const std::string& path, T& out);

// Decodes the members of `s` from the object `v`: each listed member must be there,
// and nothing else (but `extra_key`): a key this decoder does not know comes from
// another encoding that kept the version, and dropping it would lose data.
template <typename S>
void GetMembers(const std::string& where, const JsonValue& v, const std::string& path, S& s,
                std::string_view extra_key = {}) {
  if (!v.IsObject()) FailType(where, v, path, "an object");
  const auto member = [&](const auto& f) {
    const std::string member_path = MemberPath(path, f.name);
    const JsonValue* m = v.Find(f.name);
    if (m == nullptr) Fail(where, v, member_path, "missing field");
    Get(where, *m, member_path, s.*(f.member));
  };
  std::apply([&](const auto&... f) { (member(f), ...); }, FieldList<S>::kFields);
  for (const JsonValue::Member& m : v.AsObject()) {
    if (m.key != extra_key && !HasField(FieldList<S>::kFields, m.key)) {
      Fail(where, m.value, MemberPath(path, m.key), "unknown field");
    }
  }
}

// Decodes `v` into `out`; `path` is its key path, for messages.
template <typename T>
void Get(const std::string& where, const JsonValue& v, const std::string& path, T& out) {
  if constexpr (std::is_same_v<T, double>) {
    out = GetDouble(where, v, path);
  } else if constexpr (std::is_same_v<T, int64_t>) {
    out = GetInt(where, v, path);
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!v.IsBool()) FailType(where, v, path, "a boolean");
    out = v.AsBool();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.IsString()) FailType(where, v, path, "a string");
    out = v.AsString();
  } else if constexpr (std::is_enum_v<T>) {
    if (!v.IsString()) FailType(where, v, path, "a string");
    const auto value = TableOf(out).Parse(v.AsString());
    if (!value) {
      Fail(where, v, path,
           fmt::format("unknown value '{}'; valid: {}", v.AsString(), TableOf(out).NameList()));
    }
    out = *value;
  } else if constexpr (IsVector<T>::value) {
    if (!v.IsArray()) FailType(where, v, path, "an array");
    const std::vector<JsonValue>& elements = v.AsArray();
    out.clear();
    out.resize(elements.size());
    for (size_t i = 0; i < elements.size(); ++i) {
      Get(where, elements[i], fmt::format("{}[{}]", path, i), out[i]);
    }
  } else {
    static_assert(Listed<T>, "a member's type has no decoding: add it to Put and Get");
    GetMembers(where, v, path, out);
  }
}

}  // namespace

std::string EncodeCandidate(const CandidateResult& c) {
  std::string out = fmt::format("{{\"{}\":{}", kVersionKey, kCandidateCodecVersion);
  PutMembers(out, c, false);
  out += '}';
  return out;
}

CandidateResult DecodeCandidate(const JsonValue& v, const std::string& where) {
  if (!v.IsObject()) FailType(where, v, "", "an object (an encoded candidate)");
  const std::string version_key(kVersionKey);
  const JsonValue* version = v.Find(kVersionKey);
  if (version == nullptr) Fail(where, v, version_key, "missing field (the encoding's version)");
  const int64_t got = GetInt(where, *version, version_key);
  if (got != kCandidateCodecVersion) {
    Fail(where, *version, version_key,
         fmt::format("encoding version {}; this kvsim reads version {} only", got,
                     kCandidateCodecVersion));
  }
  CandidateResult c;
  GetMembers(where, v, "", c, kVersionKey);
  return c;
}

}  // namespace kvsim
