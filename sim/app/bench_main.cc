// kvsim_bench: kvsim's speed and memory as a user meets them, whole processes of the
// kvsim binary (start-up, reading the trace, simulating, writing outputs):
//   (a) Vidur's scenario: 10,000 splitwise_conv requests, Poisson 4 QPS, Llama-2-7B
//       on one H100, Sarathi (chunk 512, 128 sequences), paged; with the default
//       outputs, with the CSVs off, and with skip-ahead off (stepping every iteration);
//   (b) the same at 1,000,000 requests (lengths resampled from the trace), CSVs off
//       and default outputs;
//   (c) the 48-candidate plan (configs/plans/bench_48_candidates.yaml), --jobs 2;
//   (d) the Mooncake trace with prefix caching off and on (paged; vAttention 256 KiB).
// Prints the median wall time of several runs, the largest peak resident set, and
// the speed-up over Vidur's time on (a) (--vidur-s, measured on the same machine).
//   build/sim/kvsim_bench [--kvsim PATH] [--vidur-s SECONDS] [--runs N]
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "sim/core/check.h"
#include "sim/core/file_writer.h"

namespace {

namespace fs = std::filesystem;

struct Measured {
  double median_s = 0, min_s = 0, max_rss_mib = 0;
};

// Runs `argv` `runs` times with its output discarded; wall time from fork to exit,
// peak resident set of the child from wait4. Throws on a failed run.
Measured Time(const std::vector<std::string>& argv, int runs) {
  std::vector<double> walls;
  double rss_kib = 0;
  for (int i = 0; i < runs; ++i) {
    std::cout.flush();  // else the child would write the parent's buffered output again
    std::fflush(stdout);
    const auto start = std::chrono::steady_clock::now();
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      std::vector<char*> args;
      args.reserve(argv.size() + 1);
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      if (std::freopen("/dev/null", "w", stdout) == nullptr) _exit(127);
      execv(args[0], args.data());
      _exit(127);
    }
    int status = 0;
    rusage usage{};
    if (wait4(pid, &status, 0, &usage) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      throw std::runtime_error(
          fmt::format("'{}' failed (status {})", fmt::join(argv, " "), status));
    }
    walls.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    rss_kib = std::max(rss_kib, static_cast<double>(usage.ru_maxrss));
  }
  std::sort(walls.begin(), walls.end());
  return {walls[walls.size() / 2], walls.front(), rss_kib / 1024.0};
}

std::string VidurScenario(int64_t requests, const char* lengths) {
  return fmt::format(R"(seed: 1
model: Llama-2-7B
gpu: H100-SXM
workload:
  trace: {}/traces/splitwise_conv.csv
  arrival: {{process: poisson, rate_qps: 4}}
  lengths: {{source: {}}}
  max_requests: {}
scheduler: {{type: sarathi, chunk_tokens: 512, max_num_seqs: 128}}
kv_cache: {{type: paged}}
)",
                     KVSIM_DATA_DIR, lengths, requests);
}

// What the command line sets: the kvsim binary, Vidur's time on (a) in seconds, and
// the runs per case.
struct BenchOptions {
  fs::path kvsim;
  double vidur_s = 0;
  int runs = 0;
};

// Parses --kvsim PATH, --vidur-s SECONDS and --runs N (at least 1); throws InputError
// on an unknown option, a missing value or a missing kvsim binary.
BenchOptions ParseOptions(int argc, char** argv) {
  BenchOptions o;
  o.kvsim = fs::read_symlink("/proc/self/exe").parent_path() / "kvsim";
  // Vidur on (a): 22.8 s, measured on the 2-core development machine (README: Speed).
  o.vidur_s = 22.8;
  o.runs = 11;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) throw kvsim::InputError(flag + ": needs a value");
    const std::string value = argv[++i];
    if (flag == "--kvsim") {
      o.kvsim = value;
    } else if (flag == "--vidur-s") {
      o.vidur_s = std::stod(value);
    } else if (flag == "--runs") {
      o.runs = std::max(1, std::stoi(value));
    } else {
      throw kvsim::InputError("unknown option " + flag +
                              "; usage: kvsim_bench [--kvsim PATH] [--vidur-s S] [--runs N]");
    }
  }
  if (!fs::exists(o.kvsim)) throw kvsim::InputError(o.kvsim.string() + ": no kvsim binary");
  return o;
}

// One benchmark session: the kvsim binary, the scratch directory its scenarios and
// outputs go to, the runs per case and Vidur's time on (a) in seconds.
struct Bench {
  std::string bin;
  fs::path dir;
  int runs = 0;
  double vidur_s = 0;
};

// The command line of `kvsim run DIR/CONFIG` into DIR/out with one --set per entry
// of `sets`.
std::vector<std::string> RunArgs(const Bench& b, const char* config,
                                 std::vector<std::string> sets) {
  std::vector<std::string> a = {
      b.bin, "run", (b.dir / config).string(), "--out", (b.dir / "out").string(), "--force", "-q"};
  for (std::string& s : sets) {
    a.push_back("--set");
    a.push_back(std::move(s));
  }
  return a;
}

