#include "trainer/nn/cuda/check.h"

#include <string_view>

namespace hpo::nn::gpu {
namespace {

std::string_view call_name(const char* call) {
  std::string_view text = call ? call : "?";
  if (auto paren = text.find('('); paren != std::string_view::npos) text = text.substr(0, paren);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
}

Status failure(const char* call, const std::string& what) {
  return fail(std::string(call_name(call)) + ": " + what);
}

}  // namespace

std::string describe(cudaError_t status) {
  return std::string(cudaGetErrorName(status)) + " (" + cudaGetErrorString(status) + ")";
}

std::string describe(cudnnStatus_t status) {
  std::string text = cudnnGetErrorString(status);
  // cuDNN 9 keeps a more precise message for the last failure of this thread.
  char detail[512] = {};
  cudnnGetLastErrorString(detail, sizeof detail);
  if (detail[0] != '\0') text += std::string(" (") + detail + ")";
  return text;
}

std::string describe(cublasStatus_t status) {
  return std::string(cublasGetStatusName(status)) + " (" + cublasGetStatusString(status) + ")";
}

Status check(cudaError_t status, const char* call) {
  if (status == cudaSuccess) return {};
  // A sticky error from an earlier kernel surfaces at the next call; clear the
  // non-sticky ones so the next call does not report them again.
  (void)cudaGetLastError();
  return failure(call, describe(status));
}

Status check(cudnnStatus_t status, const char* call) {
  if (status == CUDNN_STATUS_SUCCESS) return {};
  return failure(call, describe(status));
}

Status check(cublasStatus_t status, const char* call) {
  if (status == CUBLAS_STATUS_SUCCESS) return {};
  return failure(call, describe(status));
}

}  // namespace hpo::nn::gpu
