// How hpo reaches the CUDA backend without linking CUDA (ggml's dynamic-backend pattern).
//
// All CUDA code (cuDNN, cuBLAS, kernels) is in one shared module, libhpo_cuda.so, built beside
// the hpo binary. hpo itself links only registration.cpp, which defines THE registration
// function of backend.h, cuda_registration(): on its first call it dlopen()s the module and asks
// it for its CudaRegistration. So
//   - hpo starts fast and runs on the CPU on machines without cuDNN or a driver (the module, and
//     with it libcudnn / libcublas, is loaded only when a CUDA device is asked for or probed);
//   - a binary copied to a GPU machine takes libhpo_cuda.so from its own folder and cuDNN and
//     cuBLAS from whatever the dynamic loader finds there (LD_LIBRARY_PATH, e.g. PyTorch's).
// Where the module is looked for: $HPO_CUDA_MODULE (a file) when set, and then nowhere else;
// otherwise the folder of the running executable, then the build tree's path compiled in. If it
// cannot be loaded, device_count() is 0 and create() fails with "no CUDA device: the CUDA backend
// module could not be loaded: <dlerror of each place tried>".
#pragma once

namespace hpo::nn::gpu {

// Bumped whenever CudaRegistration or the Backend interface changes shape: a module from
// another build refuses to register (the loader reports a version mismatch).
inline constexpr int kModuleAbi = 1;

// The exported symbol, extern "C":
//   void hpo_cuda_module_register(hpo::nn::CudaRegistration* out, int abi);
// leaves *out untouched when abi != kModuleAbi.
inline constexpr const char* kModuleEntry = "hpo_cuda_module_register";
inline constexpr const char* kModuleFile = "libhpo_cuda.so";

}  // namespace hpo::nn::gpu
