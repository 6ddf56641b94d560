// cuBLASLt bf16 GEMM plans (see gemm.cuh).
#include <stdexcept>
#include <string>

#include "tools/kvprobe/cuda/check.h"
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

}  // namespace kvprobe
