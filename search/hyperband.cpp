// Hyperband's brackets and the assignment of new trials to them (trial_scheduler.h).
#include <algorithm>

#include "search/trial_scheduler.h"

namespace hpo::search {

std::vector<Bracket> hyperband_brackets(const SchedulerSpec& spec) {
  const std::int64_t eta = std::max<std::int64_t>(spec.reduction_factor, 2);
  const std::int64_t min = std::max<std::int64_t>(spec.min_resource, 1);
  // s_max = floor(log_eta(max / min)), in integers: no rounding of a logarithm.
  int s_max = 0;
  for (std::int64_t r = min * eta; r <= spec.max_resource; r *= eta) ++s_max;
  std::vector<std::int64_t> power(static_cast<std::size_t>(s_max) + 1, 1);  // eta^i
  for (std::size_t i = 1; i < power.size(); ++i) power[i] = power[i - 1] * eta;

  std::vector<Bracket> out;
  for (int s = s_max; s >= 0; --s) {
    Bracket b;
    b.s = s;
    // n_s = ceil((s_max + 1) / (s + 1) * eta^s), exactly.
    const std::int64_t num = (s_max + 1) * power[static_cast<std::size_t>(s)];
    b.trials = (num + s) / (s + 1);
    const std::int64_t first = min * power[static_cast<std::size_t>(s_max - s)];
    for (int i = 0; i <= s; ++i) {
      Bracket::Rung rung;
      rung.trials = b.trials / power[static_cast<std::size_t>(i)];
      rung.resource = i == s ? spec.max_resource : first * power[static_cast<std::size_t>(i)];
      b.rungs.push_back(rung);
    }
    b.min_resource = b.rungs.front().resource;
    out.push_back(std::move(b));
  }
  return out;
}

std::vector<int> hyperband_cycle(const std::vector<Bracket>& brackets) {
  std::int64_t total = 0;
  for (const auto& b : brackets) total += b.trials;
  std::vector<int> cycle;
  cycle.reserve(static_cast<std::size_t>(total));
  // Smooth weighted round-robin (nginx): each turn every bracket gains its weight, the one
  // with the most credit (the first, i.e. larger s, on a tie) is chosen and pays the total.
  std::vector<std::int64_t> credit(brackets.size(), 0);
  for (std::int64_t turn = 0; turn < total; ++turn) {
    std::size_t pick = 0;
    for (std::size_t i = 0; i < brackets.size(); ++i) {
      credit[i] += brackets[i].trials;
      if (credit[i] > credit[pick]) pick = i;
    }
    credit[pick] -= total;
    cycle.push_back(static_cast<int>(pick));
  }
  return cycle;
}

}  // namespace hpo::search
