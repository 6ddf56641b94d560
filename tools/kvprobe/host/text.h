// Small text helpers shared by kvprobe's host-side readers.
#pragma once

#include <string>

#include "sim/core/text.h"

namespace kvprobe {

// `s` without leading and trailing spaces, tabs and carriage returns.
inline std::string Trim(const std::string& s) { return std::string(kvsim::Trim(s, " \t\r")); }

}  // namespace kvprobe
