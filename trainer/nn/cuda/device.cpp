#include "trainer/nn/cuda/device.h"

#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>

#include "trainer/nn/cuda/check.h"

namespace hpo::nn::gpu {
namespace {

std::string hint(cudaError_t status) {
  switch (status) {
    case cudaErrorInsufficientDriver:
      return "no NVIDIA driver is loaded, or it is older than the CUDA " +
             std::to_string(CUDART_VERSION / 1000) + " runtime this hpo was built with";
    case cudaErrorNoDevice:
      return "the driver sees no GPU";
    case cudaErrorInitializationError:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorCompatNotSupportedOnDevice:
      return "the NVIDIA driver could not be initialised; check nvidia-smi";
    default:
      return {};
  }
}

std::string visible_devices_note() {
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  if (visible == nullptr) return {};
  return std::string("; CUDA_VISIBLE_DEVICES=\"") + visible + "\"";
}

}  // namespace

Result<int> device_count() {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    std::string message = std::string("no CUDA device: ") + cudaGetErrorString(status);
    if (auto why = hint(status); !why.empty()) message += " (" + why + ")";
    return fail(message + visible_devices_note());
  }
  if (count <= 0) {
    return fail("no CUDA device: the driver reports 0 devices" + visible_devices_note());
  }
  return count;
}

Result<DeviceInfo> device_info(int index) {
  auto count = device_count();
  if (!count) return std::unexpected(count.error());
  if (index < 0 || index >= *count) {
    return fail("no CUDA device cuda:" + std::to_string(index) + ": this machine has " +
                std::to_string(*count) + " (cuda:0 to cuda:" + std::to_string(*count - 1) + ")" +
                visible_devices_note());
  }
  cudaDeviceProp prop{};
  HPO_GPU_TRY(cudaGetDeviceProperties(&prop, index));
  DeviceInfo info;
  info.index = index;
  info.name = prop.name;
  info.major = prop.major;
  info.minor = prop.minor;
  info.total_memory = prop.totalGlobalMem;
  info.multiprocessors = prop.multiProcessorCount;
  return info;
}

Result<std::vector<DeviceInfo>> devices() {
  auto count = device_count();
  if (!count) return std::unexpected(count.error());
  std::vector<DeviceInfo> all;
  for (int i = 0; i < *count; ++i) {
    auto info = device_info(i);
    if (!info) return std::unexpected(info.error());
    all.push_back(std::move(*info));
  }
  return all;
}

std::string describe(const DeviceInfo& info) {
  char memory[32];
  std::snprintf(memory, sizeof memory, "%.1f GiB",
                static_cast<double>(info.total_memory) / (1024.0 * 1024.0 * 1024.0));
  return info.name + " (cuda:" + std::to_string(info.index) + ", sm_" + std::to_string(info.major) +
         std::to_string(info.minor) + ", " + memory + ", " + std::to_string(info.multiprocessors) +
         " SMs)";
}

}  // namespace hpo::nn::gpu
