// InputErrorMessage: the message of the InputError that a piece of code throws, for
// tests that check what an error names (key paths, files, lines).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "sim/core/check.h"

namespace kvsim::testing {

// The message of the InputError that `fn` throws; fails the test when none is thrown.
template <typename Fn>
std::string InputErrorMessage(Fn&& fn) {
  try {
    std::forward<Fn>(fn)();
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an InputError";
  return "";
}

}  // namespace kvsim::testing
