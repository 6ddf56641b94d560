// EnumTable: the one list of an enum's names, as configs, outputs and messages write
// them. Decoding (Parse), printing (Name) and error messages (NameList) all read it, so
// each name is written once, next to its enum:
//
//   inline constexpr auto kRouterTypes = MakeEnumTable<RouterType>(
//       {{"round_robin", RouterType::kRoundRobin},
//        {"least_outstanding", RouterType::kLeastOutstanding}});
//
// Tables are built at compile time; one that repeats a name or a value, or has an
// empty name, does not compile (the check's call to FailCheck is not a constant
// expression).
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "sim/core/check.h"

namespace kvsim {

// One value and its name. The name is a string literal (NUL-terminated, static).
template <typename E>
struct EnumName {
  const char* name;
  E value;
};

template <typename E, size_t N>
class EnumTable {
 public:
  // REQUIRES: names non-empty and distinct, values distinct (checked).
  constexpr explicit EnumTable(const std::array<EnumName<E>, N>& entries) : entries_(entries) {
    for (size_t i = 0; i < N; ++i) {
      KVSIM_CHECK(entries_[i].name != nullptr && entries_[i].name[0] != '\0',
                  "an enum table has an empty name");
      for (size_t j = 0; j < i; ++j) {
        KVSIM_CHECK(std::string_view(entries_[i].name) != std::string_view(entries_[j].name),
                    "an enum table lists a name twice");
        KVSIM_CHECK(!(entries_[i].value == entries_[j].value), "an enum table lists a value twice");
      }
    }
  }

  // The name of `value`. A value missing from the table is a bug: InvariantError.
  constexpr std::string_view Name(E value) const { return CName(value); }
  // The same name as a C string, for call sites that want one.
  constexpr const char* CName(E value) const {
    for (const EnumName<E>& e : entries_) {
      if (e.value == value) return e.name;
    }
    FailCheck("value in table", __FILE__, __LINE__, "an enum value has no name in its table");
  }

  // The value named `name` (exact, case-sensitive), or nullopt.
  constexpr std::optional<E> Parse(std::string_view name) const {
    for (const EnumName<E>& e : entries_) {
      if (name == e.name) return e.value;
    }
    return std::nullopt;
  }

  // The names in table order joined by `separator`: "a, b, c", as config errors list
  // the valid values ("unknown value 'x'; valid: a, b, c").
  std::string NameList(std::string_view separator = ", ") const {
    return NameList(separator, separator);
  }
  // The same with `last_separator` before the last name: "a, b or c".
  std::string NameList(std::string_view separator, std::string_view last_separator) const {
    std::string out;
    for (size_t i = 0; i < N; ++i) {
      if (i > 0) out += i + 1 == N ? last_separator : separator;
      out += entries_[i].name;
    }
    return out;
  }

  // This table's entries for `values`, in that order: for a setting that accepts some
  // of the values, or lists them in another order. REQUIRES: each value is in this
  // table (checked).
  template <size_t M>
  constexpr EnumTable<E, M> Select(const E (&values)[M]) const {
    std::array<EnumName<E>, M> out{};
    for (size_t i = 0; i < M; ++i) out[i] = {CName(values[i]), values[i]};
    return EnumTable<E, M>(out);
  }

  // This table over std::optional<E>, with `unset_name` for nullopt first: for a
  // setting that may leave the value to a rule ("auto").
  constexpr EnumTable<std::optional<E>, N + 1> WithUnset(const char* unset_name) const {
    std::array<EnumName<std::optional<E>>, N + 1> out{};
    out[0] = {unset_name, std::nullopt};
    for (size_t i = 0; i < N; ++i) out[i + 1] = {entries_[i].name, entries_[i].value};
    return EnumTable<std::optional<E>, N + 1>(out);
  }

  constexpr const std::array<EnumName<E>, N>& entries() const { return entries_; }
  static constexpr size_t size() { return N; }

 private:
  std::array<EnumName<E>, N> entries_;
};

// The table of `entries`, e.g. MakeEnumTable<Dtype>({{"auto", Dtype::kAuto}, ...}).
template <typename E, size_t N>
constexpr EnumTable<E, N> MakeEnumTable(const EnumName<E> (&entries)[N]) {
  std::array<EnumName<E>, N> out{};
  for (size_t i = 0; i < N; ++i) out[i] = entries[i];
  return EnumTable<E, N>(out);
}

}  // namespace kvsim
