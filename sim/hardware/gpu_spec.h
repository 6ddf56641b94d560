// GpuSpec: one GPU type (a card in models/gpu/).
#pragma once

#include <cstdint>
#include <string>

namespace kvsim {

struct GpuSpec {
  std::string name;                            // e.g. "H100-SXM"
  int64_t memory_bytes = 0;                    // device memory as the CUDA runtime reports it
  double hbm_bandwidth_bytes_per_s = 0;        // peak memory bandwidth
  double bf16_flops_per_s = 0;                 // dense bf16 tensor-core peak
  double link_bandwidth_bytes_per_s = 0;       // GPU-GPU, per direction, per GPU
  double host_link_bandwidth_bytes_per_s = 0;  // GPU-host, per direction
  double price_per_hour = 0;                   // USD per GPU-hour; user-editable
};

// Loads a GPU card. Throws InputError naming the file and key on a missing,
// unknown or invalid field.
// Every key above plus `source` (a non-empty string) is required. memory_bytes is a
// positive plain decimal integer; the rates are positive finite numbers; price_per_hour
// may be 0. Messages read "path:line: key 'k': what, got 'v'".
GpuSpec LoadGpuSpec(const std::string& path);

}  // namespace kvsim
