#include "scheduler/study.h"

#include <algorithm>
#include <functional>
#include <map>

#include "search/config.h"
#include "search/pbt.h"
#include "search/pruner.h"

namespace hpo::scheduler {
namespace {

using search::Direction;
using search::TrialState;

bool better(Direction d, double a, double b) { return d == Direction::kMinimize ? a < b : a > b; }

}  // namespace

Result<std::unique_ptr<StudyRuntime>> StudyRuntime::load(
    results::Store& store, const results::StudyRow& row,
    const std::vector<RecoveringTrial>& recovering, double now) {
  auto spec = search::parse_study(row.spec, "study '" + row.name + "' in " + store.path());
  if (!spec) return std::unexpected(spec.error());
  std::unique_ptr<StudyRuntime> s(new StudyRuntime());
  s->id_ = row.id;
  s->created_ = row.created;
  if (auto u = s->update_spec(std::move(*spec)); !u) return std::unexpected(u.error());

  auto history = store.history(row.id);
  if (!history) return std::unexpected(history.error());
  auto rows = store.trials(row.id);
  if (!rows) return std::unexpected(rows.error());
  s->history_ = std::move(*history);
  const std::size_t n = s->history_.size();
  s->trial_ids_.assign(n, 0);
  s->attempts_.assign(n, 0);
  std::unordered_set<std::int64_t> recovering_numbers;
  for (const auto& r : recovering) recovering_numbers.insert(r.number);
  for (const auto& t : *rows) {
    if (t.number < 0 || static_cast<std::size_t>(t.number) >= n) {
      return fail("study '" + row.name + "': trial number " + std::to_string(t.number) +
                  " out of order in " + store.path());
    }
    s->trial_ids_[t.number] = t.id;
    s->attempts_[t.number] = t.attempt;
    if (t.parent && t.parent_step) s->lineage_[t.number] = {*t.parent, *t.parent_step};
    auto& rec = s->history_[t.number];
    switch (t.state) {
      case TrialState::kQueued:
        s->queue_.push_back(t.number);
        break;
      case TrialState::kRunning:  // cannot happen after mark_running_interrupted
      case TrialState::kInterrupted:
        if (recovering_numbers.count(t.number)) {
          rec.state = TrialState::kRunning;  // pending for the sampler until decided
          ++s->running_;
        } else {
          if (auto q = store.requeue_trial(t.id, now); !q) return std::unexpected(q.error());
          rec.state = TrialState::kQueued;
          s->queue_.push_back(t.number);
        }
        break;
      case TrialState::kFailed:
        s->failed_hashes_.insert(t.hash);
        break;
      case TrialState::kCompleted:
        if (t.value && (!s->best_ || better(s->spec_.direction, *t.value, *s->best_))) {
          s->best_ = t.value;
        }
        break;
      case TrialState::kPaused:
        s->paused_.insert(t.number);
        break;
      case TrialState::kPruned:
      case TrialState::kCancelled:
        break;
    }
  }
  std::sort(s->queue_.begin(), s->queue_.end());
  s->rebuild_schedule();
  return s;
}

Status StudyRuntime::update_spec(search::StudySpec spec) {
  auto sampler = search::make_sampler(spec);
  if (!sampler) return std::unexpected(sampler.error());
  spec_ = std::move(spec);
  sampler_ = std::move(*sampler);
  exhausted_ = false;
  rebuild_schedule();
  return {};
}

void StudyRuntime::rebuild_schedule() {
  std::vector<search::Observation> observations;
  std::map<std::int64_t, search::TrialStatus> status;
  for (const auto& t : history_) {
    for (const auto& im : t.intermediates) observations.push_back({t.number, im.step, im.value});
    switch (t.state) {
      case TrialState::kQueued:
      case TrialState::kRunning:
      case TrialState::kInterrupted:
        status[t.number] = search::TrialStatus::kRunning;
        break;
      case TrialState::kPaused:
        status[t.number] = search::TrialStatus::kPaused;
        break;
      default:
        status[t.number] = search::TrialStatus::kEnded;
    }
  }
  schedule_ = search::TrialScheduler::rebuild(spec_.schedule, spec_.direction, observations, status,
                                              lineage_);
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

bool StudyRuntime::target_reached() const {
  if (!spec_.target || !best_) return false;
  return spec_.direction == Direction::kMinimize ? *best_ <= *spec_.target
                                                 : *best_ >= *spec_.target;
}

bool StudyRuntime::time_up(double now) const {
  return spec_.max_seconds > 0 && now - created_ >= spec_.max_seconds;
}

bool StudyRuntime::can_lease(double now) const {
  if (running_ >= spec_.max_parallel) return false;
  if (target_reached() || time_up(now)) return false;
  if (!queue_.empty() || !promotable().empty() || exploit_ready()) return true;
  if (pbt() && sampled() >= spec_.schedule.population) return false;
  return !exhausted_ && static_cast<std::int64_t>(history_.size()) < spec_.max_trials;
}

bool StudyRuntime::ending(double now, std::string* why) const {
  const char* reason = nullptr;
  if (target_reached()) {
    reason = "target reached";
  } else if (time_up(now)) {
    reason = "time budget spent";
  }
  if (reason && why) *why = reason;
  return reason != nullptr;
}

bool StudyRuntime::finished(double now, std::string* why) const {
  if (running_ > 0) return false;
  std::string reason;
  if (!ending(now, &reason) && queue_.empty() && promotable().empty() &&
      schedule_.exploits().empty() &&
      (static_cast<std::int64_t>(history_.size()) >= spec_.max_trials || exhausted_ ||
       (pbt() && sampled() >= spec_.schedule.population))) {
    reason = exhausted_ ? "sampler exhausted" : "trial budget met";
  }
  if (reason.empty()) return false;
  if (why) *why = reason;
  return true;
}

Result<std::optional<std::int64_t>> StudyRuntime::next_trial(results::Store& store, double now) {
  if (!queue_.empty()) {
    std::int64_t number = queue_.front();
    queue_.pop_front();
    return number;
  }
  if (auto child = exploit(store, now); !child || *child) return child;
  if (auto promoted = promotable(); !promoted.empty()) {
    const std::int64_t number = promoted.front();
    paused_.erase(number);
    schedule_.set_status(number, search::TrialStatus::kRunning);
    history_[number].state = TrialState::kQueued;
    return number;
  }
  if (exhausted_ || static_cast<std::int64_t>(history_.size()) >= spec_.max_trials ||
      (pbt() && sampled() >= spec_.schedule.population)) {
    return std::optional<std::int64_t>();
  }
  const auto number = static_cast<std::int64_t>(history_.size());
  // A config whose trial failed for good is not suggested again: ask again
  // with a shifted number (a different, still deterministic, stream).
  std::optional<nlohmann::json> config;
  std::string hash;
  for (int k = 0; k < 8; ++k) {
    auto asked = sampler_->ask(sampler_history(), number + std::int64_t{k} * 1'000'003);
    if (!asked) return std::unexpected(asked.error());
    if (!*asked) {
      exhausted_ = true;
      return std::optional<std::int64_t>();
    }
    config = std::move(**asked);
    hash = search::config_hash(*config);
    if (failed_hashes_.empty() || !failed_hashes_.count(hash)) break;
  }
  auto id = store.add_trial(id_, number, *config, hash, now);
  if (!id) return std::unexpected(id.error());
  history_.push_back(search::TrialRecord{number, TrialState::kQueued, std::move(*config), {}, {}});
  trial_ids_.push_back(*id);
  attempts_.push_back(0);
  return number;
}

void StudyRuntime::started(std::int64_t number, std::int64_t attempt, bool resumed) {
  attempts_[number] = attempt;
  history_[number].state = TrialState::kRunning;
  history_[number].value.reset();
  if (!resumed) history_[number].intermediates.clear();
  schedule_.set_status(number, search::TrialStatus::kRunning);
  ++running_;
}

void StudyRuntime::readopted(std::int64_t number) { history_[number].state = TrialState::kRunning; }

StudyRuntime::Verdict StudyRuntime::reported(std::int64_t number, std::int64_t step,
                                             std::optional<double> objective) {
  auto& rec = history_[number];
  if (!objective) return Verdict::kContinue;
  auto& im = rec.intermediates;
  if (im.empty() || im.back().step < step) {
    im.push_back({step, *objective});
  } else {
    auto it =
        std::lower_bound(im.begin(), im.end(), step,
                         [](const search::Intermediate& i, std::int64_t s) { return i.step < s; });
    if (it != im.end() && it->step == step) {
      it->value = *objective;
    } else {
      im.insert(it, {step, *objective});
    }
  }
  if (pauses()) {
    const auto d = schedule_.report(number, step, *objective);
    return d.action == search::Action::kPause ? Verdict::kPause : Verdict::kContinue;
  }
  return search::should_prune(spec_, history_, rec) ? Verdict::kStop : Verdict::kContinue;
}

Result<std::optional<std::int64_t>> StudyRuntime::exploit(results::Store& store, double now) {
  if (!exploit_ready()) return std::optional<std::int64_t>();
  const search::Exploit e = schedule_.exploits().front();
  auto rng = search::explore_rng(spec_.seed, e.loser);
  auto made = search::explore(spec_.space, history_[e.parent].config,
                              spec_.schedule.resample_probability, rng);
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
  auto& loser = history_[e.loser];
  const std::optional<double> last =
      loser.intermediates.empty() ? std::nullopt
                                  : std::optional<double>(loser.intermediates.back().value);
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
  loser.state = TrialState::kPruned;
  loser.value = last;
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

void StudyRuntime::completed(std::int64_t number, std::optional<double> value,
                             search::TrialState state) {
  auto& rec = history_[number];
  rec.state = state;
  rec.value = value;
  if (state == TrialState::kCompleted && value &&
      (!best_ || better(spec_.direction, *value, *best_))) {
    best_ = value;
  }
  ended(number);
  --running_;
}

void StudyRuntime::failed(std::int64_t number) {
  history_[number].state = TrialState::kFailed;
  failed_hashes_.insert(search::config_hash(history_[number].config));
  ended(number);
  --running_;
}

void StudyRuntime::cancelled(std::int64_t number, bool was_running) {
  history_[number].state = TrialState::kCancelled;
  history_[number].value.reset();
  ended(number);
  if (was_running) --running_;
}

std::vector<std::int64_t> StudyRuntime::cancel_queued() {
  std::vector<std::int64_t> numbers(queue_.begin(), queue_.end());
  queue_.clear();
  for (auto n : numbers) cancelled(n, /*was_running=*/false);
  return numbers;
}

void StudyRuntime::requeued(std::int64_t number, bool front) {
  // The curve stays until the trial starts again: a run that resumes from a checkpoint keeps
  // it (started()), a fresh one clears it.
  history_[number].state = TrialState::kQueued;
  schedule_.set_status(number, search::TrialStatus::kRunning);
  if (front) {
    queue_.push_front(number);
  } else {
    queue_.push_back(number);
  }
  --running_;
}

}  // namespace hpo::scheduler
