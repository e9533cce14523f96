// The CUDA backend's host side: error conversion, RAII handles, device discovery and the
// registration function. These run on any machine; where a GPU is present the no-GPU checks
// turn into their GPU counterparts.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include "trainer/nn/backend.h"
#include "trainer/nn/cuda/check.h"
#include "trainer/nn/cuda/device.h"
#include "trainer/nn/cuda/handles.h"
#include "trainer/nn/cuda/kernels.h"

namespace gpu = hpo::nn::gpu;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

TEST_CASE("a CUDA, cuDNN or cuBLAS status becomes an Error that names the call") {
  CHECK(gpu::check(cudaSuccess, "cudaMalloc(&p, 4)"));
  CHECK(gpu::check(CUDNN_STATUS_SUCCESS, "cudnnCreate(&h)"));
  CHECK(gpu::check(CUBLAS_STATUS_SUCCESS, "cublasCreate(&h)"));

  auto cuda = gpu::check(cudaErrorMemoryAllocation, "cudaMalloc(&p, 4)");
  REQUIRE_FALSE(cuda);
  CHECK_THAT(cuda.error().message, StartsWith("cudaMalloc: cudaErrorMemoryAllocation ("));

  auto cudnn = gpu::check(CUDNN_STATUS_BAD_PARAM, "cudnnSetTensor4dDescriptor (d, x)");
  REQUIRE_FALSE(cudnn);
  CHECK_THAT(cudnn.error().message, StartsWith("cudnnSetTensor4dDescriptor: CUDNN_STATUS_BAD_PARAM"));

  auto cublas = gpu::check(CUBLAS_STATUS_INVALID_VALUE, "cublasSgemm(h, ...)");
  REQUIRE_FALSE(cublas);
  CHECK_THAT(cublas.error().message, StartsWith("cublasSgemm: CUBLAS_STATUS_INVALID_VALUE ("));
}

namespace {
hpo::Status failing_step() {
  HPO_GPU_TRY(cudnnSetTensor4dDescriptor(nullptr, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 1, 1));
  return {};
}
}  // namespace

TEST_CASE("HPO_GPU_TRY returns the failing call's error to the caller") {
  auto status = failing_step();
  REQUIRE_FALSE(status);
  CHECK_THAT(status.error().message, StartsWith("cudnnSetTensor4dDescriptor: CUDNN_STATUS_BAD_PARAM"));
}

TEST_CASE("cuDNN descriptors are owned: moving one leaves the source empty") {
  // Descriptors are host objects: they need cuDNN's library, not a GPU.
  auto tensor = gpu::make_tensor(2, 3, 4, 5);
  REQUIRE(tensor);
  REQUIRE(static_cast<bool>(*tensor));
  cudnnTensorDescriptor_t raw = tensor->get();
  gpu::TensorDescriptor moved = std::move(*tensor);
  CHECK(moved.get() == raw);
  CHECK_FALSE(static_cast<bool>(*tensor));

  cudnnDataType_t type{};
  int n = 0, c = 0, h = 0, w = 0, ns = 0, cs = 0, hs = 0, ws = 0;
  REQUIRE(cudnnGetTensor4dDescriptor(moved.get(), &type, &n, &c, &h, &w, &ns, &cs, &hs, &ws) ==
          CUDNN_STATUS_SUCCESS);
  CHECK(type == CUDNN_DATA_FLOAT);
  CHECK((n == 2 && c == 3 && h == 4 && w == 5));
  CHECK((ns == 60 && cs == 20 && hs == 5 && ws == 1));  // packed NCHW

  CHECK(gpu::make_filter(4, 3, 5, 5));
  CHECK(gpu::make_conv(2, 2, 1, 1, false));
  CHECK(gpu::make_pool(true, 2, 2, 0, 0, 2, 2));
  CHECK(gpu::make_activation(CUDNN_ACTIVATION_RELU, 0.0));
}

TEST_CASE("a refused descriptor shape is an Error naming the cuDNN call") {
  auto bad = gpu::make_tensor(0, 3, 4, 5);
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, StartsWith("cudnnSetTensor4dDescriptor: CUDNN_STATUS_BAD_PARAM"));
}

TEST_CASE("the GPU's dropout draw is the engine's dropout_keep") {
  for (uint64_t seed : {0ull, 1ull, 42ull, 0xFFFFFFFFFFFFull}) {
    for (uint64_t i = 0; i < 5000; ++i) {
      const float u = gpu::kernels::dropout_uniform(seed, i);
      for (float rate : {0.1f, 0.5f, 0.9f}) {
        if ((u >= rate) != hpo::nn::dropout_keep(seed, i, rate)) {
          FAIL("seed " << seed << " index " << i << " rate " << rate);
        }
      }
    }
  }
}

TEST_CASE("the CUDA backend is refused with the driver's words where there is no GPU") {
  auto count = gpu::device_count();
  auto registration = hpo::nn::cuda_registration();
  if (count) {
    // A GPU machine: the registration sees the same devices, and an index past them is refused.
    CHECK(registration.device_count() == *count);
    auto backend = registration.create(0);
    REQUIRE(backend);
    CHECK((*backend)->name() == "cuda:0");
    auto past = registration.create(*count);
    REQUIRE_FALSE(past);
    CHECK_THAT(past.error().message, StartsWith("no CUDA device cuda:" + std::to_string(*count)));
    return;
  }
  INFO(count.error().message);
  CHECK_THAT(count.error().message, StartsWith("no CUDA device: "));
  CHECK(registration.device_count() == 0);
  auto backend = registration.create(0);
  REQUIRE_FALSE(backend);
  CHECK(backend.error().message == count.error().message);
  CHECK_FALSE(gpu::device_info(0));
}

TEST_CASE("device auto picks the GPU when one is usable and the CPU otherwise") {
  auto backend = hpo::nn::make_backend("auto", 1);
  REQUIRE(backend);
  CHECK((*backend)->name() == (gpu::device_count() ? "cuda:0" : "cpu"));
}
