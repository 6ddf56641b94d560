// Small text helpers shared by kvprobe's host-side readers.
#pragma once

#include <string>

namespace kvprobe {

// `s` without leading and trailing spaces, tabs and carriage returns.
inline std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

}  // namespace kvprobe
