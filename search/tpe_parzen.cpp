// The Parzen estimators of TPE (see tpe_parzen.h): building the mixtures,
// drawing from them and evaluating their log densities.
//
// Speed (the ask-cost benchmark): log_pdf() runs n_candidates times per
// decision, so a kernel whose term is negligible skips its exp(), and the
// truncation mass skips erfc() for kernels far from both bounds.
#include "search/tpe_parzen.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "search/internal.h"

namespace hpo::search::detail {
namespace {

// Optuna's default_weights: recent trials weigh 1, older ones ramp down.
std::vector<double> recency_weights(std::size_t n) {
  std::vector<double> w(n, 1.0);
  if (n >= 25) {
    std::size_t ramp = n - 25;
    for (std::size_t i = 0; i < ramp; ++i) {
      w[i] = ramp == 1 ? 1.0 / static_cast<double>(n)
                       : 1.0 / static_cast<double>(n) + (1.0 - 1.0 / static_cast<double>(n)) *
                                                            static_cast<double>(i) /
                                                            static_cast<double>(ramp - 1);
    }
  }
  return w;
}

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }

// The mass of N(mu, sigma) inside [low, high]; 1 without erfc when both
// bounds are far (most kernels of a long history).
double mass_inside(double mu, double sigma, double low, double high) {
  const double a = (low - mu) / sigma, b = (high - mu) / sigma;
  if (a < -9 && b > 9) return 1.0;
  return normal_cdf(b) - normal_cdf(a);
}

}  // namespace

Range range_of(const Dimension& d) {
  const double half = d.step > 0 ? 0.5 * d.step : 0.0;
  Range r{d.low - half, d.high + half, d.log};
  if (d.log) {
    r.low = std::log(std::max(r.low, d.low * 0.5));
    r.high = std::log(r.high);
  }
  return r;
}

NumericEstimator::NumericEstimator(const std::vector<double>& observations, double low, double high,
                                   double prior_weight, double clip_count) {
  const std::size_t n = observations.size();
  const double range = high - low;
  low_ = low;
  high_ = high;
  // Components: observations plus the prior (centre, sigma = range).
  std::vector<double> mus = observations;
  std::vector<double> weights = recency_weights(n);
  mus.push_back(0.5 * (low + high));
  weights.push_back(prior_weight);
  const std::size_t m = mus.size();
  std::vector<std::size_t> order(m);
  for (std::size_t i = 0; i < m; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return mus[a] < mus[b] || (mus[a] == mus[b] && a < b);
  });
  std::vector<double> sigmas(m);
  for (std::size_t r = 0; r < m; ++r) {
    double left = r == 0 ? low : mus[order[r - 1]];
    double right = r + 1 == m ? high : mus[order[r + 1]];
    double x = mus[order[r]];
    sigmas[order[r]] = std::max(x - left, right - x);
  }
  if (m >= 3) {  // no endpoint widening (Optuna's consider_endpoints=False)
    sigmas[order[0]] = mus[order[1]] - mus[order[0]];
    sigmas[order[m - 1]] = mus[order[m - 1]] - mus[order[m - 2]];
  }
  sigmas[m - 1] = range;  // the prior
  const double min_sigma =
      range / std::min(100.0, 1.0 + std::max(static_cast<double>(m), clip_count));
  double total = 0;
  for (double w : weights) total += w;
  mus_ = mus;
  sigmas_.resize(m);
  weights_.resize(m);
  log_coef_.resize(m);
  for (std::size_t i = 0; i < m; ++i) {
    double s = std::clamp(sigmas[i], min_sigma, range);
    sigmas_[i] = s;
    weights_[i] = weights[i] / total;
    double z = mass_inside(mus[i], s, low, high);
    log_coef_[i] = std::log(weights_[i]) - std::log(s) - std::log(std::max(z, 1e-300)) -
                   0.5 * std::log(2 * std::numbers::pi);
  }
}

