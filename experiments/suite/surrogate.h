// A surrogate of a real landscape: the results of real Fashion-MNIST trials that hpo recorded
// (experiments/suite/collect has the studies, export_surrogate_data.sh turns a store into the
// data file), smoothed by Gaussian-kernel regression (Nadaraya-Watson) over hand-made features
// of the config scaled to [0, 1]. The bandwidth is chosen by leave-one-out error on the data, so
// the surrogate follows the data as closely as it can predict it. A config far from every
// recorded trial gets the mean of its nearest ones: the landscape stays real, never invented.
#pragma once

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace hpo::suite {

using Features = std::function<std::vector<double>(const nlohmann::json& config)>;

class Surrogate {
 public:
  // Reads `path` (JSON lines {"config": ..., "value": ...}); false when it is missing or empty.
  bool load(const std::string& path, Features features);
  double predict(const nlohmann::json& config) const;
  double predict(const std::vector<double>& x) const;
  // The smallest prediction at the recorded configs: the suite's optimum for this problem.
  double best() const { return best_; }
  std::size_t size() const { return values_.size(); }
  double bandwidth() const { return bandwidth_; }
  double lowest() const { return *std::min_element(values_.begin(), values_.end()); }
  double highest() const { return *std::max_element(values_.begin(), values_.end()); }
  double loo_error() const { return loo_error_; }  // leave-one-out RMSE at that bandwidth

 private:
  double predict(const std::vector<double>& x, double bandwidth, std::size_t skip) const;

  Features features_;
  std::vector<std::vector<double>> points_;
  std::vector<double> values_;
  double bandwidth_ = 0.1, best_ = 0, loo_error_ = 0;
};

}  // namespace hpo::suite
