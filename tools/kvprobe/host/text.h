// Small text helpers shared by kvprobe's host-side readers.
#pragma once

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "sim/core/text.h"

namespace kvprobe {

// `s` without leading and trailing spaces, tabs and carriage returns.
inline std::string Trim(const std::string& s) { return std::string(kvsim::Trim(s, " \t\r")); }

// The comma-separated fields of a CSV line as strings, untrimmed, empty ones kept
// (kvsim::SplitFields).
inline std::vector<std::string> SplitFields(const std::string& line) {
  const std::vector<std::string_view> fields = kvsim::SplitFields(line);
  return {fields.begin(), fields.end()};
}

// The whole text of the file `path`; empty when it cannot be read (callers check
// what they parse).
inline std::string ReadFileText(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace kvprobe
