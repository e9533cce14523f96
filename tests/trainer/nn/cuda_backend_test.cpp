// Every op of the CUDA backend against the CPU (oneDNN) backend on small shapes: the same
// inputs uploaded to both, the outputs downloaded and compared. Without a GPU each test is
// skipped (tests/support/skip.h: ctest reports it so) with the driver's words as the reason.
#include <catch2/catch.hpp>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tests/support/skip.h"
#include "trainer/nn/backend.h"

namespace {

using hpo::nn::Activation;
using hpo::nn::ActivationSpec;
using hpo::nn::Backend;
using hpo::nn::Tensor;
using hpo::nn::TensorDesc;
using Floats = std::vector<float>;

struct Pair {
  std::unique_ptr<Backend> cpu;
  std::unique_ptr<Backend> gpu;
};

// Both backends, or an empty gpu after the skip marker saying why (the caller returns).
Pair backends() {
  Pair p;
  auto created = hpo::nn::cuda_registration().create(0);
  if (!created) {
    HPO_SKIP_NOTE(created.error().message);
    return p;
  }
  p.gpu = std::move(*created);
  p.cpu = hpo::nn::make_cpu_backend(1);
  return p;
}

Floats random_floats(int64_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  Floats out(static_cast<size_t>(n));
  for (float& x : out) x = dist(rng);
  return out;
}

TensorDesc plain(std::vector<int64_t> dims) { return TensorDesc{std::move(dims), 0}; }

Tensor make(Backend& b, const TensorDesc& desc, const Floats& host) {
  auto t = b.alloc(desc);
  REQUIRE(t);
  REQUIRE(static_cast<int64_t>(host.size()) == desc.count());
  b.upload(*t, host.data());
  return std::move(*t);
}

Tensor zeros(Backend& b, const TensorDesc& desc) {
  auto t = b.alloc(desc);
  REQUIRE(t);
  return std::move(*t);
}

Floats read(Backend& b, const Tensor& t) {
  b.synchronize();
  Floats out(static_cast<size_t>(t.desc().count()));
  b.download(t, out.data());
  return out;
}

// |gpu - cpu| <= tol * (1 + |cpu|) element by element; reports the first few that differ.
void expect_close(const Floats& gpu, const Floats& cpu, float tol, const std::string& what) {
  REQUIRE(gpu.size() == cpu.size());
  int reported = 0;
  for (size_t i = 0; i < gpu.size(); ++i) {
    const bool ok = std::fabs(gpu[i] - cpu[i]) <= tol * (1.0f + std::fabs(cpu[i]));
    if (!ok && reported++ < 5) {
      FAIL_CHECK(what << "[" << i << "]: gpu " << gpu[i] << " vs cpu " << cpu[i]);
    }
  }
  CHECK(reported == 0);
}

// One weighted layer (conv or dense) run forward and backward on one backend.
struct WeightedRun {
  Floats dst, diff_src, diff_weights, diff_bias;
};

template <class MakeOp>
WeightedRun run_weighted(Backend& b, const TensorDesc& src_desc, MakeOp make_op, uint32_t seed) {
  auto op = make_op(b);
  REQUIRE(op);
  auto& plan = **op;
  const Floats x = random_floats(src_desc.count(), seed);
  const Floats w = random_floats(plan.weights_desc().count(), seed + 1, -0.5f, 0.5f);
  const Floats bias = random_floats(plan.bias_desc().count(), seed + 2);
  const Floats dy = random_floats(plan.dst_desc().count(), seed + 3);
  Tensor src = make(b, src_desc, x);
  Tensor weights = make(b, plan.weights_desc(), w);
  Tensor bias_t = make(b, plan.bias_desc(), bias);
  Tensor dst = zeros(b, plan.dst_desc());
  plan.forward(src, weights, bias_t, dst);
  Tensor diff_dst = make(b, plan.dst_desc(), dy);
  Tensor diff_src = zeros(b, src_desc);
  Tensor diff_w = zeros(b, plan.weights_desc());
  Tensor diff_b = zeros(b, plan.bias_desc());
  plan.backward(src, weights, dst, diff_dst, &diff_src, diff_w, diff_b);
  return {read(b, dst), read(b, diff_src), read(b, diff_w), read(b, diff_b)};
}

void expect_same(const WeightedRun& gpu, const WeightedRun& cpu, float tol) {
  expect_close(gpu.dst, cpu.dst, tol, "dst");
  expect_close(gpu.diff_src, cpu.diff_src, tol, "diff_src");
  expect_close(gpu.diff_weights, cpu.diff_weights, tol, "diff_weights");
  expect_close(gpu.diff_bias, cpu.diff_bias, tol, "diff_bias");
}

}  // namespace

