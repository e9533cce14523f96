// The CUDA backend's host side: error conversion, RAII handles, device discovery and the
// registration function. These run on any machine; where a GPU is present the no-GPU checks
// turn into their GPU counterparts.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "trainer/nn/backend.h"
#include "trainer/nn/cuda/check.h"
#include "trainer/nn/cuda/dense_gemm.h"
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
  CHECK_THAT(cudnn.error().message,
             StartsWith("cudnnSetTensor4dDescriptor: CUDNN_STATUS_BAD_PARAM"));

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
  CHECK_THAT(status.error().message,
             StartsWith("cudnnSetTensor4dDescriptor: CUDNN_STATUS_BAD_PARAM"));
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

namespace {

std::vector<float> random_floats(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> out(n);
  for (float& x : out) x = dist(rng);
  return out;
}

bool close(float a, float b, float tol) { return std::fabs(a - b) <= tol * (1.0f + std::fabs(b)); }

}  // namespace

// The kernels call these inline functions per element, so this checks the GPU's maths against
// the CPU backend here; only the launch itself needs a GPU (cuda_backend_test.cpp).
TEST_CASE("the GPU kernels' activation maths matches the CPU backend forward and backward") {
  auto cpu = hpo::nn::make_cpu_backend(1);
  const hpo::nn::TensorDesc desc{{2, 3, 4, 5}, 0};
  const auto x = random_floats(120, 1, -3.0f, 3.0f);
  const auto dy = random_floats(120, 2, -1.0f, 1.0f);
  using hpo::nn::Activation;
  for (hpo::nn::ActivationSpec a : {hpo::nn::ActivationSpec{Activation::kRelu, 0.0f},
                                    {Activation::kLeakyRelu, 0.1f},
                                    {Activation::kTanh, 0.0f},
                                    {Activation::kSigmoid, 0.0f},
                                    {Activation::kElu, 1.0f}}) {
    INFO("activation " << static_cast<int>(a.kind));
    auto op = cpu->make_eltwise(desc, a);
    REQUIRE(op);
    auto src = cpu->alloc(desc), dst = cpu->alloc(desc), diff_dst = cpu->alloc(desc),
         diff_src = cpu->alloc(desc);
    REQUIRE((src && dst && diff_dst && diff_src));
    cpu->upload(*src, x.data());
    cpu->upload(*diff_dst, dy.data());
    (*op)->forward(*src, *dst);
    (*op)->backward(*src, *dst, *diff_dst, *diff_src);
    std::vector<float> y(120), dx(120);
    cpu->download(*dst, y.data());
    cpu->download(*diff_src, dx.data());
    const auto act = static_cast<gpu::kernels::Act>(static_cast<int>(a.kind));
    int wrong = 0;
    for (size_t i = 0; i < 120; ++i) {
      const float gy = gpu::kernels::activate(act, a.alpha, x[i]);
      const float gdx = dy[i] * gpu::kernels::activation_slope(act, a.alpha, gy);
      if (!close(gy, y[i], 1e-5f) || !close(gdx, dx[i], 1e-5f)) {
        if (wrong++ < 3)
          FAIL_CHECK("x " << x[i] << ": y " << gy << " vs " << y[i] << ", dx " << gdx << " vs "
                          << dx[i]);
      }
    }
    CHECK(wrong == 0);
  }
}

