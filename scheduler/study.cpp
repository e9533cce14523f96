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
      case TrialState::kPruned:
      case TrialState::kCancelled:
        break;
    }
  }
  std::sort(s->queue_.begin(), s->queue_.end());
  return s;
}

Status StudyRuntime::update_spec(search::StudySpec spec) {
  auto sampler = search::make_sampler(spec);
  if (!sampler) return std::unexpected(sampler.error());
  spec_ = std::move(spec);
  sampler_ = std::move(*sampler);
  exhausted_ = false;
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
  if (!queue_.empty()) return true;
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
  if (!ending(now, &reason) && queue_.empty() &&
      (static_cast<std::int64_t>(history_.size()) >= spec_.max_trials || exhausted_)) {
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
  if (exhausted_ || static_cast<std::int64_t>(history_.size()) >= spec_.max_trials) {
    return std::optional<std::int64_t>();
  }
  const auto number = static_cast<std::int64_t>(history_.size());
  // A config whose trial failed for good is not suggested again: ask again
  // with a shifted number (a different, still deterministic, stream).
  std::optional<nlohmann::json> config;
  std::string hash;
  for (int k = 0; k < 8; ++k) {
    auto asked = sampler_->ask(history_, number + std::int64_t{k} * 1'000'003);
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

void StudyRuntime::started(std::int64_t number, std::int64_t attempt) {
  attempts_[number] = attempt;
  history_[number].state = TrialState::kRunning;
  history_[number].value.reset();
  history_[number].intermediates.clear();
  ++running_;
}

void StudyRuntime::readopted(std::int64_t number) { history_[number].state = TrialState::kRunning; }

bool StudyRuntime::reported(std::int64_t number, std::int64_t step,
                            std::optional<double> objective) {
  auto& rec = history_[number];
  if (!objective) return false;
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
  return search::should_prune(spec_, history_, rec);
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
  --running_;
}

void StudyRuntime::failed(std::int64_t number) {
  history_[number].state = TrialState::kFailed;
  failed_hashes_.insert(search::config_hash(history_[number].config));
  --running_;
}

void StudyRuntime::cancelled(std::int64_t number, bool was_running) {
  history_[number].state = TrialState::kCancelled;
  history_[number].value.reset();
  if (was_running) --running_;
}

std::vector<std::int64_t> StudyRuntime::cancel_queued() {
  std::vector<std::int64_t> numbers(queue_.begin(), queue_.end());
  queue_.clear();
  for (auto n : numbers) cancelled(n, /*was_running=*/false);
  return numbers;
}

void StudyRuntime::requeued(std::int64_t number, bool front) {
  history_[number].state = TrialState::kQueued;
  history_[number].intermediates.clear();
  if (front) {
    queue_.push_front(number);
  } else {
    queue_.push_back(number);
  }
  --running_;
}

}  // namespace hpo::scheduler
