// Small text helpers shared by the readers.
#pragma once

#include <string_view>

namespace kvsim {

// `s` without the leading and trailing characters found in `blanks`.
constexpr std::string_view Trim(std::string_view s, std::string_view blanks = " \t") {
  const size_t first = s.find_first_not_of(blanks);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(blanks) - first + 1);
}

}  // namespace kvsim
