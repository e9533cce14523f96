// The backend registry: the CPU backend always, the CUDA one through cuda_registration().
#include "trainer/nn/backend.h"

#include <charconv>

#include "trainer/nn/cpu/cpu_backend.h"

namespace hpo::nn {

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  return std::make_unique<cpu::CpuBackend>(threads);
}

std::vector<std::string> available_backends() {
  std::vector<std::string> out{"cpu"};
#ifdef HPO_WITH_CUDA
  int n = cuda_registration().device_count();
  for (int i = 0; i < n; ++i) out.push_back("cuda:" + std::to_string(i));
#endif
  return out;
}

Result<std::unique_ptr<Backend>> make_backend(std::string_view device, int threads) {
  if (threads < 0) return fail("--threads: must be >= 0 (got " + std::to_string(threads) + ")");
  if (device == "cpu") return make_cpu_backend(threads);
  if (device == "auto") {
#ifdef HPO_WITH_CUDA
    auto reg = cuda_registration();
    if (reg.device_count() > 0) {
      if (auto gpu = reg.create(0)) return std::move(*gpu);
    }
#endif
    return make_cpu_backend(threads);
  }
  if (device == "cuda" || device.starts_with("cuda:")) {
    int index = 0;
    if (device.size() > 5) {
      auto rest = device.substr(5);
      auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), index);
      if (ec != std::errc() || end != rest.data() + rest.size() || index < 0)
        return fail("device '" + std::string(device) + "': expected cuda:N with N >= 0");
    }
#ifdef HPO_WITH_CUDA
    auto reg = cuda_registration();
    int n = reg.device_count();
    if (index >= n)
      return fail(
          "device '" + std::string(device) + "': " +
          (n == 0 ? std::string("no usable GPU found") : std::to_string(n) + " GPU(s) found"));
    return reg.create(index);
#else
    return fail("device '" + std::string(device) +
                "': this hpo was built without CUDA (HPO_CUDA=OFF)");
#endif
  }
  return fail("device '" + std::string(device) + "': expected auto, cpu, cuda or cuda:N");
}

}  // namespace hpo::nn
