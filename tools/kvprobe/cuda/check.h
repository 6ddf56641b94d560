// Return-code checks for CUDA runtime, driver, cuBLASLt and NCCL calls: every
// failure throws std::runtime_error naming the call, the file and the line.
#pragma once

#include <cublasLt.h>
#include <cuda.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace kvprobe {

[[noreturn]] inline void ThrowCudaError(const char* what, const char* call, const char* file,
                                        int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call +
                           " failed: " + what);
}

inline const char* DriverErrorString(CUresult r) {
  const char* s = nullptr;
  cuGetErrorString(r, &s);
  return s ? s : "unknown driver error";
}

}  // namespace kvprobe

#define CUDA_CHECK(call)                                                                     \
  do {                                                                                       \
    const cudaError_t kvprobe_err = (call);                                                  \
    if (kvprobe_err != cudaSuccess)                                                          \
      ::kvprobe::ThrowCudaError(cudaGetErrorString(kvprobe_err), #call, __FILE__, __LINE__); \
  } while (0)

#define CU_CHECK(call)                                                                      \
  do {                                                                                      \
    const CUresult kvprobe_res = (call);                                                    \
    if (kvprobe_res != CUDA_SUCCESS)                                                        \
      ::kvprobe::ThrowCudaError(::kvprobe::DriverErrorString(kvprobe_res), #call, __FILE__, \
                                __LINE__);                                                  \
  } while (0)

#define CUBLAS_CHECK(call)                                                                  \
  do {                                                                                      \
    const cublasStatus_t kvprobe_st = (call);                                               \
    if (kvprobe_st != CUBLAS_STATUS_SUCCESS)                                                \
      ::kvprobe::ThrowCudaError(                                                            \
          ("cuBLAS status " + std::to_string(static_cast<int>(kvprobe_st))).c_str(), #call, \
          __FILE__, __LINE__);                                                              \
  } while (0)
