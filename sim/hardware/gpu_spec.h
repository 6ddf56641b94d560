// GpuSpec: one GPU type (a card in models/gpu/).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kvsim {

struct GpuSpec {
  std::string name;                       // e.g. "H100-SXM"
  int64_t memory_bytes = 0;               // device memory as the CUDA runtime reports it
  double hbm_bandwidth_bytes_per_s = 0;   // peak memory bandwidth
  double bf16_flops_per_s = 0;            // dense bf16 tensor-core peak
  double link_bandwidth_bytes_per_s = 0;  // GPU-GPU, per direction, per GPU
  double price_per_hour = 0;              // USD per GPU-hour; user-editable
  // Optional: the GPUs of one host that link_bandwidth_bytes_per_s joins (an NVLink
  // domain, or a PCIe host's GPUs). Tensor parallelism beyond it would cross hosts
  // over the network, which kvsim does not model, and is refused. 0: not given.
  int64_t gpus_per_host = 0;
  // Device names as the CUDA driver reports them (cudaDeviceProp::name, kvprobe's
  // gpu_name) for this GPU; a profile measured on another device is refused. Empty:
  // not checked (a caveat says so).
  std::vector<std::string> device_names;
  // Optional: the card's CUDA-core (non-tensor) FP32 peak, which bounds kernels doing
  // scalar math (vLLM's own paged decode kernel). 0: not given.
  double fp32_flops_per_s = 0;
  // Optional: the dense fp8 tensor-core peak, which fp8 weights with fp8 activations
  // (W8A8) reach. 0: the GPU has no fp8 tensor cores, or the card does not say; fp8
  // weights are then multiplied at the bf16 rate (weight-only, W8A16).
  double fp8_flops_per_s = 0;
  // Optional, per card, each with its source in the card: the fractions of peak
  // that engine-class kernels reach, and NCCL all-reduce terms. A value < 0 means
  // the card does not give it (timing uses a generic default and says so).
  struct Efficiencies {
    double gemm = -1;                      // cuBLAS bf16 GEMM, fraction of bf16_flops_per_s
    double memory = -1;                    // streaming copy, fraction of hbm_bandwidth_bytes_per_s
    double attention_prefill = -1;         // FlashAttention-class prefill, fraction of bf16 peak
    double attention_decode = -1;          // contiguous decode attention, fraction of bandwidth
    double allreduce_base_latency_s = -1;  // NCCL small-message latency, fixed part
    double allreduce_hop_latency_s = -1;   // per ring step: latency = base + 2 (n-1) hop
    double allreduce_bus_efficiency = -1;  // NCCL bus bandwidth / link_bandwidth
    // The most GPUs the all-reduce terms above were measured on; beyond it they are
    // extrapolated (and outputs say so). A whole number >= 2.
    double allreduce_fit_max_gpus = -1;
  };
  Efficiencies efficiency;
  // Optional: the host CPU of the system this GPU usually ships in (e.g. the DGX's)
  // and its single-thread speed relative to the reference core the engine's CPU
  // terms are stated for (EngineConfig::host_cpu_speed). Empty / <= 0: not given.
  std::string host_cpu;
  double host_cpu_speed = -1;
};

// Loads a GPU card. Throws InputError naming the file and key on a missing,
// unknown or invalid field.
// Every key above plus `source` (a non-empty string) is required. memory_bytes is a
// whole number of bytes from 1 GiB to 16 TiB, plain or with a unit ("80GiB"); the
// rates are positive finite numbers within what a GPU can be; price_per_hour may be 0
// (no price known, or paid for: a plan then needs its price beside other cards). Optional:
// device_names, a non-empty list of strings; host_cpu (a name) and host_cpu_speed (in [0.05, 10]),
// both or neither; gpus_per_host, an integer in [1, 576]. Messages read "path:line: key 'k': what,
// got 'v'". A key earlier cards carried and kvsim no longer reads (host_link_bandwidth_bytes_per_s)
// is refused as removed, with its line.
GpuSpec LoadGpuSpec(const std::string& path);

}  // namespace kvsim