double NumericEstimator::sample(std::mt19937_64& rng) const {
  double u = uniform01(rng), acc = 0;
  std::size_t i = 0;
  for (; i + 1 < weights_.size(); ++i) {
    acc += weights_[i];
    if (u < acc) break;
  }
  for (int tries = 0; tries < 100; ++tries) {
    // Box-Muller, portable.
    double u1 = uniform01(rng), u2 = uniform01(rng);
    double z = std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(2 * std::numbers::pi * u2);
    double x = mus_[i] + sigmas_[i] * z;
    if (x >= low_ && x <= high_) return x;
  }
  return std::clamp(mus_[i], low_, high_);
}

double NumericEstimator::log_pdf(double x) const {
  double best = -INFINITY;
  terms_.resize(mus_.size());
  for (std::size_t i = 0; i < mus_.size(); ++i) {
    double z = (x - mus_[i]) / sigmas_[i];
    terms_[i] = log_coef_[i] - 0.5 * z * z;
    best = std::max(best, terms_[i]);
  }
  double sum = 0;
  for (double t : terms_) {
    if (t - best > -40) sum += std::exp(t - best);
  }
  return best + std::log(sum);
}

CategoricalEstimator::CategoricalEstimator(const std::vector<double>& observations,
                                           std::int64_t choices, double prior_weight) {
  const std::size_t n = observations.size();
  auto w = recency_weights(n);
  // Each observation's kernel puts most of its mass on its category and
  // spreads prior_weight/(n+1) over all; the prior component is uniform.
  const double c = static_cast<double>(choices);
  const double spread = prior_weight / (static_cast<double>(n) + 1.0);
  double total = prior_weight;
  for (double x : w) total += x;
  probabilities_.assign(static_cast<std::size_t>(choices), prior_weight / total / c);
  for (std::size_t i = 0; i < n; ++i) {
    double wi = w[i] / total;
    for (auto& p : probabilities_) p += wi * spread / (1.0 + spread * c);
    probabilities_[static_cast<std::size_t>(observations[i])] += wi / (1.0 + spread * c);
  }
}

double CategoricalEstimator::sample(std::mt19937_64& rng) const {
  double u = uniform01(rng), acc = 0;
  for (std::size_t i = 0; i < probabilities_.size(); ++i) {
    acc += probabilities_[i];
    if (u < acc) return static_cast<double>(i);
  }
  return static_cast<double>(probabilities_.size() - 1);
}

double CategoricalEstimator::log_pdf(double x) const {
  return std::log(probabilities_[static_cast<std::size_t>(x)]);
}

