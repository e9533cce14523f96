// Which CUDA devices this process can use. Cheap to call without a driver:
// the CUDA runtime answers cudaGetDeviceCount with an error code, which is
// turned into a message a user can act on.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "base/error.h"

namespace hpo::nn::gpu {

struct DeviceInfo {
  int index = 0;     // CUDA ordinal, as in --device cuda:N
  std::string name;  // e.g. "NVIDIA H100 80GB HBM3"
  int major = 0;     // compute capability
  int minor = 0;
  std::size_t total_memory = 0;  // bytes
  int multiprocessors = 0;
};

// Number of visible devices (>= 1). With no driver, no device, or every device
// hidden by CUDA_VISIBLE_DEVICES, fails with a message that starts
// "no CUDA device: " followed by the driver's words and what to check.
Result<int> device_count();

// Facts about device `index`; fails like device_count(), or with
// "no CUDA device cuda:N: ..." when N is out of range.
Result<DeviceInfo> device_info(int index);
Result<std::vector<DeviceInfo>> devices();

// "NVIDIA H100 80GB HBM3 (cuda:0, sm_90, 79.1 GiB, 132 SMs)".
std::string describe(const DeviceInfo& info);

}  // namespace hpo::nn::gpu
