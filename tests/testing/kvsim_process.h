// The kvsim binary run as a separate process, for tests of the command line:
// RunKvsim waits for it and captures what it printed; SpawnKvsim starts it and
// returns at once, for tests that kill it or run a second one beside it.
// The including target defines KVSIM_BINARY, the path of the kvsim executable.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/testing/temp_dir.h"

namespace kvsim::testing {

// Single-quotes `s` for /bin/sh.
inline std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

struct Result {
  int exit_code = -1;  // -1 when the process did not exit normally
  bool crashed = false;
  std::string out;
  std::string err;
};

// Runs kvsim with `args` (each quoted), capturing stdout and stderr. Every run is
// checked not to have died from a signal: errors must be reported, never crash.
inline Result RunKvsim(const std::vector<std::string>& args) {
  TempDir capture;
  const std::string out_path = capture.PathOf("stdout.txt");
  const std::string err_path = capture.PathOf("stderr.txt");
  std::string command = Quote(KVSIM_BINARY);
  for (const std::string& a : args) command += " " + Quote(a);
  command += " >" + Quote(out_path) + " 2>" + Quote(err_path) + " </dev/null";
  const int status = std::system(command.c_str());

  Result r;
  if (status != -1 && WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
    r.crashed = r.exit_code >= 128;  // the shell reports a signal as 128 + n
  } else {
    r.crashed = true;
  }
  r.out = ReadFileText(out_path);
  r.err = ReadFileText(err_path);
  EXPECT_FALSE(r.crashed) << "kvsim died (status " << status << ") for: " << command
                          << "\nstderr:\n"
                          << r.err;
  return r;
}

// Starts kvsim with `args`, its stdout and stderr going to `err_path` (or nowhere
// when empty), and returns its process id. With `max_file_bytes` > 0 no file it
// writes may grow past that many bytes (RLIMIT_FSIZE; the write fails with EFBIG,
// as on a full disk, SIGXFSZ being ignored).
inline pid_t SpawnKvsim(const std::vector<std::string>& args, const std::string& err_path = "",
                        rlim_t max_file_bytes = 0) {
  std::vector<std::string> argv_text = {KVSIM_BINARY};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string sink = err_path.empty() ? "/dev/null" : err_path;
  const pid_t pid = fork();
  if (pid == 0) {
    // The child: only async-signal-safe calls until exec.
    const int fd = open(sink.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) _exit(127);
    dup2(fd, 1);
    dup2(fd, 2);
    if (max_file_bytes > 0) {
      signal(SIGXFSZ, SIG_IGN);
      const rlimit limit{max_file_bytes, max_file_bytes};
      setrlimit(RLIMIT_FSIZE, &limit);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  EXPECT_GT(pid, 0) << "fork failed";
  return pid;
}

// Waits for a spawned kvsim: its exit status, or 128 + the signal that ended it.
inline int WaitKvsim(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace kvsim::testing
