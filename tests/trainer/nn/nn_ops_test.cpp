// Each CPU op against a plain reference, and its gradients against finite differences.
#include <algorithm>
#include <functional>

#include "tests/trainer/nn/nn_test_util.h"
#include "trainer/nn/backend.h"

namespace hpo::nn::test {
namespace {

float act_ref(const ActivationSpec& a, float x) {
  switch (a.kind) {
    case Activation::kRelu:
      return x > 0 ? x : 0;
    case Activation::kLeakyRelu:
      return x > 0 ? x : a.alpha * x;
    case Activation::kTanh:
      return std::tanh(x);
    case Activation::kSigmoid:
      return 1.0f / (1.0f + std::exp(-x));
    case Activation::kElu:
      return x > 0 ? x : a.alpha * (std::exp(x) - 1);
    case Activation::kNone:
      break;
  }
  return x;
}

std::vector<float> conv_ref(const std::vector<float>& x, const std::vector<float>& w,
                            const std::vector<float>& b, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t O, int64_t K, int64_t S, int64_t P, ActivationSpec act) {
  int64_t OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
  std::vector<float> y(size_t(N * O * OH * OW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double s = b[size_t(o)];
          for (int64_t c = 0; c < C; ++c)
            for (int64_t kh = 0; kh < K; ++kh)
              for (int64_t kw = 0; kw < K; ++kw) {
                int64_t ih = oh * S - P + kh, iw = ow * S - P + kw;
                if (ih < 0 || iw < 0 || ih >= H || iw >= W) continue;
                s += double(x[size_t(((n * C + c) * H + ih) * W + iw)]) *
                     w[size_t(((o * C + c) * K + kh) * K + kw)];
              }
          y[size_t(((n * O + o) * OH + oh) * OW + ow)] = act_ref(act, float(s));
        }
  return y;
}

// Checks d(sum(out * R))/d(in[i]) for a few i against central differences.
void check_gradient(const std::string& what, std::vector<float> in,
                    const std::function<std::vector<float>(const std::vector<float>&)>& run,
                    const std::vector<float>& R, const std::vector<float>& analytic,
                    double h = 2e-3, double tol = 2e-2) {
  REQUIRE(analytic.size() == in.size());
  std::mt19937 rng(7);
  for (int k = 0; k < 12; ++k) {
    size_t i = rng() % in.size();
    float keep = in[i];
    in[i] = keep + float(h);
    double up = dot(run(in), R);
    in[i] = keep - float(h);
    double down = dot(run(in), R);
    in[i] = keep;
    double numeric = (up - down) / (2 * h);
    INFO(what << " element " << i << ": analytic " << analytic[i] << ", numeric " << numeric);
    REQUIRE(std::abs(numeric - analytic[i]) <= tol * std::max(1.0, std::abs(numeric)));
  }
}

struct Fixture {
  std::unique_ptr<Backend> b = make_cpu_backend(1);
};

TEST_CASE("a convolution with a fused activation matches the reference and its gradients",
          "[nn][ops]") {
  Fixture f;
  Backend& b = *f.b;
  const int64_t N = 2, C = 3, H = 7, W = 6, O = 4, K = 3, S = 2, P = 1;
  for (ActivationSpec act :
       {ActivationSpec{Activation::kNone, 0}, ActivationSpec{Activation::kRelu, 0},
        ActivationSpec{Activation::kTanh, 0}}) {
    INFO("activation " << int(act.kind));
    auto op = b.make_conv({{N, C, H, W}, 0}, ConvParams{O, K, K, S, P, act});
    REQUIRE(op.has_value());
    auto xs = random_vector(size_t(N * C * H * W), 1);
    auto ws = random_vector(size_t(O * C * K * K), 2, -0.5f, 0.5f);
    auto bs = random_vector(size_t(O), 3);
    auto forward = [&](const std::vector<float>& x, const std::vector<float>& w,
                       const std::vector<float>& bias) {
      Tensor tx = tensor(b, {{N, C, H, W}, 0}, x), tw = tensor(b, (*op)->weights_desc(), w),
             tb = tensor(b, (*op)->bias_desc(), bias), ty = zeros(b, (*op)->dst_desc());
      (*op)->forward(tx, tw, tb, ty);
      return host(b, ty);
    };
    auto y = forward(xs, ws, bs);
    require_close(y, conv_ref(xs, ws, bs, N, C, H, W, O, K, S, P, act));

    auto R = random_vector(y.size(), 4);
    Tensor tx = tensor(b, {{N, C, H, W}, 0}, xs), tw = tensor(b, (*op)->weights_desc(), ws),
           tb = tensor(b, (*op)->bias_desc(), bs), ty = zeros(b, (*op)->dst_desc());
    (*op)->forward(tx, tw, tb, ty);
    Tensor dy = tensor(b, (*op)->dst_desc(), R), dx = zeros(b, {{N, C, H, W}, 0}),
           dw = zeros(b, (*op)->weights_desc()), db = zeros(b, (*op)->bias_desc());
    (*op)->backward(tx, tw, ty, dy, &dx, dw, db);
    check_gradient(
        "conv src", xs, [&](auto& x) { return forward(x, ws, bs); }, R, host(b, dx));
    check_gradient(
        "conv weights", ws, [&](auto& w) { return forward(xs, w, bs); }, R, host(b, dw));
    check_gradient(
        "conv bias", bs, [&](auto& v) { return forward(xs, ws, v); }, R, host(b, db));
  }
}

TEST_CASE("a dense layer matches x W^T + b and its gradients, also on a 4-d input", "[nn][ops]") {
  Fixture f;
  Backend& b = *f.b;
  for (auto in_dims : {std::vector<int64_t>{3, 5}, std::vector<int64_t>{3, 2, 2, 2}}) {
    TensorDesc in{in_dims, 0};
    const int64_t N = in_dims[0], Kf = in.count() / N, U = 4;
    ActivationSpec act{Activation::kSigmoid, 0};
    auto op = b.make_dense(in, DenseParams{U, act});
    REQUIRE(op.has_value());
    auto xs = random_vector(size_t(in.count()), 11);
    auto ws = random_vector(size_t(U * Kf), 12);
    auto bs = random_vector(size_t(U), 13);
    auto forward = [&](const std::vector<float>& x, const std::vector<float>& w,
                       const std::vector<float>& bias) {
      Tensor tx = tensor(b, in, x), tw = tensor(b, (*op)->weights_desc(), w),
             tb = tensor(b, (*op)->bias_desc(), bias), ty = zeros(b, (*op)->dst_desc());
      (*op)->forward(tx, tw, tb, ty);
      return host(b, ty);
    };
    std::vector<float> want(size_t(N * U));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t u = 0; u < U; ++u) {
        double s = bs[size_t(u)];
        for (int64_t k = 0; k < Kf; ++k)
          s += double(xs[size_t(n * Kf + k)]) * ws[size_t(u * Kf + k)];
        want[size_t(n * U + u)] = act_ref(act, float(s));
      }
    auto y = forward(xs, ws, bs);
    require_close(y, want);
    auto R = random_vector(y.size(), 14);
    Tensor tx = tensor(b, in, xs), tw = tensor(b, (*op)->weights_desc(), ws),
           tb = tensor(b, (*op)->bias_desc(), bs), ty = zeros(b, (*op)->dst_desc());
    (*op)->forward(tx, tw, tb, ty);
    Tensor dy = tensor(b, (*op)->dst_desc(), R), dx = zeros(b, in),
           dw = zeros(b, (*op)->weights_desc()), db = zeros(b, (*op)->bias_desc());
    (*op)->backward(tx, tw, ty, dy, &dx, dw, db);
    check_gradient(
        "dense src", xs, [&](auto& x) { return forward(x, ws, bs); }, R, host(b, dx));
    check_gradient(
        "dense weights", ws, [&](auto& w) { return forward(xs, w, bs); }, R, host(b, dw));
    check_gradient(
        "dense bias", bs, [&](auto& v) { return forward(xs, ws, v); }, R, host(b, db));
  }
}

TEST_CASE("max and average pooling match the reference and route gradients", "[nn][ops]") {
  Fixture f;
  Backend& b = *f.b;
  const int64_t N = 2, C = 3, H = 5, W = 5;
  TensorDesc in{{N, C, H, W}, 0};
  for (PoolMode mode : {PoolMode::kMax, PoolMode::kAvg}) {
    PoolParams p{mode, 2, 2, 0};
    auto op = b.make_pool(in, p);
    REQUIRE(op.has_value());
    REQUIRE((*op)->dst_desc().dims == std::vector<int64_t>{N, C, 2, 2});
    auto xs = random_vector(size_t(in.count()), 21);
    auto forward = [&](const std::vector<float>& x) {
      Tensor tx = tensor(b, in, x), ty = zeros(b, (*op)->dst_desc());
      (*op)->forward(tx, ty);
      return host(b, ty);
    };
    std::vector<float> want;
    for (int64_t nc = 0; nc < N * C; ++nc)
      for (int64_t oh = 0; oh < 2; ++oh)
        for (int64_t ow = 0; ow < 2; ++ow) {
          float m = -1e30f;
          double s = 0;
          for (int64_t kh = 0; kh < 2; ++kh)
            for (int64_t kw = 0; kw < 2; ++kw) {
              float v = xs[size_t((nc * H + oh * 2 + kh) * W + ow * 2 + kw)];
              m = std::max(m, v);
              s += v;
            }
          want.push_back(mode == PoolMode::kMax ? m : float(s / 4));
        }
    require_close(forward(xs), want);
    auto R = random_vector(want.size(), 22);
    Tensor tx = tensor(b, in, xs), ty = zeros(b, (*op)->dst_desc());
    (*op)->forward(tx, ty);
    Tensor dy = tensor(b, (*op)->dst_desc(), R), dx = zeros(b, in);
    (*op)->backward(dy, dx);
    check_gradient("pool src", xs, forward, R, host(b, dx), 1e-3);
  }
}

TEST_CASE("every activation matches its formula and its derivative", "[nn][ops]") {
  Fixture f;
  Backend& b = *f.b;
  TensorDesc in{{2, 3, 4, 4}, 0};
  for (ActivationSpec a :
       {ActivationSpec{Activation::kRelu, 0}, ActivationSpec{Activation::kLeakyRelu, 0.1f},
        ActivationSpec{Activation::kTanh, 0}, ActivationSpec{Activation::kSigmoid, 0},
        ActivationSpec{Activation::kElu, 1.0f}}) {
    INFO("activation " << int(a.kind));
    auto op = b.make_eltwise(in, a);
    REQUIRE(op.has_value());
    auto xs = random_vector(size_t(in.count()), 31, -2, 2);
    auto forward = [&](const std::vector<float>& x) {
      Tensor tx = tensor(b, in, x), ty = zeros(b, in);
      (*op)->forward(tx, ty);
      return host(b, ty);
    };
    std::vector<float> want;
    for (float x : xs) want.push_back(act_ref(a, x));
    require_close(forward(xs), want);
    auto R = random_vector(xs.size(), 32);
    Tensor tx = tensor(b, in, xs), ty = zeros(b, in), dy = tensor(b, in, R), dx = zeros(b, in);
    (*op)->forward(tx, ty);
    (*op)->backward(tx, ty, dy, dx);
    check_gradient("eltwise", xs, forward, R, host(b, dx), 1e-3);
  }
}

TEST_CASE(
    "batch norm normalizes per channel, tracks running statistics and has the right "
    "gradients",
    "[nn][ops]") {
  Fixture f;
  Backend& b = *f.b;
  const int64_t N = 4, C = 3, H = 2, W = 2;
  TensorDesc in{{N, C, H, W}, 0}, ch{{C}, 0};
  auto op = b.make_batch_norm(in, BatchNormParams{1e-5f, 0.9f});
  REQUIRE(op.has_value());
  auto xs = random_vector(size_t(in.count()), 41, -2, 3);
  auto gs = random_vector(size_t(C), 42, 0.5f, 1.5f);
  auto bs = random_vector(size_t(C), 43);
  auto forward = [&](const std::vector<float>& x, const std::vector<float>& g,
                     const std::vector<float>& be) {
    Tensor tx = tensor(b, in, x), tg = tensor(b, ch, g), tb = tensor(b, ch, be), rm = zeros(b, ch),
           rv = tensor(b, ch, std::vector<float>(size_t(C), 1.0f)), ty = zeros(b, in);
    (*op)->forward(tx, tg, tb, rm, rv, ty, true);
    return host(b, ty);
  };
  // Reference: per channel over N, H, W with the biased variance.
  std::vector<float> want(xs.size()), mean(static_cast<size_t>(C)), var(static_cast<size_t>(C));
  const int64_t M = N * H * W;
  for (int64_t c = 0; c < C; ++c) {
    double s = 0, q = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < H * W; ++i) s += xs[size_t((n * C + c) * H * W + i)];
    double m = s / double(M);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < H * W; ++i) {
        double d = xs[size_t((n * C + c) * H * W + i)] - m;
        q += d * d;
      }
    mean[size_t(c)] = float(m), var[size_t(c)] = float(q / double(M));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < H * W; ++i) {
        size_t k = size_t((n * C + c) * H * W + i);
        want[k] =
            float((xs[k] - m) / std::sqrt(q / double(M) + 1e-5) * gs[size_t(c)] + bs[size_t(c)]);
      }
  }
  require_close(forward(xs, gs, bs), want);

  Tensor tx = tensor(b, in, xs), tg = tensor(b, ch, gs), tb = tensor(b, ch, bs), rm = zeros(b, ch),
         rv = tensor(b, ch, std::vector<float>(size_t(C), 1.0f)), ty = zeros(b, in);
  (*op)->forward(tx, tg, tb, rm, rv, ty, true);
  std::vector<float> want_rm, want_rv;
  for (int64_t c = 0; c < C; ++c) {
    want_rm.push_back(0.1f * mean[size_t(c)]);
    want_rv.push_back(0.9f + 0.1f * var[size_t(c)] * float(M) / float(M - 1));
  }
  require_close(host(b, rm), want_rm);
  require_close(host(b, rv), want_rv);

  auto R = random_vector(xs.size(), 44);
  Tensor dy = tensor(b, in, R), dx = zeros(b, in), dg = zeros(b, ch), db = zeros(b, ch);
  (*op)->backward(tx, dy, tg, tb, dx, dg, db);
  check_gradient(
      "bn src", xs, [&](auto& x) { return forward(x, gs, bs); }, R, host(b, dx));
  check_gradient(
      "bn gamma", gs, [&](auto& g) { return forward(xs, g, bs); }, R, host(b, dg));
  check_gradient(
      "bn beta", bs, [&](auto& v) { return forward(xs, gs, v); }, R, host(b, db));

  // Inference uses the running statistics.
  Tensor ty2 = zeros(b, in);
  (*op)->forward(tx, tg, tb, rm, rv, ty2, false);
  auto rmh = host(b, rm), rvh = host(b, rv);
  auto got = host(b, ty2);
  size_t k = size_t((1 * C + 2) * H * W + 1);
  REQUIRE(got[k] ==
          Approx((xs[k] - rmh[2]) / std::sqrt(rvh[2] + 1e-5f) * gs[2] + bs[2]).epsilon(1e-4));
}

