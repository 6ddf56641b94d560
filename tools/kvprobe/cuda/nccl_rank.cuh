// NCCL pieces shared by the multi-GPU probes (allreduce_probe.cu, step_probe.cu):
// checked calls, NVLink multicast off, and a rank process joining its parent's
// communicator. Empty in a build without NCCL.
#pragma once

#ifdef KVPROBE_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "tools/kvprobe/cuda/check.h"
#include "tools/kvprobe/host/allreduce_plan.h"
#include "tools/kvprobe/host/args.h"

namespace kvprobe {

// Throws std::runtime_error "WHAT: NCCL's message" unless `r` is ncclSuccess.
inline void Nccl(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw std::runtime_error(std::string(what) + ": " + ncclGetErrorString(r));
}

// No NVLink multicast (NVLS): it needs a fabric manager set-up that shared hosts may
// not have, and serving engines commonly run without it. Called before NCCL starts,
// by the parent and by every rank (also one started by hand).
inline void DisableNvlinkMulticast() { setenv("NCCL_NVLS_ENABLE", "0", 1); }

// Makes rank `me`'s GPU (device me.rank) current, NVLink multicast off, and joins
// the communicator of me.ranks ranks named by me.nccl_id_hex. Throws
// std::runtime_error for a malformed id or a failed call.
inline ncclComm_t JoinRankCommunicator(const RankProcess& me) {
  ncclUniqueId id;
  if (!HexDecode(me.nccl_id_hex, id.internal, sizeof id.internal)) {
    throw std::runtime_error("--nccl-id: expected " + std::to_string(2 * sizeof id.internal) +
                             " hex digits");
  }
  DisableNvlinkMulticast();
  CUDA_CHECK(cudaSetDevice(me.rank));
  ncclComm_t comm;
  Nccl(ncclCommInitRank(&comm, me.ranks, id, me.rank), "ncclCommInitRank");
  return comm;
}

}  // namespace kvprobe
#endif
