// kvsim_bench: simulator speed and memory on two fixed workloads. Prints simulated
// requests and events per wall-clock second and the process's peak memory.
//   (a) 10,000 requests with splitwise_conv lengths, Poisson arrivals at 4 QPS,
//       Llama-2-7B on one H100, Sarathi scheduler (chunk 512, 128 sequences).
//   (b) 1,000,000 synthetic requests (uniform lengths), Poisson arrivals.
#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <string>

#include "sim/config/scenario_config.h"
#include "sim/config/yaml_tree.h"
#include "sim/core/check.h"
#include "sim/simulator/builder.h"

namespace {

// Peak resident set size of this process in MiB (Linux /proc), or -1.
double PeakRssMiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return -1;
}

void Bench(const std::string& name, const std::string& yaml) {
  const kvsim::ConfigTree tree =
      kvsim::ConfigTree::Parse(yaml, std::string(KVSIM_DATA_DIR) + "/configs/bench.yaml");
  const kvsim::ScenarioConfig config = kvsim::DecodeScenario(tree, kvsim::DefaultModelsDir());
  const auto start = std::chrono::steady_clock::now();
  auto sim = kvsim::BuildSimulation(config);
  const kvsim::Summary s = sim->Run();
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << fmt::format(
      "{}\n  {} requests ({} completed), {} events, {} iterations in {:.3f} s wall\n"
      "  {:.0f} simulated requests/s, {:.0f} events/s; simulated makespan {:.0f} s, "
      "p99 TTFT {:.3f} s\n  peak RSS so far {:.0f} MiB\n",
      name, s.requests_total, s.requests_completed, s.events, s.iterations, wall_s,
      static_cast<double>(s.requests_total) / wall_s, static_cast<double>(s.events) / wall_s,
      s.makespan_s, s.ttft_s.p99, PeakRssMiB());
}

}  // namespace

int main() {
  try {
    Bench("(a) 10k splitwise_conv requests, Poisson 4 QPS, Llama-2-7B / H100, sarathi 512/128",
          R"(
seed: 1
model: Llama-2-7B
gpu: H100-SXM
workload:
  trace: ../traces/splitwise_conv.csv
  arrival: {process: poisson, rate_qps: 4}
  lengths: {source: trace}
  max_requests: 10000
scheduler: {type: sarathi, chunk_tokens: 512, max_num_seqs: 128}
kv_cache: {type: paged}
output: {timeseries_csv: false}
)");
    Bench(
        "(b) 1M synthetic requests (prompt 64-1024, output 16-512), Poisson 12 QPS, "
        "Llama-3-8B / H100, vllm, paged",
        R"(
seed: 2
model: Llama-3-8B
gpu: H100-SXM
workload:
  arrival: {process: poisson, rate_qps: 12}
  lengths: {source: uniform, min_prompt_tokens: 64, max_prompt_tokens: 1024,
            min_output_tokens: 16, max_output_tokens: 512}
  max_requests: 1000000
scheduler: {type: vllm, max_num_seqs: 256}
kv_cache: {type: paged}
output: {timeseries_csv: false}
)");
  } catch (const std::exception& e) {
    std::cerr << "kvsim_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