TEST_CASE("the GPU kernels' solver maths matches the CPU backend over three steps") {
  using hpo::nn::Optimizer;
  auto cpu = hpo::nn::make_cpu_backend(1);
  const hpo::nn::TensorDesc desc{{50}, 0};
  const auto w0 = random_floats(50, 3, -1.0f, 1.0f);
  std::vector<hpo::nn::UpdateRule> rules(6);
  rules[0].lr = 0.1f;  // sgd
  rules[1] = rules[0], rules[1].momentum = 0.9f, rules[1].weight_decay = 0.01f;
  rules[2] = rules[1], rules[2].nesterov = true;
  rules[3].kind = Optimizer::kAdam, rules[3].lr = 0.01f, rules[3].weight_decay = 0.01f;
  rules[4] = rules[3], rules[4].kind = Optimizer::kAdamW, rules[4].weight_decay = 0.1f;
  rules[5].kind = Optimizer::kRmsProp, rules[5].lr = 0.01f, rules[5].weight_decay = 0.001f;
  for (size_t r = 0; r < rules.size(); ++r) {
    INFO("rule " << r);
    auto rule = rules[r];
    const bool stateless = rule.kind == Optimizer::kSgd && rule.momentum == 0.0f;
    const bool adam = rule.kind == Optimizer::kAdam || rule.kind == Optimizer::kAdamW;
    auto param = cpu->alloc(desc), s1 = cpu->alloc(desc), s2 = cpu->alloc(desc);
    REQUIRE((param && s1 && s2));
    cpu->upload(*param, w0.data());
    std::vector<float> w = w0, m(50, 0.0f), v(50, 0.0f);
    for (int step = 1; step <= 3; ++step) {
      rule.step = step;
      const auto g = random_floats(50, 10 + uint32_t(step), -1.0f, 1.0f);
      auto grad = cpu->alloc(desc);
      REQUIRE(grad);
      cpu->upload(*grad, g.data());
      cpu->update(rule, *param, *grad, stateless ? nullptr : &*s1, adam ? &*s2 : nullptr);
      for (size_t i = 0; i < 50; ++i) {
        if (rule.kind == Optimizer::kSgd) {
          gpu::kernels::SgdStep s;
          s.lr = rule.lr, s.momentum = rule.momentum, s.weight_decay = rule.weight_decay;
          s.nesterov = rule.nesterov;
          gpu::kernels::sgd_element(w[i], g[i], &m[i], s);
        } else if (adam) {
          gpu::kernels::AdamStep s;
          s.lr = rule.lr, s.beta1 = rule.beta1, s.beta2 = rule.beta2, s.eps = rule.eps;
          s.weight_decay = rule.weight_decay, s.decoupled = rule.kind == Optimizer::kAdamW;
          s.bias_correction1 = 1.0f - float(std::pow(double(rule.beta1), double(step)));
          s.bias_correction2 = 1.0f - float(std::pow(double(rule.beta2), double(step)));
          gpu::kernels::adam_element(w[i], g[i], m[i], v[i], s);
        } else {
          gpu::kernels::RmspropStep s;
          s.lr = rule.lr, s.alpha = rule.alpha, s.eps = rule.eps;
          s.weight_decay = rule.weight_decay;
          gpu::kernels::rmsprop_element(w[i], g[i], m[i], nullptr, s);
        }
      }
    }
    std::vector<float> cpu_w(50), cpu_s1(50);
    cpu->download(*param, cpu_w.data());
    cpu->download(*s1, cpu_s1.data());
    int wrong = 0;
    for (size_t i = 0; i < 50; ++i) {
      if (!close(w[i], cpu_w[i], 1e-6f) || (!stateless && !close(m[i], cpu_s1[i], 1e-6f))) {
        if (wrong++ < 3) FAIL_CHECK("[" << i << "] w " << w[i] << " vs " << cpu_w[i]);
      }
    }
    CHECK(wrong == 0);
    CHECK(w != w0);
  }
}