TEST_CASE("conv forward and backward match the CPU backend (needs a GPU)") {
  auto p = backends();
  if (!p.gpu) return;
  struct Case {
    std::vector<int64_t> src;
    hpo::nn::ConvParams params;
  };
  std::vector<Case> cases;
  hpo::nn::ConvParams same;
  same.filters = 4;
  same.kernel_h = same.kernel_w = 3;
  same.pad = 1;
  same.fused = {Activation::kRelu, 0.0f};
  cases.push_back({{2, 3, 7, 7}, same});
  hpo::nn::ConvParams strided;
  strided.filters = 5;
  strided.kernel_h = 5;
  strided.kernel_w = 3;
  strided.stride = 2;
  strided.fused = {Activation::kTanh, 0.0f};
  cases.push_back({{3, 2, 9, 8}, strided});
  hpo::nn::ConvParams plain_conv;
  plain_conv.filters = 8;
  plain_conv.kernel_h = plain_conv.kernel_w = 5;
  plain_conv.pad = 2;
  cases.push_back({{2, 1, 12, 12}, plain_conv});
  for (const auto& c : cases) {
    INFO("conv " << c.params.kernel_h << "x" << c.params.kernel_w << " stride " << c.params.stride
                 << " pad " << c.params.pad);
    const TensorDesc src = plain(c.src);
    auto make_op = [&](Backend& b) { return b.make_conv(src, c.params); };
    auto gpu = run_weighted(*p.gpu, src, make_op, 7);
    auto cpu = run_weighted(*p.cpu, src, make_op, 7);
    expect_same(gpu, cpu, 1e-4f);
  }
}

TEST_CASE("dense forward and backward match the CPU backend (needs a GPU)") {
  auto p = backends();
  if (!p.gpu) return;
  hpo::nn::DenseParams with_act;
  with_act.units = 5;
  with_act.fused = {Activation::kLeakyRelu, 0.1f};
  hpo::nn::DenseParams no_act;
  no_act.units = 7;
  for (auto [dims, params] : {std::pair{std::vector<int64_t>{3, 2, 2, 2}, with_act},
                              std::pair{std::vector<int64_t>{4, 6}, no_act},
                              std::pair{std::vector<int64_t>{33, 17}, with_act}}) {
    INFO("dense " << params.units << " units on " << dims.size() << "-d input");
    const TensorDesc src = plain(dims);
    auto make_op = [&](Backend& b) { return b.make_dense(src, params); };
    auto gpu = run_weighted(*p.gpu, src, make_op, 11);
    auto cpu = run_weighted(*p.cpu, src, make_op, 11);
    expect_same(gpu, cpu, 1e-4f);
  }
}

TEST_CASE("max and average pooling match the CPU backend (needs a GPU)") {
  auto p = backends();
  if (!p.gpu) return;
  hpo::nn::PoolParams max_pool;  // 2x2 stride 2
  hpo::nn::PoolParams avg_pool;
  avg_pool.mode = hpo::nn::PoolMode::kAvg;
  avg_pool.size = 3;
  avg_pool.stride = 2;
  avg_pool.pad = 1;
  for (const auto& params : {max_pool, avg_pool}) {
    INFO((params.mode == hpo::nn::PoolMode::kMax ? "max" : "avg") << " pooling");
    const TensorDesc src = plain({2, 3, 6, 7});
    const Floats x = random_floats(src.count(), 3);
    Floats dst[2], diff_src[2];
    Backend* both[2] = {p.gpu.get(), p.cpu.get()};
    for (int k = 0; k < 2; ++k) {
      Backend& b = *both[k];
      auto op = b.make_pool(src, params);
      REQUIRE(op);
      Tensor s = make(b, src, x);
      Tensor d = zeros(b, (*op)->dst_desc());
      (*op)->forward(s, d);
      Tensor dd = make(b, (*op)->dst_desc(), random_floats((*op)->dst_desc().count(), 4));
      Tensor ds = zeros(b, src);
      (*op)->backward(dd, ds);
      dst[k] = read(b, d);
      diff_src[k] = read(b, ds);
    }
    CHECK(p.gpu->make_pool(src, params).value()->dst_desc().dims ==
          p.cpu->make_pool(src, params).value()->dst_desc().dims);
    expect_close(dst[0], dst[1], 1e-5f, "dst");
    expect_close(diff_src[0], diff_src[1], 1e-5f, "diff_src");
  }
}