TEST_CASE(
    "dropout keeps the shared counter-based mask, scales by 1/(1-rate), and is the "
    "identity outside training",
    "[nn][ops]") {
  Fixture f;
  Backend& b = *f.b;
  TensorDesc in{{4, 50}, 0};
  auto op = b.make_dropout(in, 0.3f);
  REQUIRE(op.has_value());
  auto xs = random_vector(size_t(in.count()), 51);
  Tensor tx = tensor(b, in, xs), ty = zeros(b, in);
  (*op)->forward(tx, ty, 1234, true);
  auto y = host(b, ty);
  int dropped = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    bool keep = dropout_keep(1234, i, 0.3f);
    REQUIRE(y[i] == Approx(keep ? xs[i] / 0.7f : 0.0f));
    dropped += !keep;
  }
  REQUIRE(dropped > 30);
  REQUIRE(dropped < 90);
  auto R = random_vector(xs.size(), 52);
  Tensor dy = tensor(b, in, R), dx = zeros(b, in);
  (*op)->backward(dy, dx);
  auto g = host(b, dx);
  for (size_t i = 0; i < xs.size(); ++i)
    REQUIRE(g[i] == Approx(dropout_keep(1234, i, 0.3f) ? R[i] / 0.7f : 0.0f));
  (*op)->forward(tx, ty, 1234, false);
  require_close(host(b, ty), xs, 0, 0);
}

