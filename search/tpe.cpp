// Tree-structured Parzen Estimator (Bergstra et al. 2011), univariate, in the
// form Optuna 3.1 uses by default: the finished trials are split into the
// best `good` ones and the rest; for every decision point each group gives a
// Parzen estimator (a truncated-Gaussian mixture with a prior component, or
// smoothed category frequencies) built only from the trials where that
// decision point was active; n_candidates draws from the good density are
// scored by log l(x) - log g(x) and the best one is taken.
//
// Departure from Optuna, measured with experiments/bench_samplers.cpp: the
// smallest kernel width is range / min(100, 1 + max(kernels, finished/2))
// (Optuna: 1 + kernels), so the good density can narrow as a study goes on;
// and the decision points every observed trial has are decided jointly
// (multivariate, on by default), the others one at a time.
//
// Speed (the ask-cost benchmark): the split needs only a partial sort, only
// the good trials and the newest `max_observations` of the rest are decoded,
// and a kernel whose term is negligible skips its exp().
#include <algorithm>
#include <cmath>
#include <numbers>

#include "search/internal.h"
#include "search/sampler.h"

namespace hpo::search::detail {
namespace {

using nlohmann::json;

struct Options {
  std::int64_t startup_trials = 10;
  std::int64_t n_candidates = 24;
  double gamma = 0.1;
  std::int64_t max_good = 25;
  double prior_weight = 1.0;
  bool constant_liar = true;
  std::int64_t max_observations = 200;
  bool multivariate = true;
};

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

// A mixture of Gaussians truncated to [low, high], in the transformed
// (log where log-scaled) space.
class NumericEstimator {
 public:
  NumericEstimator(const std::vector<double>& observations, double low, double high,
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

  double sample(std::mt19937_64& rng) const {
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

  double log_pdf(double x) const {
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

 private:
  double low_ = 0, high_ = 0;
  std::vector<double> mus_, sigmas_, weights_, log_coef_;
  mutable std::vector<double> terms_;
};

class CategoricalEstimator {
 public:
  CategoricalEstimator(const std::vector<double>& observations, std::int64_t choices,
                       double prior_weight) {
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
  double sample(std::mt19937_64& rng) const {
    double u = uniform01(rng), acc = 0;
    for (std::size_t i = 0; i < probabilities_.size(); ++i) {
      acc += probabilities_[i];
      if (u < acc) return static_cast<double>(i);
    }
    return static_cast<double>(probabilities_.size() - 1);
  }
  double log_pdf(double x) const { return std::log(probabilities_[static_cast<std::size_t>(x)]); }

 private:
  std::vector<double> probabilities_;
};

// The transformed domain of a numeric dimension: log space on a log scale,
// ints and steps widened by half a step each side (the walk snaps back).
struct Range {
  double low = 0, high = 0;
  bool log = false;
  double to(double x) const { return log ? std::log(x) : x; }
  double from(double x) const { return log ? std::exp(x) : x; }
};

Range range_of(const Dimension& d) {
  const double half = d.step > 0 ? 0.5 * d.step : 0.0;
  Range r{d.low - half, d.high + half, d.log};
  if (d.log) {
    r.low = std::log(std::max(r.low, d.low * 0.5));
    r.high = std::log(r.high);
  }
  return r;
}

// Multivariate TPE (Falkner et al. 2018; Optuna's multivariate=True) over
// the decision points every observed trial has: one kernel per trial over
// all those dimensions at once, so it learns how they interact (the
// univariate form cannot). Bandwidth per dimension: Scott-like
// 0.05 * n^(-1/(d+4)) * range (Optuna: 0.2), never below
// range / min(100, 1 + finished trials) (Optuna: 1 + kernels). Both
// narrower than Optuna's, so late trials refine the best region; measured on
// Branin/Hartmann6 with seeds other than the reported ones
// (experiments/bench_samplers.cpp --try).
class JointEstimator {
 public:
  JointEstimator(const std::vector<Decisions>& trials, const std::vector<Dimension>& dims,
                 double prior_weight, double clip_count = 0)
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
    const double scott = 0.05 * std::pow(std::max<double>(static_cast<double>(n), 1.0),
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

  // One point (transformed numbers, category indices).
  std::vector<double> sample(std::mt19937_64& rng) const {
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

  double log_pdf(const std::vector<double>& x) const {
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

 private:
  std::vector<Dimension> dims_;
  std::vector<double> weights_, log_weights_, mus_, sigmas_, log_norm_;
  std::vector<double> log_match_, log_miss_, log_uniform_;  // per categorical dimension
  double spread_ = 0;
  mutable std::vector<double> terms_;
};

// Decides the dimensions every observed trial has jointly; returns key -> value.
Decisions joint_decisions(const Space& space, const std::vector<Decisions>& good,
                          const std::vector<Decisions>& bad, const Options& o, std::mt19937_64& rng,
                          std::size_t n_total) {
  // A replay of the best trial lists the dimensions (and their domains).
  struct Recorder : Decider {
    const Decisions& replay;
    std::vector<Dimension> seen;
    explicit Recorder(const Decisions& r) : replay(r) {}
    double decide(const Dimension& d) override {
      seen.push_back(d);
      auto it = replay.find(d.key);
      return it == replay.end() ? d.low : it->second;
    }
  } recorder(good.front());
  (void)space.sample(recorder);
  std::vector<Dimension> dims;
  auto everywhere = [](const std::vector<Decisions>& trials, const Dimension& d) {
    for (const auto& t : trials) {
      auto it = t.find(d.key);
      if (it == t.end() || !std::isfinite(it->second)) return false;
      if (d.kind == Dimension::Kind::kCategorical &&
          !(it->second >= 0 && it->second < static_cast<double>(d.choices))) {
        return false;
      }
    }
    return true;
  };
  for (const auto& d : recorder.seen) {
    if (everywhere(good, d) && everywhere(bad, d)) dims.push_back(d);
  }
  Decisions out;
  if (dims.size() < 2) return out;
  const auto clip = static_cast<double>(n_total);
  JointEstimator l(good, dims, o.prior_weight, clip), g(bad, dims, o.prior_weight, clip);
  std::vector<double> best;
  double best_score = -INFINITY;
  for (std::int64_t c = 0; c < o.n_candidates; ++c) {
    auto x = l.sample(rng);
    double score = l.log_pdf(x) - g.log_pdf(x);
    if (c == 0 || score > best_score) {
      best = std::move(x);
      best_score = score;
    }
  }
  for (std::size_t d = 0; d < dims.size(); ++d) {
    out[dims[d].key] =
        dims[d].kind == Dimension::Kind::kCategorical ? best[d] : range_of(dims[d]).from(best[d]);
  }
  return out;
}

class TpeDecider : public Decider {
 public:
  TpeDecider(const std::vector<Decisions>& good, const std::vector<Decisions>& bad,
             const Decisions& joint, const Options& o, std::mt19937_64& rng)
      : good_(good), bad_(bad), joint_(joint), options_(o), rng_(rng) {}

  void set_clip_count(double count) { clip_count_ = count; }

  double decide(const Dimension& d) override {
    if (auto it = joint_.find(d.key); it != joint_.end()) return it->second;
    std::vector<double> below = gather(good_, d), above = gather(bad_, d);
    if (below.empty() && above.empty()) return from_unit(d, uniform01(rng_));
    if (d.kind == Dimension::Kind::kCategorical) {
      for (auto* v : {&below, &above}) {
        std::erase_if(*v,
                      [&](double x) { return !(x >= 0 && x < static_cast<double>(d.choices)); });
      }
      CategoricalEstimator l(below, d.choices, options_.prior_weight);
      CategoricalEstimator g(above, d.choices, options_.prior_weight);
      return best_of(l, g);
    }
    // Numbers: work in log space on a log scale; ints and steps as a
    // continuous range widened by half a step each side (then snapped).
    const double half = d.step > 0 ? 0.5 * d.step : 0.0;
    double low = d.low - half, high = d.high + half;
    auto to = [&](double x) { return d.log ? std::log(x) : x; };
    if (d.log) {
      low = std::log(std::max(low, d.low * 0.5));
      high = std::log(high);
    }
    for (auto* v : {&below, &above}) {
      for (double& x : *v) x = to(std::clamp(x, d.low, d.high));
    }
    NumericEstimator l(below, low, high, options_.prior_weight, clip_count_);
    NumericEstimator g(above, low, high, options_.prior_weight, clip_count_);
    double x = best_of(l, g);
    return d.log ? std::exp(x) : x;
  }

 private:
  std::vector<double> gather(const std::vector<Decisions>& trials, const Dimension& d) const {
    std::vector<double> out;
    for (const auto& t : trials) {
      auto it = t.find(d.key);
      if (it != t.end() && std::isfinite(it->second)) out.push_back(it->second);
    }
    return out;
  }

  template <class E>
  double best_of(const E& l, const E& g) {
    double best = 0, best_score = -INFINITY;
    for (std::int64_t i = 0; i < options_.n_candidates; ++i) {
      double x = l.sample(rng_);
      double score = l.log_pdf(x) - g.log_pdf(x);
      if (score > best_score || i == 0) {
        best = x;
        best_score = score;
      }
    }
    return best;
  }

  const std::vector<Decisions>& good_;
  const std::vector<Decisions>& bad_;
  const Decisions& joint_;
  const Options& options_;
  double clip_count_ = 0;
  std::mt19937_64& rng_;
};

class TpeSampler : public Sampler {
 public:
  TpeSampler(Space space, const json& o, std::uint64_t seed, Direction direction)
      : space_(std::move(space)), seed_(seed), direction_(direction) {
    options_.startup_trials = o["startup_trials"].get<std::int64_t>();
    options_.n_candidates = o["n_candidates"].get<std::int64_t>();
    options_.gamma = o["gamma"].get<double>();
    options_.max_good = o["max_good"].get<std::int64_t>();
    options_.prior_weight = o["prior_weight"].get<double>();
    options_.constant_liar = o["constant_liar"].get<bool>();
    options_.max_observations = o["max_observations"].get<std::int64_t>();
    options_.multivariate = o["multivariate"].get<bool>();
  }

  Result<std::optional<json>> ask(const History& history, std::int64_t number) override {
    auto rng = make_rng(seed_, number);
    std::vector<std::pair<double, std::size_t>> finished;  // (score, index in history)
    for (std::size_t i = 0; i < history.size(); ++i) {
      if (auto s = score_of(history[i], direction_)) finished.emplace_back(*s, i);
    }
    if (static_cast<std::int64_t>(finished.size()) < options_.startup_trials || finished.empty()) {
      RandomDecider random(rng);
      return space_.sample(random);
    }
    const std::size_t n = finished.size();
    std::size_t n_good = static_cast<std::size_t>(
        std::min<double>(std::ceil(options_.gamma * static_cast<double>(n)),
                         static_cast<double>(options_.max_good)));
    n_good = std::clamp<std::size_t>(n_good, 1, n);
    std::nth_element(finished.begin(), finished.begin() + static_cast<std::ptrdiff_t>(n_good - 1),
                     finished.end());
    std::vector<char> is_good(history.size(), 0);
    for (std::size_t i = 0; i < n_good; ++i) is_good[finished[i].second] = 1;

    // Good trials and (newest first, capped) the rest, each in number order
    // so the recency weights apply.
    std::vector<Decisions> good, bad;
    for (std::size_t i = 0; i < history.size(); ++i) {
      if (is_good[i]) good.push_back(space_.decode(history[i].config));
    }
    std::vector<std::size_t> rest;
    for (std::size_t i = history.size(); i-- > 0;) {
      if (static_cast<std::int64_t>(rest.size()) >= options_.max_observations) break;
      const TrialRecord& t = history[i];
      bool pending = t.state == TrialState::kRunning || t.state == TrialState::kQueued;
      bool worse = (t.state == TrialState::kCompleted && !is_good[i] && score_of(t, direction_)) ||
                   t.state == TrialState::kPruned;
      if (worse || (pending && options_.constant_liar)) rest.push_back(i);
    }
    for (std::size_t k = rest.size(); k-- > 0;)
      bad.push_back(space_.decode(history[rest[k]].config));

    Decisions joint;
    if (options_.multivariate) joint = joint_decisions(space_, good, bad, options_, rng, n);
    TpeDecider decider(good, bad, joint, options_, rng);
    decider.set_clip_count(0.5 * static_cast<double>(n));
    return space_.sample(decider);
  }
  std::string name() const override { return "tpe"; }

 private:
  Space space_;
  Options options_;
  std::uint64_t seed_;
  Direction direction_;
};

}  // namespace

std::unique_ptr<Sampler> make_tpe(const Space& space, const json& options, std::uint64_t seed,
                                  Direction direction) {
  return std::make_unique<TpeSampler>(space, options, seed, direction);
}

}  // namespace hpo::search::detail
