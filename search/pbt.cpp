// Synchronous PBT's generations, rankings and exploits (pbt.h has the contract).
#include "search/pbt.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "search/internal.h"

namespace hpo::search {

namespace {
constexpr std::uint64_t kParentSalt = 0x9b7e0001ull;
}  // namespace

Pbt::Pbt(const SchedulerSpec& spec, Direction direction) : spec_(spec), direction_(direction) {
  spec_.population = std::max<std::int64_t>(spec_.population, 1);
}

std::int64_t Pbt::boundary(std::int64_t step) const {
  const std::int64_t k = spec_.perturbation_interval;
  if (k <= 0 || step < k) return 0;
  const std::int64_t below_max = ((spec_.max_resource - 1) / k) * k;
  return std::min((step / k) * k, below_max);
}

std::int64_t Pbt::generation_step(std::int64_t trial) const {
  auto it = results_.find(trial);
  if (it == results_.end() || it->second.empty()) return 0;
  return boundary(it->second.rbegin()->first);
}

Decision Pbt::report(std::int64_t trial, std::int64_t step, double value) {
  if (!status_.count(trial) && !lineage_.count(trial)) {
    status_[trial] = TrialStatus::kRunning;
    ++sampled_;
  }
  const std::int64_t before = generation_step(trial);
  results_[trial].emplace(step, value);
  Decision d;
  if (step >= spec_.max_resource) {
    d.action = Action::kComplete;
    status_[trial] = TrialStatus::kEnded;
  } else if (const std::int64_t after = generation_step(trial); after > before) {
    d.action = Action::kPause;
    d.rung = static_cast<int>(after / spec_.perturbation_interval - 1);
    status_[trial] = TrialStatus::kPaused;
  }
  advance();
  return d;
}

std::vector<std::pair<std::int64_t, double>> Pbt::ranked(std::int64_t g) const {
  const std::int64_t step = g * spec_.perturbation_interval;
  std::vector<std::pair<std::int64_t, double>> out;
  for (const auto& [trial, steps] : results_) {
    // A child adopted at this generation (or later) only holds a copy of its parent's value.
    if (auto l = lineage_.find(trial); l != lineage_.end() && l->second.step >= step) continue;
    if (auto at = steps.lower_bound(step); at != steps.end()) out.emplace_back(trial, at->second);
  }
  std::sort(out.begin(), out.end(),
            [&](const auto& a, const auto& b) { return detail::better(direction_, a, b); });
  return out;
}

std::vector<Exploit> Pbt::plan(std::int64_t g) const {
  const auto rank = ranked(g);
  const auto n = static_cast<std::int64_t>(rank.size());
  auto m = static_cast<std::int64_t>(std::ceil(spec_.quantile * static_cast<double>(n) - 1e-9));
  if (n >= 2) m = std::max<std::int64_t>(m, 1);
  m = std::min(m, n / 2);
  std::vector<Exploit> out;
  auto rng = detail::make_rng(spec_.seed, g, kParentSalt);
  for (std::int64_t i = 0; i < m; ++i) {
    const auto parent = detail::uniform_index(rng, static_cast<std::uint64_t>(m));
    out.push_back({rank[static_cast<std::size_t>(n - 1 - i)].first,
                   rank[static_cast<std::size_t>(parent)].first, g * spec_.perturbation_interval});
  }
  return out;
}

bool Pbt::generation_ready(std::int64_t g) const {
  const std::int64_t step = g * spec_.perturbation_interval;
  if (g < 1 || step >= spec_.max_resource || sampled_ < spec_.population) return false;
  bool any = false;
  for (const auto& [trial, s] : status_) {
    if (s == TrialStatus::kEnded) continue;
    if (s != TrialStatus::kPaused || generation_step(trial) < step) return false;
    any = true;
  }
  return any;
}

void Pbt::advance() {
  while (generation_ready(completed_ + 1)) ++completed_;
}

std::vector<Exploit> Pbt::exploits() const {
  std::vector<Exploit> out;
  for (std::int64_t g = 1; g <= completed_; ++g) {
    for (const auto& e : plan(g)) {
      if (!replaced_.count(e.loser)) out.push_back(e);
    }
  }
  return out;
}

std::vector<std::int64_t> Pbt::promotable() const {
  std::map<std::int64_t, std::set<std::int64_t>> losers;  // generation -> its losers
  std::vector<std::int64_t> out;
  for (const auto& [trial, s] : status_) {
    if (s != TrialStatus::kPaused) continue;
    const std::int64_t g =
        generation_step(trial) / std::max<std::int64_t>(spec_.perturbation_interval, 1);
    if (g < 1 || g > completed_) continue;
    if (!losers.count(g)) {
      auto& set = losers[g];
      for (const auto& e : plan(g)) set.insert(e.loser);
    }
    if (!losers[g].count(trial)) out.push_back(trial);
  }
  return out;
}

bool Pbt::adopt(std::int64_t child, std::int64_t parent, std::int64_t step) {
  if (status_.count(child) && !lineage_.count(child)) --sampled_;  // it was counted as sampled
  lineage_[child] = {parent, step};
  status_[child] = TrialStatus::kRunning;
  auto& own = results_[child];
  if (auto p = results_.find(parent); p != results_.end()) {
    for (auto it = p->second.begin(); it != p->second.end() && it->first <= step; ++it) {
      own.emplace(it->first, it->second);
    }
  }
  bool matched = false;
  for (const auto& e : exploits()) {
    if (e.parent == parent && e.step == step) {
      replaced_[e.loser] = child;
      status_[e.loser] = TrialStatus::kEnded;
      matched = true;
      break;
    }
  }
  advance();
  return matched;
}

void Pbt::set_status(std::int64_t trial, TrialStatus status) {
  if (!status_.count(trial) && !lineage_.count(trial)) ++sampled_;
  status_[trial] = status;
  advance();
}

TrialStatus Pbt::status(std::int64_t trial) const {
  auto it = status_.find(trial);
  return it == status_.end() ? TrialStatus::kEnded : it->second;
}

Pbt Pbt::rebuild(const SchedulerSpec& spec, Direction direction,
                 const std::vector<Observation>& observations,
                 const std::map<std::int64_t, TrialStatus>& status,
                 const std::map<std::int64_t, Lineage>& lineage) {
  Pbt out(spec, direction);
  const std::int64_t k = std::max<std::int64_t>(spec.perturbation_interval, 1);
  out.lineage_ = lineage;
  for (const auto& o : observations) out.results_[o.trial].emplace(o.resource, o.value);
  // Children in creation order, each after its parent, take the parent's results.
  for (const auto& [child, from] : lineage) {
    if (auto p = out.results_.find(from.parent); p != out.results_.end()) {
      auto copy = p->second;
      auto& own = out.results_[child];
      for (auto it = copy.begin(); it != copy.end() && it->first <= from.step; ++it) {
        own.emplace(it->first, it->second);
      }
    }
  }
  for (const auto& [trial, steps] : out.results_) out.status_[trial] = TrialStatus::kEnded;
  for (const auto& [trial, s] : status) out.status_[trial] = s;
  // Generations that completed while some member runs: a child exists only for a completed
  // generation, and a member paused at g·K runs again only once g completed. (When every
  // member is paused or ended, advance() finds the completed generations itself.)
  for (const auto& [child, from] : lineage)
    out.completed_ = std::max(out.completed_, from.step / k);
  for (const auto& [trial, s] : out.status_) {
    if (s == TrialStatus::kRunning) {
      out.completed_ = std::max(out.completed_, out.generation_step(trial) / k);
    }
  }
  for (const auto& [trial, s] : out.status_) out.sampled_ += lineage.count(trial) ? 0 : 1;
  for (const auto& [child, from] : lineage) {
    out.status_.try_emplace(child, TrialStatus::kEnded);
    for (const auto& e : out.exploits()) {
      if (e.parent == from.parent && e.step == from.step) {
        out.replaced_[e.loser] = child;
        out.status_[e.loser] = TrialStatus::kEnded;
        break;
      }
    }
  }
  out.advance();
  return out;
}

TrialScheduler::PbtBox::PbtBox() = default;
TrialScheduler::PbtBox::PbtBox(std::unique_ptr<Pbt> p) : pbt(std::move(p)) {}
TrialScheduler::PbtBox::PbtBox(const PbtBox& other)
    : pbt(other.pbt ? std::make_unique<Pbt>(*other.pbt) : nullptr) {}
TrialScheduler::PbtBox::PbtBox(PbtBox&& other) noexcept = default;
TrialScheduler::PbtBox& TrialScheduler::PbtBox::operator=(const PbtBox& other) {
  if (this != &other) pbt = other.pbt ? std::make_unique<Pbt>(*other.pbt) : nullptr;
  return *this;
}
TrialScheduler::PbtBox& TrialScheduler::PbtBox::operator=(PbtBox&& other) noexcept = default;
TrialScheduler::PbtBox::~PbtBox() = default;

}  // namespace hpo::search
