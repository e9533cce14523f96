// The trial-scheduler side of a study's runtime (study.h): ASHA, Hyperband and PBT's state
// rebuilt from the History, what the sampler learns from under them, promotions, PBT's
// exploits, and the paused trials' bookkeeping. Split from study.cpp, which keeps the budget,
// the queue and the outcomes.
#include <algorithm>
#include <functional>
#include <map>

#include "scheduler/study.h"
#include "search/config.h"
#include "search/pbt.h"

namespace hpo::scheduler {

using search::TrialState;

void StudyRuntime::rebuild_schedule() {
  schedule_ = search::TrialScheduler::rebuild(spec_.schedule, spec_.direction, history_, lineage_);
  levels_.clear();
  const auto& sch = spec_.schedule;
  if (sch.type == search::SchedulerType::kHyperband) {
    for (const auto& b : search::hyperband_brackets(sch)) {
      for (const auto& r : b.rungs) levels_.push_back(r.resource);
    }
  } else if (sch.type == search::SchedulerType::kAsha) {
    levels_ = search::rung_resources(sch.min_resource, sch.max_resource, sch.reduction_factor);
  }
  levels_.push_back(sch.max_resource);
  std::sort(levels_.begin(), levels_.end(), std::greater<>());
  levels_.erase(std::unique(levels_.begin(), levels_.end()), levels_.end());
}

// With a trial scheduler most trials never reach the end, so a sampler that learns from
// finished trials only (TPE) would learn from few. As BOHB does (Falkner et al. 2018, "BOHB:
// Robust and Efficient Hyperparameter Optimization at Scale"), the sampler sees the study at
// one resource level: the highest rung (or max_resource) at which at least `startup_trials`
// trials (the sampler's option; 10 when it has none) have a result. There a trial with a
// result is COMPLETED with it (its first report at or past the level); a running, queued or
// promoted one is pending; one that stopped below the level (paused there and not promoted,
// pruned) counts as PRUNED, i.e. worse; the rest are as they are.
const search::History& StudyRuntime::sampler_history() {
  if (!pauses()) return history_;
  const std::int64_t need =
      std::max<std::int64_t>(1, spec_.sampler.value("startup_trials", std::int64_t{10}));
  auto result_at = [](const search::TrialRecord& t,
                      std::int64_t level) -> std::optional<double> {
    for (const auto& im : t.intermediates) {
      if (im.step >= level) return im.value;
    }
    return std::nullopt;
  };
  std::int64_t level = levels_.empty() ? 1 : levels_.back();
  for (std::int64_t candidate : levels_) {
    std::int64_t n = 0;
    for (const auto& t : history_) n += result_at(t, candidate).has_value();
    if (n >= need) {
      level = candidate;
      break;
    }
  }
  for (std::size_t i = view_.size(); i < history_.size(); ++i) view_.push_back(history_[i]);
  for (std::size_t i = 0; i < history_.size(); ++i) {
    const auto& t = history_[i];
    auto& v = view_[i];
    v.state = t.state;
    v.value = t.value;
    if (auto r = result_at(t, level)) {
      v.state = TrialState::kCompleted;
      v.value = r;
    } else if (t.state == TrialState::kPaused ||
               (t.state == TrialState::kPruned && !t.intermediates.empty())) {
      v.state = TrialState::kPruned;
    }
  }
  return view_;
}

std::vector<std::int64_t> StudyRuntime::promotable() const {
  std::vector<std::int64_t> out;
  if (!pauses() || paused_.empty()) return out;
  // PBT: a generation's exploits come first; a parent resumed before its checkpoint is copied
  // would be gone from paused_, and its exploit never ready.
  if (pbt() && !schedule_.exploits().empty()) return out;
  // A trial told to pause is kPaused in the schedule while it still runs (its lease is alive):
  // only one that has stopped (in paused_) can be resumed.
  for (auto n : schedule_.promotable()) {
    if (paused_.count(n)) out.push_back(n);
  }
  return out;
}

Result<std::optional<std::int64_t>> StudyRuntime::exploit(results::Store& store, double now) {
  if (!exploit_ready()) return std::optional<std::int64_t>();
  const search::Exploit e = schedule_.exploits().front();
  auto rng = search::explore_rng(spec_.seed, e.loser);
  auto made = search::explore(spec_.space, history_[e.parent].config,
                              spec_.schedule.resample_probability, rng,
                              search::mutable_dimensions(spec_.schedule.mutations));
  const auto number = static_cast<std::int64_t>(history_.size());
  const std::string hash = search::config_hash(made.config);
  auto id = store.add_trial(id_, number, made.config, hash, now);
  if (!id) return std::unexpected(id.error());
  if (auto r = store.inherit(*id, trial_ids_[e.parent], e.parent, e.step); !r) {
    return std::unexpected(r.error());
  }
  const auto& parent = history_[e.parent];
  std::vector<search::Intermediate> curve;
  for (const auto& im : parent.intermediates) {
    if (im.step <= e.step) curve.push_back(im);
  }
  const std::string why = "replaced by trial " + std::to_string(number) + " (exploit of trial " +
                          std::to_string(e.parent) + " at step " + std::to_string(e.step) + ")";
  const auto& loser_curve = history_[e.loser].intermediates;
  const std::optional<double> last =
      loser_curve.empty() ? std::nullopt : std::optional<double>(loser_curve.back().value);
  if (auto r = store.finish_trial(trial_ids_[e.loser], TrialState::kPruned, last, why, "", now);
      !r) {
    return std::unexpected(r.error());
  }
  if (auto r = store.append_event(id_, *id, "pbt_exploit",
                                  nlohmann::json{{"parent", e.parent},
                                                 {"loser", e.loser},
                                                 {"child", number},
                                                 {"step", e.step},
                                                 {"changed", made.changed}},
                                  now);
      !r) {
    return std::unexpected(r.error());
  }
  history_.push_back(
      search::TrialRecord{number, TrialState::kQueued, std::move(made.config), {}, curve});
  trial_ids_.push_back(*id);
  attempts_.push_back(0);
  lineage_[number] = {e.parent, e.step};
  copy_from_[number] = e.parent;
  paused_.erase(e.loser);
  // By index: the push_back above may have moved the History (a reference would dangle).
  history_[e.loser].state = TrialState::kPruned;
  history_[e.loser].value = last;
  ended_.push_back(e.loser);
  schedule_.adopt(number, e.parent, e.step);
  return std::optional<std::int64_t>(number);
}

bool StudyRuntime::exploit_ready() const {
  // The schedule counts a member paused when it is told to pause; its checkpoint is final once
  // its run has stopped (paused_): the parent's is copied, the loser's deleted.
  const auto pending = schedule_.exploits();
  return !pending.empty() && paused_.count(pending.front().parent) &&
         paused_.count(pending.front().loser);
}

std::optional<std::int64_t> StudyRuntime::take_checkpoint_copy(std::int64_t number) {
  auto it = copy_from_.find(number);
  if (it == copy_from_.end()) return std::nullopt;
  const std::int64_t parent = it->second;
  copy_from_.erase(it);
  return parent;
}

void StudyRuntime::paused(std::int64_t number) {
  auto& rec = history_[number];
  rec.state = TrialState::kPaused;
  rec.value = rec.intermediates.empty() ? std::nullopt
                                        : std::optional<double>(rec.intermediates.back().value);
  schedule_.set_status(number, search::TrialStatus::kPaused);
  paused_.insert(number);
  --running_;
}

std::vector<std::int64_t> StudyRuntime::end_paused() {
  std::vector<std::int64_t> numbers(paused_.begin(), paused_.end());
  paused_.clear();
  for (auto n : numbers) {
    history_[n].state = TrialState::kPruned;
    ended(n);
  }
  return numbers;
}

void StudyRuntime::ended(std::int64_t number) {
  schedule_.set_status(number, search::TrialStatus::kEnded);
  ended_.push_back(number);
}

std::vector<std::int64_t> StudyRuntime::take_ended() {
  std::vector<std::int64_t> out;
  out.swap(ended_);
  return out;
}

}  // namespace hpo::scheduler
