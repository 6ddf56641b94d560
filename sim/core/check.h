// Errors: boundary problems (config, traces, cards) are InputError with a message
// carrying the file:line or key path; broken invariants are always-on checks that
// throw InvariantError. Nothing in the library exits the process.
#pragma once

#include <stdexcept>
#include <string>

namespace kvsim {

// Bad user input: a config key, a trace row, a card, a file. The message names
// where (file:line or key path) and what is wrong.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A broken internal invariant: a bug in kvsim, never the user's fault.
class InvariantError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

[[noreturn]] void FailCheck(const char* expr, const char* file, int line, const std::string& msg);

}  // namespace kvsim

// Always-on invariant check (also in release builds).
#define KVSIM_CHECK(cond, msg)                                       \
  do {                                                               \
    if (!(cond)) ::kvsim::FailCheck(#cond, __FILE__, __LINE__, msg); \
  } while (0)
