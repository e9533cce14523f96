// cuda_registration() (backend.h): loads libhpo_cuda.so on first use, see registration.h.
// This file is the only part of trainer/nn/cuda linked into hpo; it includes no CUDA header.
#include "trainer/nn/cuda/registration.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <string>
#include <vector>

#include "trainer/nn/backend.h"

namespace hpo::nn {
namespace {

struct Module {
  CudaRegistration registration{nullptr, nullptr};
  std::string error;  // why it could not be loaded, for create()'s message
};

std::string executable_dir() {
  char path[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) return {};
  std::string exe(path, static_cast<size_t>(n));
  const auto slash = exe.rfind('/');
  return slash == std::string::npos ? std::string() : exe.substr(0, slash);
}

Module load() {
  std::vector<std::string> places;
  if (const char* env = std::getenv("HPO_CUDA_MODULE"); env != nullptr && *env != '\0') {
    places.emplace_back(env);  // an explicit choice: nothing else is tried
  } else {
    if (auto dir = executable_dir(); !dir.empty()) places.push_back(dir + "/" + gpu::kModuleFile);
#ifdef HPO_CUDA_MODULE_PATH
    places.emplace_back(HPO_CUDA_MODULE_PATH);
#endif
  }
  Module module;
  for (const auto& place : places) {
    // RTLD_LOCAL: the module's copies of shared inline code stay its own.
    void* handle = ::dlopen(place.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = ::dlerror();
      module.error += (module.error.empty() ? "" : "; ") + std::string(why ? why : place);
      continue;
    }
    using Entry = void (*)(CudaRegistration*, int);
    auto entry = reinterpret_cast<Entry>(::dlsym(handle, gpu::kModuleEntry));
    CudaRegistration registration{nullptr, nullptr};
    if (entry != nullptr) entry(&registration, gpu::kModuleAbi);
    if (registration.device_count == nullptr || registration.create == nullptr) {
      module.error += (module.error.empty() ? "" : "; ") + place +
                      ": not a CUDA backend module of this hpo build (version mismatch)";
      // The handle stays open: unloading CUDA libraries at run time is not worth the risk.
      continue;
    }
    module.registration = registration;
    module.error.clear();
    return module;
  }
  if (places.empty()) module.error = "no place to look for " + std::string(gpu::kModuleFile);
  return module;
}

const Module& module() {
  static const Module loaded = load();  // thread-safe, once per process
  return loaded;
}

int module_device_count() {
  const auto& m = module();
  return m.registration.device_count != nullptr ? m.registration.device_count() : 0;
}

Result<std::unique_ptr<Backend>> module_create(int index) {
  const auto& m = module();
  if (m.registration.create == nullptr) {
    return fail("no CUDA device: the CUDA backend module could not be loaded: " + m.error);
  }
  return m.registration.create(index);
}

}  // namespace

CudaRegistration cuda_registration() { return {&module_device_count, &module_create}; }

}  // namespace hpo::nn
