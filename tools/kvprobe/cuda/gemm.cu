// cuBLASLt bf16 GEMM plans (see gemm.cuh).
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "tools/kvprobe/cuda/check.h"
#include "tools/kvprobe/cuda/common.cuh"
#include "tools/kvprobe/cuda/gemm.cuh"

namespace kvprobe {

LtHandle::LtHandle() { CUBLAS_CHECK(cublasLtCreate(&lt_)); }

LtHandle::~LtHandle() { cublasLtDestroy(lt_); }

LtGemm::LtGemm(cublasLtHandle_t lt, int64_t m, int64_t n, int64_t k, size_t workspace_bytes)
    : lt_(lt), m_(m), n_(n), k_(k), workspace_bytes_(workspace_bytes) {
  if (m < 1 || n < 1 || k < 1) {
    throw std::invalid_argument("GEMM shape must be positive, got m " + std::to_string(m) + " n " +
                                std::to_string(n) + " k " + std::to_string(k));
  }
  cublasLtMatmulPreference_t pref = nullptr;
  try {
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&op_, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&a_, CUDA_R_16BF, n, k, n));  // W^T, column-major
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&b_, CUDA_R_16BF, k, m, k));  // X^T
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&c_, CUDA_R_16BF, n, m, n));  // C^T
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref,
                                                      CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                      &workspace_bytes_, sizeof workspace_bytes_));
    cublasLtMatmulHeuristicResult_t result = {};
    int found = 0;
    CUBLAS_CHECK(
        cublasLtMatmulAlgoGetHeuristic(lt_, op_, a_, b_, c_, c_, pref, 1, &result, &found));
    if (found == 0) {
      throw std::runtime_error("cuBLASLt found no algorithm for a GEMM (m " + std::to_string(m) +
                               ", n " + std::to_string(n) + ", k " + std::to_string(k) + ")");
    }
    algo_ = result.algo;
    cublasLtMatmulPreferenceDestroy(pref);
  } catch (...) {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    Destroy();
    throw;
  }
}

LtGemm::~LtGemm() { Destroy(); }

void LtGemm::Destroy() {
  if (a_) cublasLtMatrixLayoutDestroy(a_);
  if (b_) cublasLtMatrixLayoutDestroy(b_);
  if (c_) cublasLtMatrixLayoutDestroy(c_);
  if (op_) cublasLtMatmulDescDestroy(op_);
  a_ = b_ = c_ = nullptr;
  op_ = nullptr;
}

void LtGemm::Run(const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* c, void* workspace,
                 cudaStream_t stream) const {
  const float alpha = 1.f, beta = 0.f;
  CUBLAS_CHECK(cublasLtMatmul(lt_, op_, &alpha, w, a_, x, b_, &beta, c, c_, c, c_, &algo_,
                              workspace, workspace_bytes_, stream));
}

namespace {
constexpr int64_t kHeatM = 4096, kHeatN = 8192, kHeatK = 8192;
constexpr size_t kHeatWorkspaceBytes = 32 << 20;
}  // namespace

Heater::Heater(cudaStream_t stream)
    : stream_(stream), gemm_(lt_.get(), kHeatM, kHeatN, kHeatK, kHeatWorkspaceBytes) {
  CUDA_CHECK(cudaMalloc(&x_, sizeof(__nv_bfloat16) * kHeatM * kHeatK));
  CUDA_CHECK(cudaMalloc(&w_, sizeof(__nv_bfloat16) * kHeatK * kHeatN));
  CUDA_CHECK(cudaMalloc(&c_, sizeof(__nv_bfloat16) * kHeatM * kHeatN));
  CUDA_CHECK(cudaMalloc(&workspace_, kHeatWorkspaceBytes));
  // Random inputs: a GEMM of constant data toggles fewer bits and draws less power
  // than a real one.
  FillRandomBf16(x_, static_cast<size_t>(kHeatM * kHeatK), 31, 1.f, stream_);
  FillRandomBf16(w_, static_cast<size_t>(kHeatK * kHeatN), 32, 0.03f, stream_);
  cudaEvent_t a = nullptr, b = nullptr;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  gemm_.Run(x_, w_, c_, workspace_, stream_);
  CUDA_CHECK(cudaEventRecord(a, stream_));
  for (int i = 0; i < 4; ++i) gemm_.Run(x_, w_, c_, workspace_, stream_);
  CUDA_CHECK(cudaEventRecord(b, stream_));
  CUDA_CHECK(cudaEventSynchronize(b));
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  gemm_us_ = std::max(1.0, 1000.0 * ms / 4);
}

Heater::~Heater() {
  cudaFree(x_);
  cudaFree(w_);
  cudaFree(c_);
  cudaFree(workspace_);
}

void Heater::Run(double ms) {
  // The GEMM count is planned from its time measured at construction (on a cool GPU,
  // so the load lasts somewhat longer than asked once the clock drops).
  const int n = static_cast<int>(std::ceil(ms * 1000.0 / gemm_us_));
  for (int i = 0; i < n; ++i) gemm_.Run(x_, w_, c_, workspace_, stream_);
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

}  // namespace kvprobe