TEST_CASE("every activation matches the CPU backend forward and backward (needs a GPU)") {
  auto p = backends();
  if (!p.gpu) return;
  const TensorDesc src = plain({2, 3, 4, 5});
  const Floats x = random_floats(src.count(), 5, -3.0f, 3.0f);
  const Floats dy = random_floats(src.count(), 6);
  for (ActivationSpec a :
       {ActivationSpec{Activation::kRelu, 0.0f}, ActivationSpec{Activation::kLeakyRelu, 0.1f},
        ActivationSpec{Activation::kTanh, 0.0f}, ActivationSpec{Activation::kSigmoid, 0.0f},
        ActivationSpec{Activation::kElu, 1.0f}}) {
    INFO("activation " << static_cast<int>(a.kind));
    Floats dst[2], diff_src[2];
    Backend* both[2] = {p.gpu.get(), p.cpu.get()};
    for (int k = 0; k < 2; ++k) {
      Backend& b = *both[k];
      auto op = b.make_eltwise(src, a);
      REQUIRE(op);
      Tensor s = make(b, src, x);
      Tensor d = zeros(b, (*op)->dst_desc());
      (*op)->forward(s, d);
      Tensor dd = make(b, src, dy);
      Tensor ds = zeros(b, src);
      (*op)->backward(s, d, dd, ds);
      dst[k] = read(b, d);
      diff_src[k] = read(b, ds);
    }
    expect_close(dst[0], dst[1], 1e-5f, "dst");
    expect_close(diff_src[0], diff_src[1], 1e-5f, "diff_src");
  }
}

TEST_CASE("batch norm in training and inference matches the CPU backend (needs a GPU)") {
  auto p = backends();
  if (!p.gpu) return;
  for (const auto& dims : {std::vector<int64_t>{4, 3, 5, 5}, std::vector<int64_t>{8, 6}}) {
    INFO("batch norm on " << dims.size() << "-d input");
    const TensorDesc src = plain(dims);
    const TensorDesc vec = plain({dims[1]});
    const Floats x = random_floats(src.count(), 8, -2.0f, 3.0f);
    const Floats gamma = random_floats(dims[1], 9, 0.5f, 1.5f);
    const Floats beta = random_floats(dims[1], 10);
    const Floats dy = random_floats(src.count(), 12);
    struct Out {
      Floats train_dst, rmean, rvar, diff_src, diff_gamma, diff_beta, infer_dst;
    } out[2];
    Backend* both[2] = {p.gpu.get(), p.cpu.get()};
    for (int k = 0; k < 2; ++k) {
      Backend& b = *both[k];
      hpo::nn::BatchNormParams params;  // eps 1e-5, momentum 0.9
      auto op = b.make_batch_norm(src, params);
      REQUIRE(op);
      Tensor s = make(b, src, x);
      Tensor g = make(b, vec, gamma);
      Tensor bt = make(b, vec, beta);
      Tensor rmean = zeros(b, vec);
      Tensor rvar = make(b, vec, Floats(static_cast<size_t>(dims[1]), 1.0f));
      Tensor d = zeros(b, (*op)->dst_desc());
      (*op)->forward(s, g, bt, rmean, rvar, d, true);
      Tensor dd = make(b, src, dy);
      Tensor ds = zeros(b, src);
      Tensor dg = zeros(b, vec);
      Tensor db = zeros(b, vec);
      (*op)->backward(s, dd, g, bt, ds, dg, db);
      out[k].train_dst = read(b, d);
      out[k].rmean = read(b, rmean);
      out[k].rvar = read(b, rvar);
      out[k].diff_src = read(b, ds);
      out[k].diff_gamma = read(b, dg);
      out[k].diff_beta = read(b, db);
      (*op)->forward(s, g, bt, rmean, rvar, d, false);
      out[k].infer_dst = read(b, d);
    }
    expect_close(out[0].train_dst, out[1].train_dst, 1e-4f, "training dst");
    expect_close(out[0].rmean, out[1].rmean, 1e-5f, "running mean");
    expect_close(out[0].rvar, out[1].rvar, 1e-4f, "running variance (unbiased)");
    expect_close(out[0].diff_src, out[1].diff_src, 1e-4f, "diff_src");
    expect_close(out[0].diff_gamma, out[1].diff_gamma, 1e-4f, "diff_gamma");
    expect_close(out[0].diff_beta, out[1].diff_beta, 1e-4f, "diff_beta");
    expect_close(out[0].infer_dst, out[1].infer_dst, 1e-4f, "inference dst");
  }
}