TEST_CASE("softmax cross-entropy gives the summed loss, the right count and (p - onehot)/n",
          "[nn][ops]") {
  Fixture f;
  Backend& b = *f.b;
  const int64_t N = 4, K = 5;
  TensorDesc in{{N, K}, 0};
  auto op = b.make_softmax_xent(in);
  REQUIRE(op.has_value());
  auto xs = random_vector(size_t(N * K), 61, -3, 3);
  std::vector<float> labels{0, 3, 4, 1};
  Tensor tx = tensor(b, in, xs), tl = tensor(b, {{N}, 0}, labels), dx = zeros(b, in);
  const int64_t valid = 3;  // the last row is padding
  int64_t correct = 0;
  double loss = (*op)->forward(tx, tl, valid, &correct);
  double want = 0;
  int64_t want_correct = 0;
  std::vector<float> want_grad(size_t(N * K), 0.0f);
  for (int64_t n = 0; n < valid; ++n) {
    double mx = -1e30, s = 0;
    int64_t best = 0;
    for (int64_t k = 0; k < K; ++k)
      if (xs[size_t(n * K + k)] > mx) mx = xs[size_t(n * K + k)], best = k;
    for (int64_t k = 0; k < K; ++k) s += std::exp(xs[size_t(n * K + k)] - mx);
    int64_t y = int64_t(labels[size_t(n)]);
    want += -(xs[size_t(n * K + y)] - mx - std::log(s));
    want_correct += best == y;
    for (int64_t k = 0; k < K; ++k)
      want_grad[size_t(n * K + k)] =
          float((std::exp(xs[size_t(n * K + k)] - mx) / s - (k == y)) / double(valid));
  }
  REQUIRE(loss == Approx(want).epsilon(1e-5));
  REQUIRE(correct == want_correct);
  (*op)->backward(tl, dx);
  require_close(host(b, dx), want_grad, 1e-6, 1e-4);
}

