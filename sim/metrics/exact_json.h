// Structs as JSON, exactly: the machinery of the encodings that carry results between
// processes (another MPI rank, a file merged later), so that what the receiver writes
// is byte for byte what the sender would have written. summary_codec.h encodes
// Summary with it, sim/planner/candidate_codec.h CandidateResult (a Summary inside).
//
// A struct S is described once, by FieldList<S>::kFields (every member, keyed by its
// name), and both directions walk that one list, so what is encoded is what is
// decoded. ListsEveryMember<S>() checks at compile time that the list names every
// member of S exactly once; a codec static_asserts it, so a member added to S stops
// the codec from compiling until it is listed (and the codec's version changed).
//
// The encoding of a value:
//   - double: a finite value as the shortest decimal that reads back to the same bits
//     ("0.30000000000000004", "-0", "5e-324"); a non-finite one as a string, since
//     JSON has no such numbers: "Infinity", "-Infinity", "NaN" and "-NaN" (the quiet
//     NaNs of either sign), "NaN:0x7ff4000000000000" (any other NaN, its bits in hex);
//   - int64_t as an integer literal, bool as true/false;
//   - std::string as a JSON string, its bytes kept as they are (no UTF-8 check);
//   - an enum E by its name in TableOf(E{}), an EnumTable found by argument-dependent
//     lookup (so declared in E's namespace, not in an unnamed one);
//   - std::vector<T> as an array; a listed struct as a nested object.
// Encode writes one JSON object on one line (no line break), "version" first: each
// encoding has a version, a decoder rejects any other, and a change of the encoding (a
// field added, renamed or retyped, in the struct or in one nested in it) changes it.
#pragma once

#include <fmt/format.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include "sim/core/json_value.h"
#include "sim/metrics/json_writer.h"

namespace kvsim::exact_json {

// The key of an encoding's version, beside the struct's members (no member may be
// named so).
inline constexpr std::string_view kVersionKey = "version";

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

// FieldList<S>::kFields: every member of S as a Field, in declaration order. A
// specialisation declares `using S = TheStruct;` and lists KVSIM_EXACT_FIELD(member)s.
template <typename S>
struct FieldList;

// The member `m` of the struct S in scope, keyed by its name.
#define KVSIM_EXACT_FIELD(m) ::kvsim::exact_json::MakeField(#m, &S::m)

// --- Coverage checks -------------------------------------------------------------------

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

// Whether the list's names are distinct and none is kVersionKey.
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

// --- Values (exact_json.cc) ----------------------------------------------------------

// Appends `v` as described above.
void PutDouble(std::string& out, double v);

// Throws InputError "where:line: 'path': what" ("where:line: what" for the root).
[[noreturn]] void Fail(const std::string& where, const JsonValue& v, const std::string& path,
                       std::string_view what);
// Fail with "expected `expected`, got TYPE".
[[noreturn]] void FailType(const std::string& where, const JsonValue& v, const std::string& path,
                           std::string_view expected);
// "path.key", or "key" at the root.
std::string MemberPath(const std::string& path, std::string_view key);

// The double, or the integer, that `v` encodes (Fail otherwise).
double GetDouble(const std::string& where, const JsonValue& v, const std::string& path);
int64_t GetInt(const std::string& where, const JsonValue& v, const std::string& path);

// Checks that `v` is an object whose kVersionKey is `version` (Fail otherwise);
// `what` names the encoding ("an encoded summary").
void CheckVersion(const std::string& where, const JsonValue& v, int64_t version,
                  std::string_view what);

// --- Encoding and decoding -------------------------------------------------------------

template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {};

template <typename T>
concept Listed = requires {
  FieldList<T>::kFields;
};

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

// `s` as one JSON object on one line: {"version":`version`, then every member}.
template <typename S>
std::string Encode(const S& s, int64_t version) {
  std::string out = fmt::format("{{\"{}\":{}", kVersionKey, version);
  PutMembers(out, s, false);
  out += '}';
  return out;
}

// The S that Encode(s, version) wrote as `v` (ParseJson of its text); `where` names
// the source for messages (a file, "rank 3"), `what` the encoding ("an encoded
// summary"). Throws InputError "where:line: 'path': what", path being the field's key
// path inside the object ("ttft_s.p99"), on a missing, mistyped, unknown or
// out-of-range field, and on another version.
template <typename S>
S Decode(const JsonValue& v, const std::string& where, int64_t version, std::string_view what) {
  CheckVersion(where, v, version, what);
  S s;
  GetMembers(where, v, "", s, kVersionKey);
  return s;
}

}  // namespace kvsim::exact_json
