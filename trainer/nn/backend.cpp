// The backend registry: the CPU backend always, the CUDA one through cuda_registration().
#include "trainer/nn/backend.h"

#include <charconv>
#include <optional>

#include "trainer/nn/cpu/cpu_backend.h"

namespace hpo::nn {

namespace {

// "cuda" -> 0, "cuda:N" -> N; anything else -> nullopt.
std::optional<int> cuda_index(std::string_view device) {
  if (device == "cuda") return 0;
  if (!device.starts_with("cuda:")) return std::nullopt;
  auto rest = device.substr(5);
  int index = -1;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), index);
  if (rest.empty() || ec != std::errc() || end != rest.data() + rest.size() || index < 0)
    return std::nullopt;
  return index;
}

}  // namespace

bool is_device_name(std::string_view device) {
  return device == "auto" || device == "cpu" || cuda_index(device).has_value();
}

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
    auto parsed = cuda_index(device);
    if (!parsed) return fail("device '" + std::string(device) + "': expected cuda:N with N >= 0");
    [[maybe_unused]] int index = *parsed;
#ifdef HPO_WITH_CUDA
    auto reg = cuda_registration();
    int n = reg.device_count();
    if (n > 0 && index >= n)
      return fail("device '" + std::string(device) + "': " + std::to_string(n) + " GPU(s) found");
    // With no GPU at all, create() still runs so that the driver's own words
    // ("no CUDA device: ...") reach the user.
    auto gpu = reg.create(index);
    if (!gpu) return fail("device '" + std::string(device) + "': " + gpu.error().message);
    return gpu;
#else
    return fail("device '" + std::string(device) +
                "': this hpo was built without CUDA (HPO_CUDA=OFF)");
#endif
  }
  return fail("device '" + std::string(device) + "': expected auto, cpu, cuda or cuda:N");
}

}  // namespace hpo::nn