TEST_CASE("flatten of a blocked conv output gives the plain NCHW order and back", "[nn][ops]") {
  Fixture f;
  Backend& b = *f.b;
  const int64_t N = 2, C = 16, H = 3, W = 3;
  auto conv = b.make_conv({{N, 3, 5, 5}, 0}, ConvParams{C, 3, 3, 1, 0, {}});
  REQUIRE(conv.has_value());
  TensorDesc blocked = (*conv)->dst_desc();
  REQUIRE(blocked.dims == std::vector<int64_t>{N, C, H, W});
  auto op = b.make_reshape(blocked, {N, C * H * W});
  REQUIRE(op.has_value());
  auto xs = random_vector(size_t(N * C * H * W), 71);
  Tensor tx = tensor(b, blocked, xs), ty = zeros(b, (*op)->dst_desc());
  (*op)->forward(tx, ty);
  require_close(host(b, ty), xs, 0, 0);
  Tensor back = zeros(b, blocked);
  (*op)->backward(ty, back);
  require_close(host(b, back), xs, 0, 0);
}

TEST_CASE("the registry knows cpu and refuses unknown devices with a message", "[nn][ops]") {
  auto names = available_backends();
  REQUIRE(std::find(names.begin(), names.end(), "cpu") != names.end());
  REQUIRE(make_backend("cpu", 1).has_value());
  REQUIRE(make_backend("auto", 1).has_value());
  auto bad = make_backend("tpu", 1);
  REQUIRE_FALSE(bad.has_value());
  REQUIRE(bad.error().message.find("tpu") != std::string::npos);
  auto bad_index = make_backend("cuda:x", 1);
  REQUIRE_FALSE(bad_index.has_value());
#ifndef HPO_WITH_CUDA
  auto no_cuda = make_backend("cuda:0", 1);
  REQUIRE_FALSE(no_cuda.has_value());
  REQUIRE(no_cuda.error().message.find("without CUDA") != std::string::npos);
#endif
}

TEST_CASE("a kernel larger than the padded input is refused by the backend", "[nn][ops]") {
  Fixture f;
  REQUIRE_FALSE(f.b->make_conv({{1, 1, 3, 3}, 0}, ConvParams{2, 5, 5, 1, 0, {}}).has_value());
  REQUIRE_FALSE(f.b->make_pool({{1, 1, 1, 1}, 0}, PoolParams{}).has_value());
}

}  // namespace
}  // namespace hpo::nn::test
