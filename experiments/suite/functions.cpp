#include "functions.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>

namespace hpo::suite::fn {
namespace {

constexpr double kPi = std::numbers::pi;

template <std::size_t D>
double hartmann(const Vec& x, const std::array<std::array<double, D>, 4>& a,
                const std::array<std::array<double, D>, 4>& p) {
  constexpr std::array<double, 4> alpha{1.0, 1.2, 3.0, 3.2};
  double sum = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    double inner = 0;
    for (std::size_t j = 0; j < D; ++j) inner += a[i][j] * (x[j] - p[i][j]) * (x[j] - p[i][j]);
    sum += alpha[i] * std::exp(-inner);
  }
  return -sum;
}

}  // namespace

double branin(const Vec& x) {
  const double b = 5.1 / (4 * kPi * kPi), c = 5 / kPi, t = 1 / (8 * kPi);
  const double u = x[1] - b * x[0] * x[0] + c * x[0] - 6;
  return u * u + 10 * (1 - t) * std::cos(x[0]) + 10;
}

double six_hump_camel(const Vec& x) {
  const double a = x[0], b = x[1];
  return (4 - 2.1 * a * a + a * a * a * a / 3) * a * a + a * b + (-4 + 4 * b * b) * b * b;
}

double hartmann3(const Vec& x) {
  static const std::array<std::array<double, 3>, 4> a{
      {{3, 10, 30}, {0.1, 10, 35}, {3, 10, 30}, {0.1, 10, 35}}};
  static const std::array<std::array<double, 3>, 4> p{{{0.3689, 0.1170, 0.2673},
                                                       {0.4699, 0.4387, 0.7470},
                                                       {0.1091, 0.8732, 0.5547},
                                                       {0.0381, 0.5743, 0.8828}}};
  return hartmann<3>(x, a, p);
}

double hartmann6(const Vec& x) {
  static const std::array<std::array<double, 6>, 4> a{{{10, 3, 17, 3.5, 1.7, 8},
                                                       {0.05, 10, 17, 0.1, 8, 14},
                                                       {3, 3.5, 1.7, 10, 17, 8},
                                                       {17, 8, 0.05, 10, 0.1, 14}}};
  static const std::array<std::array<double, 6>, 4> p{
      {{0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886},
       {0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991},
       {0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650},
       {0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381}}};
  return hartmann<6>(x, a, p);
}

double rosenbrock(const Vec& x) {
  double s = 0;
  for (std::size_t i = 0; i + 1 < x.size(); ++i) {
    const double u = x[i + 1] - x[i] * x[i], v = 1 - x[i];
    s += 100 * u * u + v * v;
  }
  return s;
}

double ackley(const Vec& x) {
  double sq = 0, cs = 0;
  for (double v : x) {
    sq += v * v;
    cs += std::cos(2 * kPi * v);
  }
  const double d = static_cast<double>(x.size());
  return -20 * std::exp(-0.2 * std::sqrt(sq / d)) - std::exp(cs / d) + 20 + std::exp(1.0);
}

double rastrigin(const Vec& x) {
  double s = 10 * static_cast<double>(x.size());
  for (double v : x) s += v * v - 10 * std::cos(2 * kPi * v);
  return s;
}

double styblinski_tang(const Vec& x) {
  double s = 0;
  for (double v : x) s += v * v * v * v - 16 * v * v + 5 * v;
  return s / 2;
}

double levy(const Vec& x) {
  auto w = [&](std::size_t i) { return 1 + (x[i] - 1) / 4; };
  const std::size_t d = x.size();
  const double w0 = std::sin(kPi * w(0));
  double s = w0 * w0;
  for (std::size_t i = 0; i + 1 < d; ++i) {
    const double wi = w(i), t = std::sin(kPi * wi + 1);
    s += (wi - 1) * (wi - 1) * (1 + 10 * t * t);
  }
  const double wd = w(d - 1), t = std::sin(2 * kPi * wd);
  return s + (wd - 1) * (wd - 1) * (1 + t * t);
}

double ellipsoid(const Vec& x) {
  double s = 0;
  const double d = static_cast<double>(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    s += std::pow(10.0, 6.0 * static_cast<double>(i) / std::max(1.0, d - 1)) * x[i] * x[i];
  }
  return s;
}

}  // namespace hpo::suite::fn