JointEstimator::JointEstimator(const std::vector<Decisions>& trials,
                               const std::vector<Dimension>& dims, double prior_weight,
                               double clip_count, double bandwidth)
    : dims_(dims) {
  const std::size_t n = trials.size(), m = n + 1, k = dims.size();
  auto w = recency_weights(n);
  w.push_back(prior_weight);
  double total = 0;
  for (double x : w) total += x;
  log_weights_.resize(m);
  weights_.resize(m);
  for (std::size_t i = 0; i < m; ++i) {
    weights_[i] = w[i] / total;
    log_weights_[i] = std::log(std::max(weights_[i], 1e-300));
  }
  mus_.assign(m * k, 0.0);
  sigmas_.assign(m * k, 1.0);
  log_norm_.assign(m * k, 0.0);
  spread_ = prior_weight / (static_cast<double>(n) + 1.0);
  log_match_.assign(k, 0.0);
  log_miss_.assign(k, 0.0);
  log_uniform_.assign(k, 0.0);
  const double scott = bandwidth * std::pow(std::max<double>(static_cast<double>(n), 1.0),
                                       -1.0 / (static_cast<double>(k) + 4.0));
  for (std::size_t d = 0; d < k; ++d) {
    const Dimension& dim = dims[d];
    if (dim.kind == Dimension::Kind::kCategorical) {
      const double c = static_cast<double>(dim.choices);
      log_match_[d] = std::log((1.0 + spread_) / (1.0 + spread_ * c));
      log_miss_[d] = std::log(spread_ / (1.0 + spread_ * c));
      log_uniform_[d] = -std::log(c);
      for (std::size_t i = 0; i < n; ++i) mus_[i * k + d] = trials[i].at(dim.key);
      mus_[n * k + d] = -1;  // the prior: uniform
      continue;
    }
    const Range r = range_of(dim);
    const double width = r.high - r.low;
    const double min_sigma =
        width / std::min(100.0, 1.0 + std::max(static_cast<double>(m), clip_count));
    for (std::size_t i = 0; i < m; ++i) {
      double mu, sigma;
      if (i < n) {
        mu = r.to(std::clamp(trials[i].at(dim.key), dim.low, dim.high));
        sigma = std::clamp(scott * width, min_sigma, width);
      } else {
        mu = 0.5 * (r.low + r.high);
        sigma = width;
      }
      mus_[i * k + d] = mu;
      sigmas_[i * k + d] = sigma;
      double z = mass_inside(mu, sigma, r.low, r.high);
      log_norm_[i * k + d] =
          -std::log(sigma) - std::log(std::max(z, 1e-300)) - 0.5 * std::log(2 * std::numbers::pi);
    }
  }
}

std::vector<double> JointEstimator::sample(std::mt19937_64& rng) const {
  const std::size_t k = dims_.size();
  double u = uniform01(rng), acc = 0;
  std::size_t i = 0;
  for (; i + 1 < weights_.size(); ++i) {
    acc += weights_[i];
    if (u < acc) break;
  }
  std::vector<double> x(k);
  for (std::size_t d = 0; d < k; ++d) {
    const Dimension& dim = dims_[d];
    const double mu = mus_[i * k + d];
    if (dim.kind == Dimension::Kind::kCategorical) {
      const double c = static_cast<double>(dim.choices);
      // With probability 1/(1 + spread*C) keep the trial's category, else uniform.
      if (mu >= 0 && uniform01(rng) < 1.0 / (1.0 + spread_ * c)) {
        x[d] = mu;
      } else {
        x[d] = static_cast<double>(uniform_index(rng, static_cast<std::uint64_t>(dim.choices)));
      }
      continue;
    }
    const Range r = range_of(dim);
    const double sigma = sigmas_[i * k + d];
    x[d] = std::clamp(mu, r.low, r.high);
    for (int tries = 0; tries < 100; ++tries) {
      double u1 = uniform01(rng), u2 = uniform01(rng);
      double v =
          mu + sigma * std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(2 * std::numbers::pi * u2);
      if (v >= r.low && v <= r.high) {
        x[d] = v;
        break;
      }
    }
  }
  return x;
}

double JointEstimator::log_pdf(const std::vector<double>& x) const {
  const std::size_t k = dims_.size(), m = weights_.size();
  terms_.resize(m);
  double best = -INFINITY;
  for (std::size_t i = 0; i < m; ++i) {
    double t = log_weights_[i];
    for (std::size_t d = 0; d < k; ++d) {
      const Dimension& dim = dims_[d];
      const double mu = mus_[i * k + d];
      if (dim.kind == Dimension::Kind::kCategorical) {
        t += mu < 0 ? log_uniform_[d] : x[d] == mu ? log_match_[d] : log_miss_[d];
      } else {
        const double z = (x[d] - mu) / sigmas_[i * k + d];
        t += log_norm_[i * k + d] - 0.5 * z * z;
      }
    }
    terms_[i] = t;
    best = std::max(best, t);
  }
  double sum = 0;
  for (double t : terms_) {
    if (t - best > -40) sum += std::exp(t - best);
  }
  return best + std::log(sum);
}

}  // namespace hpo::search::detail
