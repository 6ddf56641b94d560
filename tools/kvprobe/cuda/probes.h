// The kvprobe measurements. Each appends its table(s) to ctx.profile, may write raw
// files under ctx.raw_dir, and throws std::runtime_error on any failed CUDA call.
#pragma once

#include <cstddef>

#include "tools/kvprobe/cuda/common.cuh"

namespace kvprobe {

// Minimum VMM allocation granularity of the device, in bytes.
size_t AllocationGranularity(int device);

// [vmm]: create/map/set-access/unmap/release per handle size, pooled mapping,
// cudaMalloc/cudaFree, address reservations up to 4 TiB.
void ProbeVmm(ProbeContext& ctx);

// [vmm_under_load]: decode kernels alone and while a host thread maps pages.
void ProbeOverlap(ProbeContext& ctx);

// [copy]: device-to-device copy bandwidth.
void ProbeCopy(ProbeContext& ctx);

// [gemm]: cuBLASLt bf16 GEMMs of every model card's layers at TP 1/2/4/8.
void ProbeGemm(ProbeContext& ctx);

// [small_kernels]: one layer's kernels besides its GEMMs and attention (two fused
// add+RMSNorms, RoPE, the KV-cache write, SiLU-and-multiply; the [step] pass's own
// kernels, checked against host references first) for every dense model card with
// head_dim 128 at TP 1/2/4/8 and 1-16,384 tokens, per layer, as CUDA graph replays.
void ProbeSmallKernels(ProbeContext& ctx);

// Checks the attention kernels against the float64 reference on fresh random
// inputs; throws if any relative error exceeds the bf16 bound. Returns the worst error.
double VerifyAttention(ProbeContext& ctx);

// [decode_attention] and [prefill_attention] grids, contiguous and paged.
void ProbeAttention(ProbeContext& ctx);

// [step]: whole-model forward passes of each dense --model card (default
// Llama-3-8B) at each TP of --step-tp over a grid of decode, prefill and mixed
// batches, contiguous and paged KV, every pass replayed from a CUDA graph; TP > 1
// runs one process per GPU (RunStepRank) and keeps the slowest rank's times. Checks
// its small kernels against host references first and every pass's logits for
// non-finite values; throws on any failure.
void ProbeStep(ProbeContext& ctx);

// The body of one [step] rank process: joins the communicator, measures its share of
// every pass, writes its rows (step_ranks.h) to the rank's out path and its passes'
// lines beside it (path + ".passes"). Returns the exit status.
int RunStepRank(const ProbeOptions& options);

// [allreduce]: NCCL bf16 all-reduce for each GPU count of --allreduce-gpus, one
// process per GPU (RunAllreduceRank); the time at each size is the slowest rank's.
void ProbeAllReduce(ProbeContext& ctx);

// The body of one rank process: joins the communicator, times every message size
// (median of 3 trials, each started after a barrier), writes the rank's CSV. Returns
// the exit status; throws std::runtime_error on a failed CUDA or NCCL call.
int RunAllreduceRank(const ProbeOptions& options);

// [vattention]: the vAttention mechanism on a fixed decode schedule, overlap on/off.
void ProbeVAttention(ProbeContext& ctx);

}  // namespace kvprobe
