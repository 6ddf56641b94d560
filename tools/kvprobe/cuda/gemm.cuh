// bf16 GEMMs through cuBLASLt, shared by the [gemm] probe and the [step] forward
// passes: C[m, n] = X[m, k] W[k, n] with every matrix row-major bf16 and fp32
// accumulation, run as the column-major product C^T[n, m] = W^T[n, k] X^T[k, m].
#pragma once

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace kvprobe {

// A cuBLASLt handle, created on construction and destroyed with the object.
class LtHandle {
 public:
  LtHandle();
  ~LtHandle();
  LtHandle(const LtHandle&) = delete;
  LtHandle& operator=(const LtHandle&) = delete;
  cublasLtHandle_t get() const { return lt_; }

 private:
  cublasLtHandle_t lt_ = nullptr;
};

// One planned GEMM shape: its descriptors and cuBLASLt's top heuristic algorithm for
// a workspace of at most `workspace_bytes`. Planning is host work only (no launch), so
// plans are made before a CUDA graph capture and Run is called inside it.
class LtGemm {
 public:
  // Throws std::runtime_error when a cuBLASLt call fails or no algorithm exists.
  // REQUIRES: m, n, k >= 1.
  LtGemm(cublasLtHandle_t lt, int64_t m, int64_t n, int64_t k, size_t workspace_bytes);
  ~LtGemm();
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;

  // Enqueues C = X W on `stream` (beta 0: C is overwritten). x: [m][k], w: [k][n],
  // c: [m][n], all bf16 row-major with no padding; `workspace` holds at least the
  // planned workspace bytes and is not used by concurrent work.
  void Run(const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* c, void* workspace,
           cudaStream_t stream) const;

  int64_t m() const { return m_; }
  int64_t n() const { return n_; }
  int64_t k() const { return k_; }

 private:
  void Destroy();

  cublasLtHandle_t lt_;
  int64_t m_, n_, k_;
  size_t workspace_bytes_;
  cublasLtMatmulDesc_t op_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;
  cublasLtMatmulAlgo_t algo_ = {};
};

// Keeps the GPU under a sustained compute-bound load, so that what is timed next runs
// at the clock a busy server settles at. Under continuous tensor-core work the H200
// reaches its power cap within about a second and its SM clock drops from 1,980 to
// about 1,400-1,500 MHz (NVML clock event reason: SW power cap), which slows
// compute-bound kernels by about 20% and leaves memory-bound ones unchanged (kvprobe
// measurement on the lent H200, 2026-11-30). Kernel rows timed from a cool, idle GPU
// would credit every compute-bound kernel with a clock no busy server keeps.
class Heater {
 public:
  explicit Heater(cudaStream_t stream);
  ~Heater();
  Heater(const Heater&) = delete;
  Heater& operator=(const Heater&) = delete;

  // Runs bf16 GEMMs of 4096 x 8192 x 8192 on the stream for about `ms` milliseconds
  // and waits for them.
  void Run(double ms);

 private:
  cudaStream_t stream_;
  LtHandle lt_;
  LtGemm gemm_;
  __nv_bfloat16 *x_ = nullptr, *w_ = nullptr, *c_ = nullptr;
  void* workspace_ = nullptr;
  double gemm_us_ = 0;  // one GEMM's time, measured at construction
};

}  // namespace kvprobe
