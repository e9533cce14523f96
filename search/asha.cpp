// ASHA's rules over one set of rungs (trial_scheduler.h has the contract).
#include <algorithm>
#include <cmath>

#include "search/internal.h"
#include "search/trial_scheduler.h"

namespace hpo::search {
using detail::better;

Asha::Asha(std::vector<std::int64_t> rungs, std::int64_t max_resource,
           std::int64_t reduction_factor, Direction direction)
    : rungs_(std::move(rungs)),
      max_resource_(max_resource),
      eta_(std::max<std::int64_t>(reduction_factor, 2)),
      direction_(direction),
      results_(rungs_.size()) {}

bool Asha::in_top(std::size_t rung, std::int64_t trial) const {
  const auto& at = results_[rung];
  auto it = at.find(trial);
  if (it == at.end()) return false;
  const std::size_t top = at.size() / static_cast<std::size_t>(eta_);
  // The trial is in the top iff fewer than `top` results are better than it.
  std::size_t ahead = 0;
  for (const auto& other : at) {
    if (other.first != trial && better(direction_, other, *it) && ++ahead >= top) return false;
  }
  return ahead < top;
}

Decision Asha::report(std::int64_t trial, std::int64_t resource, double value) {
  status_.try_emplace(trial, TrialStatus::kRunning);
  Decision d;
  for (std::size_t k = 0; k < rungs_.size() && rungs_[k] <= resource; ++k) {
    if (results_[k].emplace(trial, value).second) d.rung = static_cast<int>(k);
  }
  if (resource >= max_resource_) {
    d.action = Action::kComplete;
    status_[trial] = TrialStatus::kEnded;
    return d;
  }
  if (d.rung >= 0 && !in_top(static_cast<std::size_t>(d.rung), trial)) {
    d.action = Action::kPause;
    status_[trial] = TrialStatus::kPaused;
  }
  return d;
}

std::vector<std::int64_t> Asha::promotable() const {
  std::vector<std::int64_t> out;
  const auto by_merit = [&](const auto& a, const auto& b) { return better(direction_, a, b); };
  for (std::size_t k = rungs_.size(); k-- > 0;) {
    std::vector<std::pair<std::int64_t, double>> at(results_[k].begin(), results_[k].end());
    const std::size_t top = at.size() / static_cast<std::size_t>(eta_);
    std::partial_sort(at.begin(), at.begin() + static_cast<std::ptrdiff_t>(top), at.end(),
                      by_merit);
    for (std::size_t i = 0; i < top; ++i) {
      // Paused here, not at a higher rung (where it is judged); a diverged trial never goes on.
      if (status(at[i].first) == TrialStatus::kPaused && !std::isnan(at[i].second) &&
          rung_of(at[i].first) == static_cast<int>(k)) {
        out.push_back(at[i].first);
      }
    }
  }
  return out;
}

void Asha::set_status(std::int64_t trial, TrialStatus status) { status_[trial] = status; }

TrialStatus Asha::status(std::int64_t trial) const {
  auto it = status_.find(trial);
  return it == status_.end() ? TrialStatus::kEnded : it->second;
}

int Asha::rung_of(std::int64_t trial) const {
  for (std::size_t k = results_.size(); k-- > 0;) {
    if (results_[k].count(trial)) return static_cast<int>(k);
  }
  return -1;
}

}  // namespace hpo::search