TEST_CASE("dropout draws the CPU backend's mask for the same seed (needs a GPU)") {
  auto p = backends();
  if (!p.gpu) return;
  const TensorDesc src = plain({4, 50});
  const Floats x = random_floats(src.count(), 13);
  const Floats dy = random_floats(src.count(), 14);
  Floats dst[2], diff_src[2], eval_dst[2];
  Backend* both[2] = {p.gpu.get(), p.cpu.get()};
  for (int k = 0; k < 2; ++k) {
    Backend& b = *both[k];
    auto op = b.make_dropout(src, 0.3f);
    REQUIRE(op);
    Tensor s = make(b, src, x);
    Tensor d = zeros(b, src);
    (*op)->forward(s, d, 123, true);
    Tensor dd = make(b, src, dy);
    Tensor ds = zeros(b, src);
    (*op)->backward(dd, ds);
    dst[k] = read(b, d);
    diff_src[k] = read(b, ds);
    (*op)->forward(s, d, 123, false);
    eval_dst[k] = read(b, d);
  }
  expect_close(dst[0], dst[1], 1e-6f, "dst");
  expect_close(diff_src[0], diff_src[1], 1e-6f, "diff_src");
  CHECK(eval_dst[0] == x);
  int dropped = 0;
  for (float v : dst[0]) dropped += v == 0.0f;
  CHECK(dropped > 20);  // about 60 of 200
  CHECK(dropped < 100);
}

TEST_CASE("reshape copies a plain tensor both ways (needs a GPU)") {
  auto p = backends();
  if (!p.gpu) return;
  Backend& b = *p.gpu;
  const TensorDesc src = plain({2, 3, 2, 2});
  auto op = b.make_reshape(src, {2, 12});
  REQUIRE(op);
  CHECK((*op)->dst_desc() == plain({2, 12}));
  const Floats x = random_floats(24, 15);
  Tensor s = make(b, src, x);
  Tensor d = zeros(b, (*op)->dst_desc());
  (*op)->forward(s, d);
  CHECK(read(b, d) == x);
  Tensor back = zeros(b, src);
  (*op)->backward(d, back);
  CHECK(read(b, back) == x);
  CHECK_FALSE(b.make_reshape(src, {5, 5}));
}