// Prints the header line and the column titles of the table.
void PrintHeader(const Bench& b) {
  std::cout << fmt::format("kvsim_bench: {} (median of {} runs; peak RSS the largest)\n", b.bin,
                           b.runs);
  std::cout << fmt::format("{:<58} {:>10} {:>10} {:>9} {:>10}\n", "case", "median s", "min s",
                           "RSS MiB", "x Vidur");
}

// Prints one case's row; with `vs_vidur`, the speed-up over Vidur's time on (a).
void PrintRow(const Bench& b, const std::string& name, const Measured& m, bool vs_vidur) {
  std::cout << fmt::format("{:<58} {:>10.4f} {:>10.4f} {:>9.1f} {:>10}\n", name, m.median_s,
                           m.min_s, m.max_rss_mib,
                           vs_vidur ? fmt::format("{:.0f}", b.vidur_s / m.median_s) : "");
}

// (a) Vidur's scenario at 10k requests, (b) at 1M and (c) the 48-candidate plan.
void BenchVidurAndPlan(const Bench& b) {
  const std::vector<std::string> csvs_off = {"output.requests_csv=false",
                                             "output.timeseries_csv=false"};
  PrintRow(b, "(a) Vidur's scenario, 10k requests, default outputs",
           Time(RunArgs(b, "vidur_10k.yaml", {}), b.runs), true);
  PrintRow(b, "(a) Vidur's scenario, 10k requests, CSVs off",
           Time(RunArgs(b, "vidur_10k.yaml", csvs_off), b.runs), true);
  std::vector<std::string> stepping = csvs_off;
  stepping.push_back("simulation.skip_ahead=false");
  PrintRow(b, "(a) the same, CSVs off, skip-ahead off",
           Time(RunArgs(b, "vidur_10k.yaml", stepping), b.runs), true);
  const int big_runs = std::max(1, b.runs / 4);
  PrintRow(b, "(b) 1M requests, CSVs off", Time(RunArgs(b, "vidur_1m.yaml", csvs_off), big_runs),
           false);
  PrintRow(b, "(b) 1M requests, default outputs", Time(RunArgs(b, "vidur_1m.yaml", {}), big_runs),
           false);
  PrintRow(
      b, "(c) 48-candidate plan, --jobs 2",
      Time({b.bin, "plan", std::string(KVSIM_DATA_DIR) + "/configs/plans/bench_48_candidates.yaml",
            "--jobs", "2", "--out", (b.dir / "plan").string(), "--force", "-q"},
           big_runs),
      false);
}

// The command line of the whole Mooncake trace on KV manager `manager` (paged or
// vattention, with 256 KiB pages) with prefix caching `caching` ("false" or "true").
std::vector<std::string> MooncakeArgs(const Bench& b, const char* manager, const char* caching) {
  std::vector<std::string> args = {
      b.bin,
      "run",
      std::string(KVSIM_DATA_DIR) + "/configs/mooncake_long_context.yaml",
      "--set",
      "workload.max_requests=0",
      "--set",
      std::string("kv_cache.type=") + manager,
      "--set",
      std::string("kv_cache.prefix_caching=") + caching,
      "--set",
      "output.requests_csv=false",
      "--set",
      "output.timeseries_csv=false"};
  if (std::string(manager) == "vattention") {
    args.insert(args.end(), {"--set", "kv_cache.page_bytes=256KiB"});
  }
  args.insert(args.end(), {"--out", (b.dir / "mooncake").string(), "--force", "-q"});
  return args;
}

// (d) Prefix caching's cost: the whole Mooncake synthetic trace (3,993 requests of
// about 15K prompt tokens, chained hashes) on the paged manager and on vAttention with
// 256 KiB pages, without and with it.
void BenchMooncake(const Bench& b) {
  for (const char* manager : {"paged", "vattention"}) {
    for (const char* caching : {"false", "true"}) {
      PrintRow(
          b,
          fmt::format("(d) Mooncake trace, {}, prefix caching {}",
                      std::string(manager) == "paged" ? "paged" : "vattention 256KiB", caching),
          Time(MooncakeArgs(b, manager, caching), b.runs), false);
    }
  }
}

int Main(int argc, char** argv) {
  const BenchOptions o = ParseOptions(argc, argv);
  const fs::path dir = fs::temp_directory_path() / fmt::format("kvsim_bench_{}", getpid());
  fs::create_directories(dir);
  kvsim::WriteFileAtomically(dir / "vidur_10k.yaml", VidurScenario(10'000, "trace"));
  kvsim::WriteFileAtomically(dir / "vidur_1m.yaml", VidurScenario(1'000'000, "resample"));
  const Bench b{o.kvsim.string(), dir, o.runs, o.vidur_s};

  PrintHeader(b);
  BenchVidurAndPlan(b);
  BenchMooncake(b);
  std::cout << fmt::format(
      "x Vidur: Vidur's {:g} s on (a) over kvsim's median (pass --vidur-s with Vidur's time "
      "measured beside it)\n",
      b.vidur_s);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "kvsim_bench: " << e.what() << "\n";
    return 1;
  }
}
