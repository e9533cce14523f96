#include "search/pruner.h"

#include <algorithm>
#include <cmath>

namespace hpo::search {

bool should_prune(const nlohmann::json& pruner, Direction direction, const History& history,
                  const TrialRecord& trial) {
  if (!pruner.is_object() || pruner.value("type", "none") != "median") return false;
  const auto warmup = pruner.value("warmup_steps", std::int64_t{0});
  const auto min_trials = std::max<std::int64_t>(1, pruner.value("min_trials", std::int64_t{5}));
  if (static_cast<std::int64_t>(trial.intermediates.size()) <= warmup) return false;

  const bool minimize = direction == Direction::kMinimize;
  const std::int64_t step = trial.intermediates.back().step;
  double best = minimize ? INFINITY : -INFINITY;
  for (const auto& i : trial.intermediates) {
    if (std::isnan(i.value)) return true;
    best = minimize ? std::min(best, i.value) : std::max(best, i.value);
  }

  std::vector<double> at_step;
  for (const auto& t : history) {
    if (t.state != TrialState::kCompleted || t.number == trial.number) continue;
    for (const auto& i : t.intermediates) {
      if (i.step == step && !std::isnan(i.value)) {
        at_step.push_back(i.value);
        break;
      }
    }
  }
  if (static_cast<std::int64_t>(at_step.size()) < min_trials) return false;
  std::sort(at_step.begin(), at_step.end());
  const std::size_t n = at_step.size();
  const double median = n % 2 ? at_step[n / 2] : 0.5 * (at_step[n / 2 - 1] + at_step[n / 2]);
  return minimize ? best > median : best < median;
}

bool should_prune(const StudySpec& spec, const History& history, const TrialRecord& trial) {
  return should_prune(spec.pruner, spec.direction, history, trial);
}

}  // namespace hpo::search
