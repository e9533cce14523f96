#include "scheduler/study.h"

#include <algorithm>

#include "search/config.h"
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
