// Rank processes: start, wait, and end together.
#include "tools/kvprobe/host/rank_processes.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace kvprobe {

pid_t SpawnProcess(const std::vector<std::string>& argv) {
  if (argv.empty()) throw std::invalid_argument("SpawnProcess: no program");
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int err = posix_spawn(&pid, args[0], nullptr, nullptr, args.data(), environ);
  if (err != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(err));
  return pid;
}

void WaitForRanks(std::vector<pid_t> pids, const std::string& what, int timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  std::string failure;
  while (!pids.empty() && failure.empty()) {
    for (size_t i = 0; i < pids.size();) {
      int status = 0;
      const pid_t done = waitpid(pids[i], &status, WNOHANG);
      if (done == 0) {
        ++i;
        continue;
      }
      pids.erase(pids.begin() + static_cast<std::ptrdiff_t>(i));
      if (done < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        failure = "a rank process of " + what + " failed (" +
                  (done < 0            ? std::string("lost")
                   : WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                       : "signal " + std::to_string(WTERMSIG(status))) +
                  "); see its messages above";
        break;
      }
    }
    if (failure.empty() && !pids.empty()) {
      if (std::chrono::steady_clock::now() > deadline) {
        failure = what + " did not finish in " + std::to_string(timeout_s) + " s";
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }
  for (pid_t pid : pids) kill(pid, SIGKILL);
  for (pid_t pid : pids) waitpid(pid, nullptr, 0);
  if (!failure.empty()) throw std::runtime_error(failure);
}

std::string SelfExecutablePath() {
  char self[4096] = {};
  const ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) throw std::runtime_error("cannot find this program's path (/proc/self/exe)");
  return std::string(self, static_cast<size_t>(len));
}

}  // namespace kvprobe
