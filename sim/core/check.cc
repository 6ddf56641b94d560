#include "sim/core/check.h"

#include <fmt/format.h>

namespace kvsim {

void FailCheck(const char* expr, const char* file, int line, const std::string& msg) {
  throw InvariantError(
      fmt::format("internal check failed at {}:{}: {} ({})", file, line, msg, expr));
}

}  // namespace kvsim
