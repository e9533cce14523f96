// The Parzen density estimators of the TPE sampler (tpe.cpp). Each is built
// from the observed decisions of one group of trials (the good ones, or the
// rest) and answers two questions: a draw from the density, and the log
// density at a point; the sampler scores a draw x by log l(x) - log g(x).
// Internal to search/. Pure: the only randomness is the generator passed to
// sample(). An estimator is immutable after construction but keeps a scratch
// buffer for log_pdf(), so one instance is used by one thread at a time.
//
// Kernel widths are clipped below at range / min(100, 1 + max(kernels,
// clip_count)) (Optuna: 1 + kernels): with clip_count growing with the
// study, the good density can narrow as the study goes on.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "search/space.h"

namespace hpo::search::detail {

// The transformed domain of a numeric dimension: log space on a log scale,
// ints and steps widened by half a step each side (the walk snaps back).
struct Range {
  double low = 0, high = 0;
  bool log = false;
  double to(double x) const { return log ? std::log(x) : x; }
  double from(double x) const { return log ? std::exp(x) : x; }
};
Range range_of(const Dimension& d);

// A mixture of Gaussians truncated to [low, high], in the transformed
// (log where log-scaled) space: one kernel per observation, recency-weighted
// (Optuna's default_weights), plus a prior kernel at the centre whose width
// is the whole range.
class NumericEstimator {
 public:
  // `observations` are transformed values inside [low, high]; low < high.
  NumericEstimator(const std::vector<double>& observations, double low, double high,
                   double prior_weight, double clip_count);

  // A draw inside [low, high].
  double sample(std::mt19937_64& rng) const;
  double log_pdf(double x) const;

 private:
  double low_ = 0, high_ = 0;
  std::vector<double> mus_, sigmas_, weights_, log_coef_;
  mutable std::vector<double> terms_;
};

// Smoothed category frequencies: each observation puts most of its mass on
// its category and spreads a little over all; the prior is uniform.
class CategoricalEstimator {
 public:
  // `observations` are category indices in [0, choices); choices >= 1.
  CategoricalEstimator(const std::vector<double>& observations, std::int64_t choices,
                       double prior_weight);

  // A category index.
  double sample(std::mt19937_64& rng) const;
  double log_pdf(double x) const;

 private:
  std::vector<double> probabilities_;
};

// Multivariate TPE (Falkner et al. 2018; Optuna's multivariate=True) over
// the decision points every observed trial has: one kernel per trial over
// all those dimensions at once, so it learns how they interact (the
// univariate form cannot). Bandwidth per dimension: Scott-like
// bandwidth * n^(-1/(d+4)) * range (tpe.cpp's default 0.02; Optuna: 0.2),
// never below range / min(100, 1 + clip_count) (Optuna: 1 + kernels). Both
// narrower than Optuna's, so late trials refine the best region; chosen on
// the tuning half of experiments/suite.
class JointEstimator {
 public:
  // Every trial in `trials` has a finite value for every key of `dims`
  // (categories in range).
  // `bandwidth` scales the Scott-like rule (bandwidth * n^(-1/(d+4)) * range).
  JointEstimator(const std::vector<Decisions>& trials, const std::vector<Dimension>& dims,
                 double prior_weight, double clip_count = 0, double bandwidth = 0.05);

  // One point (transformed numbers, category indices), in the order of `dims`.
  std::vector<double> sample(std::mt19937_64& rng) const;
  double log_pdf(const std::vector<double>& x) const;

 private:
  std::vector<Dimension> dims_;
  std::vector<double> weights_, log_weights_, mus_, sigmas_, log_norm_;
  std::vector<double> log_match_, log_miss_, log_uniform_;  // per categorical dimension
  double spread_ = 0;
  mutable std::vector<double> terms_;
};

}  // namespace hpo::search::detail
