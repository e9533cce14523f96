// CudaBackend: setup, allocation, host copies, solver updates, and THE registration function
// of the CUDA backend (backend.h). The op plans are in cuda_ops.cpp.
#include "trainer/nn/cuda/cuda_backend.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "trainer/nn/cuda/check.h"
#include "trainer/nn/cuda/device.h"
#include "trainer/nn/cuda/kernels.h"
#include "trainer/nn/cuda/registration.h"

namespace hpo::nn::gpu {

void must(const Status& status, const char* where) {
  if (status) return;
  std::fprintf(stderr, "hpo: CUDA backend, %s: %s\n", where, status.error().message.c_str());
  std::fflush(stderr);
  std::abort();
}

Status CudaBackend::make_current() const {
  HPO_GPU_TRY(cudaSetDevice(index_));
  return {};
}

Result<std::unique_ptr<CudaBackend>> CudaBackend::create(int index) {
  auto info = device_info(index);  // "no CUDA device: ..." without driver or GPU
  if (!info) return std::unexpected(info.error());
  std::unique_ptr<CudaBackend> backend(new CudaBackend(index));
  HPO_GPU_PROPAGATE(backend->make_current());
  const char* tf32 = std::getenv("HPO_CUDA_TF32");
  backend->allow_tf32_ = tf32 != nullptr && std::strcmp(tf32, "1") == 0;

  auto stream = make_stream();
  if (!stream) return std::unexpected(stream.error());
  backend->stream_ = std::move(*stream);
  auto cudnn = make_cudnn(backend->stream());
  if (!cudnn) return std::unexpected(cudnn.error());
  backend->cudnn_ = std::move(*cudnn);
  auto cublas = make_cublas(backend->stream());
  if (!cublas) return std::unexpected(cublas.error());
  backend->cublas_ = std::move(*cublas);
  HPO_GPU_TRY(cublasSetMathMode(
      backend->cublas(), backend->allow_tf32_ ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  return backend;
}

Result<Tensor> CudaBackend::alloc(const TensorDesc& desc) {
  if (desc.layout != 0) {
    return fail("cuda backend: tensor layout " + std::to_string(desc.layout) +
                " is not plain (the CUDA backend has no private layouts)");
  }
  for (int64_t d : desc.dims) {
    if (d <= 0) return fail("cuda backend: tensor dimension " + std::to_string(d) + " is not > 0");
  }
  HPO_GPU_PROPAGATE(make_current());
  const auto count = static_cast<std::size_t>(desc.count());
  void* raw = nullptr;
  if (auto status = check(cudaMalloc(&raw, count * sizeof(float)), "cudaMalloc"); !status) {
    return fail("cuda backend: " + status.error().message + " allocating " +
                std::to_string(count * sizeof(float)) + " bytes on " + name());
  }
  Tensor tensor(desc, static_cast<float*>(raw), count, [](float* p) { (void)cudaFree(p); });
  HPO_GPU_TRY(cudaMemsetAsync(raw, 0, count * sizeof(float), stream()));
  return tensor;
}

void CudaBackend::upload(Tensor& dst, const float* host) {
  must(copy_to_device(dst.data(), host, dst.size() * sizeof(float), stream()), "upload");
}

void CudaBackend::download(const Tensor& src, float* host) {
  must(copy_to_host(host, src.data(), src.size() * sizeof(float), stream()), "download");
}

void CudaBackend::fill(Tensor& t, float value) {
  HPO_GPU_MUST(kernels::fill(t.data(), t.size(), value, stream()));
}

void CudaBackend::synchronize() { must(gpu::synchronize(stream()), "synchronize"); }

void CudaBackend::update(const UpdateRule& r, Tensor& param, const Tensor& grad, Tensor* state1,
                         Tensor* state2) {
  const std::size_t n = param.size();
  float* s1 = state1 != nullptr ? state1->data() : nullptr;
  float* s2 = state2 != nullptr ? state2->data() : nullptr;
  switch (r.kind) {
    case Optimizer::kSgd: {
      kernels::SgdStep step;
      step.lr = r.lr;
      step.weight_decay = r.weight_decay;
      // Without a velocity tensor it is plain SGD, as on the CPU.
      step.momentum = s1 != nullptr ? r.momentum : 0.0f;
      step.nesterov = r.nesterov;
      HPO_GPU_MUST(kernels::sgd_update(param.data(), grad.data(), s1, n, step, stream()));
      return;
    }
    case Optimizer::kAdam:
    case Optimizer::kAdamW: {
      kernels::AdamStep step;
      step.lr = r.lr;
      step.beta1 = r.beta1;
      step.beta2 = r.beta2;
      step.eps = r.eps;
      step.weight_decay = r.weight_decay;
      step.decoupled = r.kind == Optimizer::kAdamW;
      // In double on the host, as the CPU backend does.
      step.bias_correction1 = 1.0f - static_cast<float>(std::pow(double(r.beta1), double(r.step)));
      step.bias_correction2 = 1.0f - static_cast<float>(std::pow(double(r.beta2), double(r.step)));
      HPO_GPU_MUST(kernels::adam_update(param.data(), grad.data(), s1, s2, n, step, stream()));
      return;
    }
    case Optimizer::kRmsProp: {
      kernels::RmspropStep step;
      step.lr = r.lr;
      step.alpha = r.alpha;
      step.eps = r.eps;
      step.weight_decay = r.weight_decay;
      step.momentum = 0.0f;  // UpdateRule has no RMSProp momentum
      HPO_GPU_MUST(
          kernels::rmsprop_update(param.data(), grad.data(), s1, nullptr, n, step, stream()));
      return;
    }
  }
}

}  // namespace hpo::nn::gpu

// The module's one exported entry point (see registration.h): fills in the registration that
// hpo's cuda_registration() hands to the engine.
extern "C" __attribute__((visibility("default"))) void hpo_cuda_module_register(
    hpo::nn::CudaRegistration* out, int abi) {
  if (out == nullptr || abi != hpo::nn::gpu::kModuleAbi) return;
  out->device_count = [] {
    auto count = hpo::nn::gpu::device_count();
    return count ? *count : 0;
  };
  out->create = [](int index) -> hpo::Result<std::unique_ptr<hpo::nn::Backend>> {
    auto backend = hpo::nn::gpu::CudaBackend::create(index);
    if (!backend) return std::unexpected(backend.error());
    return std::unique_ptr<hpo::nn::Backend>(std::move(*backend));
  };
}