TEST_CASE("the GPU kernels' softmax cross-entropy row maths matches the CPU backend") {
  auto cpu = hpo::nn::make_cpu_backend(1);
  const int rows = 6, classes = 10, valid = 4;
  const hpo::nn::TensorDesc logits_desc{{rows, classes}, 0}, labels_desc{{rows}, 0};
  auto x = random_floats(rows * classes, 4, -4.0f, 4.0f);
  x[2 * classes + 7] = x[2 * classes + 3] = 9.0f;  // a tie in row 2: the first (3) is predicted
  const std::vector<float> labels = {3, 0, 7, 9, 1, 5};
  auto op = cpu->make_softmax_xent(logits_desc);
  REQUIRE(op);
  auto logits = cpu->alloc(logits_desc), label_t = cpu->alloc(labels_desc),
       diff = cpu->alloc(logits_desc);
  REQUIRE((logits && label_t && diff));
  cpu->upload(*logits, x.data());
  cpu->upload(*label_t, labels.data());
  int64_t cpu_correct = 0;
  const double cpu_loss = (*op)->forward(*logits, *label_t, valid, &cpu_correct);
  (*op)->backward(*label_t, *diff);
  std::vector<float> cpu_grad(rows * classes);
  cpu->download(*diff, cpu_grad.data());

  double loss = 0.0;
  int64_t correct = 0;
  std::vector<float> grad(rows * classes, 0.0f);  // padding rows stay 0
  for (int r = 0; r < valid; ++r) {
    float c = 0.0f;
    loss += gpu::kernels::softmax_cross_entropy_row(&x[r * classes], labels[r], classes,
                                                    1.0f / valid, &grad[r * classes], &c);
    correct += static_cast<int64_t>(c);
  }
  CHECK(loss == Approx(cpu_loss).epsilon(1e-5));
  CHECK(correct == cpu_correct);
  for (size_t i = 0; i < grad.size(); ++i) {
    INFO("gradient [" << i << "]");
    CHECK(close(grad[i], cpu_grad[i], 1e-6f));
  }
  float c = 1.0f;
  CHECK(std::isnan(
      gpu::kernels::softmax_cross_entropy_row(&x[0], 10.0f, classes, 1.0f, nullptr, &c)));
  CHECK(c == 0.0f);
}

TEST_CASE("the CUDA plans' cuDNN descriptors give the CPU backend's conv and pooling shapes") {
  // The descriptor maths runs on the host: this checks the argument order of the descriptor
  // setters (pad, stride, filter K/C/R/S) that the GPU plans use.
  auto cpu = hpo::nn::make_cpu_backend(1);
  struct ConvCase {
    std::vector<int64_t> src;
    int64_t filters, kh, kw, stride, pad;
  };
  for (const auto& c :
       {ConvCase{{2, 3, 28, 28}, 8, 5, 5, 1, 2}, ConvCase{{1, 2, 9, 8}, 4, 5, 3, 2, 0},
        ConvCase{{3, 1, 7, 11}, 2, 3, 3, 3, 1}}) {
    hpo::nn::ConvParams p;
    p.filters = c.filters, p.kernel_h = c.kh, p.kernel_w = c.kw, p.stride = c.stride, p.pad = c.pad;
    auto op = cpu->make_conv({c.src, 0}, p);
    REQUIRE(op);
    auto x = gpu::make_tensor(int(c.src[0]), int(c.src[1]), int(c.src[2]), int(c.src[3]));
    auto w = gpu::make_filter(int(c.filters), int(c.src[1]), int(c.kh), int(c.kw));
    auto conv = gpu::make_conv(int(c.pad), int(c.pad), int(c.stride), int(c.stride), false);
    REQUIRE((x && w && conv));
    int n = 0, k = 0, h = 0, wd = 0;
    REQUIRE(cudnnGetConvolution2dForwardOutputDim(conv->get(), x->get(), w->get(), &n, &k, &h,
                                                  &wd) == CUDNN_STATUS_SUCCESS);
    CHECK(std::vector<int64_t>{n, k, h, wd} == (*op)->dst_desc().dims);
  }
  for (bool max : {true, false}) {
    hpo::nn::PoolParams p;
    p.mode = max ? hpo::nn::PoolMode::kMax : hpo::nn::PoolMode::kAvg;
    p.size = 3, p.stride = 2, p.pad = 1;
    const std::vector<int64_t> src = {2, 4, 13, 10};
    auto op = cpu->make_pool({src, 0}, p);
    REQUIRE(op);
    auto x = gpu::make_tensor(2, 4, 13, 10);
    auto pool = gpu::make_pool(max, 3, 3, 1, 1, 2, 2);
    REQUIRE((x && pool));
    int n = 0, c = 0, h = 0, w = 0;
    REQUIRE(cudnnGetPooling2dForwardOutputDim(pool->get(), x->get(), &n, &c, &h, &w) ==
            CUDNN_STATUS_SUCCESS);
    CHECK(std::vector<int64_t>{n, c, h, w} == (*op)->dst_desc().dims);
  }
}