TEST_CASE("softmax cross-entropy loss, accuracy and gradient match the CPU backend (needs a GPU)") {
  auto p = backends();
  if (!p.gpu) return;
  const TensorDesc logits = plain({6, 10});
  const TensorDesc labels_desc = plain({6});
  const Floats x = random_floats(logits.count(), 16, -4.0f, 4.0f);
  const Floats labels = {3, 0, 9, 9, 1, 5};  // rows 4 and 5 are padding (valid = 4)
  double loss[2];
  int64_t correct[2];
  Floats grad[2];
  Backend* both[2] = {p.gpu.get(), p.cpu.get()};
  for (int k = 0; k < 2; ++k) {
    Backend& b = *both[k];
    auto op = b.make_softmax_xent(logits);
    REQUIRE(op);
    Tensor l = make(b, logits, x);
    Tensor y = make(b, labels_desc, labels);
    correct[k] = 100;  // forward adds to it
    loss[k] = (*op)->forward(l, y, 4, &correct[k]);
    Tensor g = make(b, logits, Floats(60, 7.0f));
    (*op)->backward(y, g);
    grad[k] = read(b, g);
  }
  CHECK(loss[0] == Approx(loss[1]).epsilon(1e-5));
  CHECK(loss[0] > 0.0);
  CHECK(correct[0] == correct[1]);
  expect_close(grad[0], grad[1], 1e-5f, "diff_logits");
  for (size_t i = 40; i < 60; ++i) CHECK(grad[0][i] == 0.0f);  // padding rows
}

TEST_CASE("every solver update matches the CPU backend over three steps (needs a GPU)") {
  auto p = backends();
  if (!p.gpu) return;
  using hpo::nn::Optimizer;
  using hpo::nn::UpdateRule;
  std::vector<std::pair<std::string, UpdateRule>> rules;
  UpdateRule sgd;
  sgd.lr = 0.1f;
  rules.push_back({"sgd", sgd});
  UpdateRule momentum = sgd;
  momentum.momentum = 0.9f;
  momentum.weight_decay = 0.01f;
  rules.push_back({"sgd momentum + weight decay", momentum});
  UpdateRule nesterov = momentum;
  nesterov.nesterov = true;
  rules.push_back({"sgd nesterov", nesterov});
  UpdateRule adam;
  adam.kind = Optimizer::kAdam;
  adam.lr = 0.01f;
  adam.weight_decay = 0.01f;
  rules.push_back({"adam", adam});
  UpdateRule adamw = adam;
  adamw.kind = Optimizer::kAdamW;
  adamw.weight_decay = 0.1f;
  rules.push_back({"adamw", adamw});
  UpdateRule rmsprop;
  rmsprop.kind = Optimizer::kRmsProp;
  rmsprop.lr = 0.01f;
  rmsprop.weight_decay = 0.001f;
  rules.push_back({"rmsprop", rmsprop});

  const TensorDesc desc = plain({3, 37});
  const Floats w0 = random_floats(desc.count(), 17);
  for (auto [name, rule] : rules) {
    INFO(name);
    const bool stateless = rule.kind == Optimizer::kSgd && rule.momentum == 0.0f;
    const bool two_states = rule.kind == Optimizer::kAdam || rule.kind == Optimizer::kAdamW;
    Floats w[2], s1[2];
    Backend* both[2] = {p.gpu.get(), p.cpu.get()};
    for (int k = 0; k < 2; ++k) {
      Backend& b = *both[k];
      Tensor param = make(b, desc, w0);
      Tensor state1 = zeros(b, desc);
      Tensor state2 = zeros(b, desc);
      for (int step = 1; step <= 3; ++step) {
        rule.step = step;
        Tensor grad = make(b, desc, random_floats(desc.count(), 100 + uint32_t(step)));
        b.update(rule, param, grad, stateless ? nullptr : &state1, two_states ? &state2 : nullptr);
      }
      w[k] = read(b, param);
      s1[k] = read(b, state1);
    }
    expect_close(w[0], w[1], 1e-5f, "param");
    expect_close(s1[0], s1[1], 1e-5f, "state1");
    CHECK(w[0] != w0);
  }
}

TEST_CASE("a fill reaches every element and alloc zeroes (needs a GPU)") {
  auto p = backends();
  if (!p.gpu) return;
  Backend& b = *p.gpu;
  const TensorDesc desc = plain({1000, 3});
  Tensor t = zeros(b, desc);
  CHECK(read(b, t) == Floats(3000, 0.0f));
  b.fill(t, 2.5f);
  CHECK(read(b, t) == Floats(3000, 2.5f));
  CHECK_FALSE(b.alloc(TensorDesc{{2, 2}, 1}));
  CHECK_FALSE(b.alloc(plain({2, 0})));
}
