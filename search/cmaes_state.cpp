#include "search/cmaes_state.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "search/internal.h"

namespace hpo::search::detail {
namespace {

// The strategy parameters of the tutorial's table 1 for n and lambda (positive weights only).
struct Parameters {
  std::vector<double> weights;  // mu weights, summing to 1
  double mu_eff = 0, c_sigma = 0, d_sigma = 0, c_c = 0, c_1 = 0, c_mu = 0, chi_n = 0;

  Parameters(std::size_t n_dims, std::size_t lambda) {
    const double n = static_cast<double>(n_dims);
    const std::size_t mu = std::max<std::size_t>(1, lambda / 2);
    double sum = 0, sum_sq = 0;
    for (std::size_t i = 1; i <= mu; ++i) {
      weights.push_back(std::log((static_cast<double>(lambda) + 1) / 2) -
                        std::log(static_cast<double>(i)));
      sum += weights.back();
    }
    for (double& w : weights) {
      w /= sum;
      sum_sq += w * w;
    }
    mu_eff = 1 / sum_sq;
    c_sigma = (mu_eff + 2) / (n + mu_eff + 5);
    d_sigma = 1 + 2 * std::max(0.0, std::sqrt((mu_eff - 1) / (n + 1)) - 1) + c_sigma;
    c_c = (4 + mu_eff / n) / (n + 4 + 2 * mu_eff / n);
    c_1 = 2 / ((n + 1.3) * (n + 1.3) + mu_eff);
    c_mu = std::min(1 - c_1, 2 * (mu_eff - 2 + 1 / mu_eff) / ((n + 2) * (n + 2) + mu_eff));
    chi_n = std::sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n));
  }
};

// C^{-1/2} v = B D^{-1} B^T v.
std::vector<double> inverse_sqrt_times(const CmaState& s, const std::vector<double>& v) {
  const std::size_t n = s.n;
  std::vector<double> t(n, 0.0), out(n, 0.0);
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t i = 0; i < n; ++i) t[j] += s.B[i * n + j] * v[i];
    t[j] /= s.D[j];
  }
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) out[i] += s.B[i * n + j] * t[j];
  }
  return out;
}

double norm(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x * x;
  return std::sqrt(sum);
}

// B and D from C. Eigenvalues are kept positive: a C that rounding made
// indefinite shows up as a huge condition number, and restarts.
void decompose(CmaState& s) {
  std::vector<double> values;
  symmetric_eigen(s.C, s.n, s.B, values);
  s.D.resize(s.n);
  for (std::size_t i = 0; i < s.n; ++i) s.D[i] = std::sqrt(std::max(values[i], 1e-300));
}

bool should_restart(const CmaState& s, const std::vector<const std::vector<double>*>& points) {
  const auto [min_d, max_d] = std::minmax_element(s.D.begin(), s.D.end());
  const double spread = s.sigma * *max_d;
  if (!std::isfinite(spread) || spread < 1e-8 || spread > 1e4) return true;
  if ((*max_d / *min_d) * (*max_d / *min_d) > 1e14) return true;
  for (const auto* p : points) {
    if (*p != *points.front()) return false;
  }
  return true;  // every point of the generation the same: nothing left to learn here
}

}  // namespace

std::size_t cma_default_popsize(std::size_t n) {
  return 4 + static_cast<std::size_t>(
                 std::floor(3 * std::log(static_cast<double>(std::max<std::size_t>(n, 1)))));
}

CmaState cma_start(std::size_t n, std::size_t lambda, double sigma0, int restarts) {
  CmaState s;
  s.n = n;
  s.lambda = lambda;
  s.restarts = restarts;
  s.sigma = sigma0;
  s.mean.assign(n, 0.5);
  s.p_sigma.assign(n, 0.0);
  s.p_c.assign(n, 0.0);
  s.C.assign(n * n, 0.0);
  s.B.assign(n * n, 0.0);
  s.D.assign(n, 1.0);
  for (std::size_t i = 0; i < n; ++i) s.C[i * n + i] = s.B[i * n + i] = 1.0;
  return s;
}

