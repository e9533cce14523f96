#include "surrogate.h"

#include <cmath>
#include <fstream>
#include <limits>

namespace hpo::suite {

bool Surrogate::load(const std::string& path, Features features) {
  features_ = std::move(features);
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("value") || !j["value"].is_number()) continue;
    points_.push_back(features_(j["config"]));
    values_.push_back(j["value"].get<double>());
  }
  if (values_.size() < 5) return false;
  // Leave-one-out over a grid of bandwidths (in feature units, features in [0, 1]).
  double best_err = INFINITY;
  for (double h = 0.02; h <= 0.6; h *= 1.15) {
    double err = 0;
    for (std::size_t i = 0; i < values_.size(); ++i) {
      const double e = predict(points_[i], h, i) - values_[i];
      err += e * e;
    }
    err = std::sqrt(err / static_cast<double>(values_.size()));
    if (err < best_err) {
      best_err = err;
      bandwidth_ = h;
    }
  }
  loo_error_ = best_err;
  best_ = INFINITY;
  for (const auto& p : points_) best_ = std::min(best_, predict(p));
  return true;
}

double Surrogate::predict(const nlohmann::json& config) const {
  return predict(features_(config));
}

double Surrogate::predict(const std::vector<double>& x) const {
  return predict(x, bandwidth_, std::numeric_limits<std::size_t>::max());
}

double Surrogate::predict(const std::vector<double>& x, double h, std::size_t skip) const {
  // Weights relative to the nearest point, so a far config still gets its neighbours' mean.
  std::vector<double> d2(points_.size());
  double nearest = INFINITY;
  for (std::size_t i = 0; i < points_.size(); ++i) {
    double s = 0;
    for (std::size_t k = 0; k < x.size(); ++k) {
      const double u = x[k] - points_[i][k];
      s += u * u;
    }
    d2[i] = s;
    if (i != skip) nearest = std::min(nearest, s);
  }
  double num = 0, den = 0;
  for (std::size_t i = 0; i < points_.size(); ++i) {
    if (i == skip) continue;
    const double w = std::exp(-(d2[i] - nearest) / (2 * h * h));
    num += w * values_[i];
    den += w;
  }
  return num / den;
}

}  // namespace hpo::suite
