// Helpers shared by the libFuzzer targets of tests/fuzz/ (tools/fuzz/run.sh runs them).
//
// Every target feeds its input to one parser. kvsim::InputError is the parser's way of
// rejecting bad input and is expected; any other exception that escapes the parser
// (InvariantError, a yaml-cpp exception, std::out_of_range, std::bad_alloc, ...) is a
// bug: ExpectOnlyInputErrors prints it and aborts, so libFuzzer records the input as a
// crash. Sanitizer reports (ASan, UBSan) and hangs (-timeout) are findings as well.
// With KVSIM_FUZZ_VERBOSE set in the environment, every rejection's message is printed
// (e.g. `KVSIM_FUZZ_VERBOSE=1 build-fuzz/tests/fuzz/fuzz_run FILE` shows why FILE is
// rejected).
#pragma once

#include <cxxabi.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <typeinfo>
#include <utility>
#include <vector>

#include "sim/core/check.h"

namespace kvsim::fuzz {

// Inputs above this size are skipped: they add run time, not coverage.
inline constexpr size_t kMaxInputBytes = 64 * 1024;

// The repository root (models/, traces/, configs/).
inline std::string SourceDir() { return KVSIM_SOURCE_DIR; }

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Prints a failure of the harness's own checks (a parser broke a documented promise)
// and aborts, so libFuzzer keeps the input.
[[noreturn]] inline void Die(const std::string& what) {
  std::fprintf(stderr, "\n==kvsim-fuzz== %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

#define KVSIM_FUZZ_EXPECT(cond, what)                                                         \
  do {                                                                                        \
    if (!(cond)) ::kvsim::fuzz::Die(std::string("broken promise: ") + #cond + ": " + (what)); \
  } while (0)

// Runs `fn`; an InputError is an expected rejection, anything else aborts with the
// exception's type and message.
template <typename Fn>
void ExpectOnlyInputErrors(const char* what, Fn&& fn) {
  try {
    std::forward<Fn>(fn)();
  } catch (const InputError& e) {
    // The parser rejected the input with a message: what it should do.
    static const bool verbose = std::getenv("KVSIM_FUZZ_VERBOSE") != nullptr;
    if (verbose) std::fprintf(stderr, "==kvsim-fuzz== %s: InputError: %s\n", what, e.what());
  } catch (const std::exception& e) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> name(
        abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status), std::free);
    Die(std::string(what) + ": escaped " + (status == 0 && name ? name.get() : typeid(e).name()) +
        ": " + e.what());
  } catch (...) {
    Die(std::string(what) + ": escaped an exception that is not a std::exception");
  }
}

// A directory of this process's own, $TMPDIR/kvsim_fuzz_PID (default /tmp). libFuzzer
// ends with _Exit, so no exit handler removes it: each process removes instead the
// directories that processes no longer running left behind.
inline const std::filesystem::path& ScratchDir() {
  static const std::filesystem::path dir = [] {
    namespace fs = std::filesystem;
    const fs::path tmp = fs::temp_directory_path();
    constexpr std::string_view kPrefix = "kvsim_fuzz_";
    std::error_code ec;
    for (const fs::directory_entry& e : fs::directory_iterator(tmp, ec)) {
      const std::string name = e.path().filename().string();
      if (!name.starts_with(kPrefix)) continue;
      const std::string pid = name.substr(kPrefix.size());
      if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
      if (::kill(static_cast<pid_t>(std::stol(pid)), 0) == -1 && errno == ESRCH) {
        fs::remove_all(e.path(), ec);
      }
    }
    const fs::path mine = tmp / (std::string(kPrefix) + std::to_string(::getpid()));
    fs::remove_all(mine, ec);  // a dead process's, whose id this one reuses
    if (!fs::create_directory(mine, ec)) Die("cannot create " + mine.string());
    return mine;
  }();
  return dir;
}

// Writes `bytes` verbatim to `name` in the scratch directory; returns its path.
inline std::string WriteScratchFile(const std::string& name, std::string_view bytes) {
  const std::filesystem::path path = ScratchDir() / name;
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) Die("cannot write " + path.string());
  return path.string();
}

// True when the text could name a device or kernel file (/dev/zero, /proc/self/...):
// reading one never ends, which would be a false hang. Inputs that do are skipped.
inline bool MayNameSpecialFile(std::string_view text) {
  for (std::string_view s : {"dev/", "/dev", "proc/", "/proc", "sys/", "/sys"}) {
    if (text.find(s) != std::string_view::npos) return true;
  }
  return false;
}

// A config input: YAML text, then optionally a line "#--set" and one `key.path=value`
// override per line after it (the form of kvsim's --set; "#" keeps the whole input
// valid YAML, so mutations of either part stay useful).
struct ConfigInput {
  std::string yaml;
  std::vector<std::string> overrides;
};

inline ConfigInput SplitConfigInput(std::string_view text) {
  ConfigInput in;
  bool overrides = false;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    const size_t next = end == std::string_view::npos ? text.size() : end + 1;
    std::string_view line = text.substr(start, next - start);
    std::string_view bare = line.substr(0, line.find_last_not_of("\r\n") + 1);
    if (!overrides && bare == "#--set") {
      overrides = true;
    } else if (overrides) {
      if (!bare.empty()) in.overrides.emplace_back(bare);
    } else {
      in.yaml.append(line);
    }
    start = next;
  }
  return in;
}

}  // namespace kvsim::fuzz