void cma_tell(CmaState& s, const std::vector<const std::vector<double>*>& best_first,
              double sigma0) {
  const std::size_t n = s.n;
  const Parameters p(n, s.lambda);
  const double max_norm = std::sqrt(static_cast<double>(n)) + 2.0 * n / (n + 2.0);
  std::vector<std::vector<double>> ys;
  std::vector<double> y_w(n, 0.0);
  for (std::size_t k = 0; k < p.weights.size() && k < best_first.size(); ++k) {
    std::vector<double> y(n);
    for (std::size_t i = 0; i < n; ++i) y[i] = ((*best_first[k])[i] - s.mean[i]) / s.sigma;
    const double mahalanobis = norm(inverse_sqrt_times(s, y));
    if (mahalanobis > max_norm) {
      for (double& v : y) v *= max_norm / mahalanobis;
    }
    for (std::size_t i = 0; i < n; ++i) y_w[i] += p.weights[k] * y[i];
    ys.push_back(std::move(y));
  }
  for (std::size_t i = 0; i < n; ++i) s.mean[i] += s.sigma * y_w[i];

  const std::vector<double> c_yw = inverse_sqrt_times(s, y_w);
  const double ks = std::sqrt(p.c_sigma * (2 - p.c_sigma) * p.mu_eff);
  for (std::size_t i = 0; i < n; ++i) s.p_sigma[i] = (1 - p.c_sigma) * s.p_sigma[i] + ks * c_yw[i];
  ++s.generation;
  const double ps_norm = norm(s.p_sigma);
  // The h_sigma stall: p_c stops growing while p_sigma is large (sigma is still adapting).
  const double corrected =
      ps_norm / std::sqrt(1 - std::pow(1 - p.c_sigma, 2.0 * static_cast<double>(s.generation)));
  const bool h_sigma = corrected < (1.4 + 2 / (static_cast<double>(n) + 1)) * p.chi_n;
  const double kc = h_sigma ? std::sqrt(p.c_c * (2 - p.c_c) * p.mu_eff) : 0.0;
  for (std::size_t i = 0; i < n; ++i) s.p_c[i] = (1 - p.c_c) * s.p_c[i] + kc * y_w[i];
  const double delta_h = h_sigma ? 0.0 : p.c_c * (2 - p.c_c);
  const double keep = 1 + p.c_1 * delta_h - p.c_1 - p.c_mu;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j <= i; ++j) {
      double rank_mu = 0;
      for (std::size_t k = 0; k < ys.size(); ++k) rank_mu += p.weights[k] * ys[k][i] * ys[k][j];
      const double c = keep * s.C[i * n + j] + p.c_1 * s.p_c[i] * s.p_c[j] + p.c_mu * rank_mu;
      s.C[i * n + j] = s.C[j * n + i] = c;
    }
  }
  // The step is capped at a factor e per generation (as the cmaes library Optuna uses does).
  s.sigma *= std::exp(std::min(1.0, (p.c_sigma / p.d_sigma) * (ps_norm / p.chi_n - 1)));
  decompose(s);
  if (should_restart(s, best_first)) s = cma_start(n, 2 * s.lambda, sigma0, s.restarts + 1);
}

std::vector<double> cma_sample(const CmaState& s, std::mt19937_64& rng) {
  const std::size_t n = s.n;
  std::vector<double> z(n), x(n);
  for (int attempt = 0; attempt < 100; ++attempt) {
    for (double& v : z) {
      const double u1 = uniform01(rng), u2 = uniform01(rng);
      v = std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(2 * std::numbers::pi * u2);
    }
    bool inside = true;
    for (std::size_t i = 0; i < n; ++i) {
      double step = 0;
      for (std::size_t j = 0; j < n; ++j) step += s.B[i * n + j] * s.D[j] * z[j];
      x[i] = s.mean[i] + s.sigma * step;
      inside = inside && x[i] >= 0.0 && x[i] <= 1.0;
    }
    if (inside) return x;
  }
  for (double& v : x) v = std::clamp(v, 0.0, 1.0);
  return x;
}

void symmetric_eigen(std::vector<double> a, std::size_t n, std::vector<double>& vectors,
                     std::vector<double>& values) {
  vectors.assign(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i) vectors[i * n + i] = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0, diagonal = 0;
    for (std::size_t i = 0; i < n; ++i) {
      diagonal += a[i * n + i] * a[i * n + i];
      for (std::size_t j = i + 1; j < n; ++j) off += a[i * n + j] * a[i * n + j];
    }
    if (off <= 1e-30 * diagonal || off == 0) break;
    for (std::size_t p = 0; p < n; ++p) {
      for (std::size_t q = p + 1; q < n; ++q) {
        const double apq = a[p * n + q];
        if (apq == 0) continue;
        // The rotation that zeroes a[p][q] (Numerical Recipes' form, stable for small angles).
        const double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const double t =
            std::abs(theta) > 1e150
                ? 0.5 / theta
                : (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (std::size_t k = 0; k < n; ++k) {
          const double kp = a[k * n + p], kq = a[k * n + q];
          a[k * n + p] = c * kp - s * kq;
          a[k * n + q] = s * kp + c * kq;
        }
        for (std::size_t k = 0; k < n; ++k) {
          const double pk = a[p * n + k], qk = a[q * n + k];
          a[p * n + k] = c * pk - s * qk;
          a[q * n + k] = s * pk + c * qk;
        }
        for (std::size_t k = 0; k < n; ++k) {
          const double kp = vectors[k * n + p], kq = vectors[k * n + q];
          vectors[k * n + p] = c * kp - s * kq;
          vectors[k * n + q] = s * kp + c * kq;
        }
      }
    }
  }
  values.resize(n);
  for (std::size_t i = 0; i < n; ++i) values[i] = a[i * n + i];
}

}  // namespace hpo::search::detail
