// CUDA, cuDNN and cuBLAS status codes become hpo::Error here and nowhere else
// (STYLE.md habit 2: library codes are turned into values at one place).
//
// Every message names the failing call, the library's status name and its
// text, e.g. "cudnnConvolutionForward: CUDNN_STATUS_BAD_PARAM (...)".
// Host code only: nvcc compiles kernels.cu alone, which does not include this.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <string>
#include <utility>

#include "base/error.h"

namespace hpo::nn::gpu {

// `call` is the text of the call (as HPO_GPU_TRY writes it); only the name
// before the first '(' goes into the message.
Status check(cudaError_t status, const char* call);
Status check(cudnnStatus_t status, const char* call);
Status check(cublasStatus_t status, const char* call);

// The text of the message check() would give, without the call name.
std::string describe(cudaError_t status);
std::string describe(cudnnStatus_t status);
std::string describe(cublasStatus_t status);

}  // namespace hpo::nn::gpu

// In a function returning Status or Result<T>: run `call`, and return its error
// (naming the call) when it fails.
#define HPO_GPU_TRY(call)                                                                \
  do {                                                                                   \
    if (auto hpo_gpu_status_ = ::hpo::nn::gpu::check((call), #call); !hpo_gpu_status_) { \
      return std::unexpected(std::move(hpo_gpu_status_.error()));                        \
    }                                                                                    \
  } while (false)

// In a function returning Status or Result<T>: propagate the error of an
// expression that yields a Status or Result.
#define HPO_GPU_PROPAGATE(expr)                                   \
  do {                                                            \
    if (auto hpo_gpu_status_ = (expr); !hpo_gpu_status_) {        \
      return std::unexpected(std::move(hpo_gpu_status_.error())); \
    }                                                             \
  } while (false)
