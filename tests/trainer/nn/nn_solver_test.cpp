// Each solver's update against values computed by hand (two steps, so state is exercised).
#include <cmath>

#include "tests/trainer/nn/nn_test_util.h"

namespace hpo::nn::test {
namespace {

struct Run {
  std::vector<float> param;
  std::vector<float> s1, s2;
};

// Two updates of p = {1, -2} with gradients g1 then g2.
Run two_steps(UpdateRule rule) {
  auto b = make_cpu_backend(1);
  TensorDesc d{{2}, 0};
  Tensor p = tensor(*b, d, {1.0f, -2.0f}), s1 = zeros(*b, d), s2 = zeros(*b, d);
  Tensor g1 = tensor(*b, d, {0.5f, 0.25f}), g2 = tensor(*b, d, {-1.0f, 2.0f});
  rule.step = 1;
  b->update(rule, p, g1, &s1, &s2);
  rule.step = 2;
  b->update(rule, p, g2, &s1, &s2);
  return {host(*b, p), host(*b, s1), host(*b, s2)};
}

TEST_CASE("sgd with momentum and weight decay follows v = mu v + g + wd p, p -= lr v",
          "[nn][solver]") {
  UpdateRule r{.kind = Optimizer::kSgd, .lr = 0.1f, .weight_decay = 0.01f, .momentum = 0.9f};
  auto run = two_steps(r);
  // element 0: g' = .5 + .01*1 = .51; v = .51; p = 1 - .051 = .949
  //            g' = -1 + .00949 = -.99051; v = .9*.51 - .99051 = -.53151; p = .949 + .053151
  REQUIRE(run.param[0] == Approx(1.002151).epsilon(1e-6));
  REQUIRE(run.s1[0] == Approx(-0.53151).epsilon(1e-5));
  // element 1: g' = .25 - .02 = .23; v = .23; p = -2.023
  //            g' = 2 - .02023 = 1.97977; v = .207 + 1.97977 = 2.18677; p = -2.023 - .218677
  REQUIRE(run.param[1] == Approx(-2.241677).epsilon(1e-6));
}

TEST_CASE("nesterov sgd steps by g + mu v", "[nn][solver]") {
  UpdateRule r{.kind = Optimizer::kSgd, .lr = 0.1f, .momentum = 0.9f, .nesterov = true};
  auto run = two_steps(r);
  // element 0: v = .5, p = 1 - .1*(.5 + .45) = .905; v = .45 - 1 = -.55,
  //            p = .905 - .1*(-1 + .9*-.55) = .905 + .1495 = 1.0545
  REQUIRE(run.param[0] == Approx(1.0545).epsilon(1e-6));
}

TEST_CASE("plain sgd without momentum is p -= lr g", "[nn][solver]") {
  UpdateRule r{.kind = Optimizer::kSgd, .lr = 0.5f};
  auto run = two_steps(r);
  REQUIRE(run.param[0] == Approx(1.0 - 0.25 + 0.5));
  REQUIRE(run.param[1] == Approx(-2.0 - 0.125 - 1.0));
}

double adam_ref(bool decoupled, double wd) {
  double p = 1.0, m = 0, v = 0, lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  double grads[2] = {0.5, -1.0};
  for (int t = 1; t <= 2; ++t) {
    double g = grads[t - 1];
    if (decoupled) {
      p -= lr * wd * p;
    } else {
      g += wd * p;
    }
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    double mh = m / (1 - std::pow(b1, t)), vh = v / (1 - std::pow(b2, t));
    p -= lr * mh / (std::sqrt(vh) + eps);
  }
  return p;
}

TEST_CASE("adam and adamw match the bias-corrected update, with coupled and decoupled decay",
          "[nn][solver]") {
  UpdateRule r{.kind = Optimizer::kAdam, .lr = 0.01f, .weight_decay = 0.1f};
  REQUIRE(two_steps(r).param[0] == Approx(adam_ref(false, 0.1)).epsilon(1e-6));
  r.kind = Optimizer::kAdamW;
  REQUIRE(two_steps(r).param[0] == Approx(adam_ref(true, 0.1)).epsilon(1e-6));
  REQUIRE(adam_ref(false, 0.1) != Approx(adam_ref(true, 0.1)).epsilon(1e-7));
}

TEST_CASE("rmsprop divides by the root of the running mean square", "[nn][solver]") {
  UpdateRule r{.kind = Optimizer::kRmsProp, .lr = 0.01f, .alpha = 0.99f, .eps = 1e-8f};
  auto run = two_steps(r);
  double s = 0.01 * 0.25, p = 1 - 0.01 * 0.5 / (std::sqrt(s) + 1e-8);
  s = 0.99 * s + 0.01 * 1.0;
  p -= 0.01 * -1.0 / (std::sqrt(s) + 1e-8);
  REQUIRE(run.param[0] == Approx(p).epsilon(1e-6));
  REQUIRE(run.s1[0] == Approx(s).epsilon(1e-6));
}

}  // namespace
}  // namespace hpo::nn::test