namespace {

// BLAS's column-major sgemm (alpha 1, beta 0), as cuBLAS reads its arguments.
void reference_gemm(const gpu::Gemm& g, const float* a, const float* b, float* c) {
  for (int i = 0; i < g.m; ++i) {
    for (int j = 0; j < g.n; ++j) {
      double sum = 0.0;
      for (int p = 0; p < g.k; ++p) {
        const float av = g.transpose_a ? a[p + i * g.lda] : a[i + p * g.lda];
        const float bv = g.transpose_b ? b[j + p * g.ldb] : b[p + j * g.ldb];
        sum += double(av) * double(bv);
      }
      c[i + j * g.ldc] = float(sum);
    }
  }
}

}  // namespace

TEST_CASE("the dense layer's cuBLAS products, run by a reference GEMM, give the CPU backend's") {
  auto cpu = hpo::nn::make_cpu_backend(1);
  const int batch = 5, inputs = 7, units = 3;
  hpo::nn::DenseParams params;
  params.units = units;
  const hpo::nn::TensorDesc src_desc{{batch, inputs}, 0};
  auto op = cpu->make_dense(src_desc, params);
  REQUIRE(op);
  const auto x = random_floats(batch * inputs, 20, -1.0f, 1.0f);
  const auto w = random_floats(units * inputs, 21, -1.0f, 1.0f);
  const auto dy = random_floats(batch * units, 22, -1.0f, 1.0f);
  auto src = cpu->alloc(src_desc), weights = cpu->alloc((*op)->weights_desc()),
       bias = cpu->alloc((*op)->bias_desc()), dst = cpu->alloc((*op)->dst_desc()),
       diff_dst = cpu->alloc((*op)->dst_desc()), diff_src = cpu->alloc(src_desc),
       diff_w = cpu->alloc((*op)->weights_desc()), diff_b = cpu->alloc((*op)->bias_desc());
  REQUIRE((src && weights && bias && dst && diff_dst && diff_src && diff_w && diff_b));
  cpu->upload(*src, x.data());
  cpu->upload(*weights, w.data());  // bias stays 0: only the products are compared
  cpu->upload(*diff_dst, dy.data());
  (*op)->forward(*src, *weights, *bias, *dst);
  (*op)->backward(*src, *weights, *dst, *diff_dst, &*diff_src, *diff_w, *diff_b);
  std::vector<float> cpu_y(batch * units), cpu_dx(batch * inputs), cpu_dw(units * inputs);
  cpu->download(*dst, cpu_y.data());
  cpu->download(*diff_src, cpu_dx.data());
  cpu->download(*diff_w, cpu_dw.data());

  std::vector<float> y(cpu_y.size()), dx(cpu_dx.size()), dw(cpu_dw.size());
  reference_gemm(gpu::dense_forward_gemm(batch, inputs, units), w.data(), x.data(), y.data());
  reference_gemm(gpu::dense_weights_gemm(batch, inputs, units), x.data(), dy.data(), dw.data());
  reference_gemm(gpu::dense_data_gemm(batch, inputs, units), w.data(), dy.data(), dx.data());
  for (size_t i = 0; i < y.size(); ++i) CHECK(close(y[i], cpu_y[i], 1e-5f));
  for (size_t i = 0; i < dw.size(); ++i) CHECK(close(dw[i], cpu_dw[i], 1e-5f));
  for (size_t i = 0; i < dx.size(); ++i) CHECK(close(dx[i], cpu_dx[i], 1e-5f));
}
