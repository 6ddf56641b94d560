// Small text helpers shared by the readers.
#pragma once

#include <string_view>
#include <vector>

namespace kvsim {

// `s` without the leading and trailing characters found in `blanks`.
constexpr std::string_view Trim(std::string_view s, std::string_view blanks = " \t") {
  const size_t first = s.find_first_not_of(blanks);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(blanks) - first + 1);
}

// The UTF-8 byte order mark some editors write at the start of a text file.
inline constexpr std::string_view kUtf8ByteOrderMark = "\xEF\xBB\xBF";

// `text` without a leading UTF-8 byte order mark (unchanged without one), so that a
// reader's first line starts with what the user sees.
constexpr std::string_view WithoutByteOrderMark(std::string_view text) {
  // (substr, not starts_with: kvprobe's CUDA sources include this header as C++17)
  const size_t n = kUtf8ByteOrderMark.size();
  return text.substr(0, n) == kUtf8ByteOrderMark ? text.substr(n) : text;
}

// The comma-separated fields of `line`, each trimmed of the characters in `blanks`
// (nothing trimmed when empty); empty fields are kept ("a,,b" has three) and a line
// without a comma is one field. The views point into `line`.
inline std::vector<std::string_view> SplitFields(std::string_view line,
                                                 std::string_view blanks = "") {
  std::vector<std::string_view> fields;
  for (;;) {
    const size_t comma = line.find(',');
    const std::string_view field = line.substr(0, comma);
    fields.push_back(blanks.empty() ? field : Trim(field, blanks));
    if (comma == std::string_view::npos) return fields;
    line.remove_prefix(comma + 1);
  }
}

}  // namespace kvsim
