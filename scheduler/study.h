// One study as the scheduler runs it: its spec, sampler, the History the
// sampler asks from (rebuilt from the store on start, then kept in memory),
// the trials waiting for a slot, and the budget arithmetic.
//
// Threads: owned and used by the scheduler's one loop thread.
// Store writes go through the caller's open Transaction (the daemon batches
// one loop turn in one transaction).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "results/store.h"
#include "search/sampler.h"
#include "search/study.h"
#include "search/trial_scheduler.h"
#include "search/trial.h"

namespace hpo::scheduler {

// A trial that was RUNNING when the scheduler (re)started: shown INTERRUPTED
// in the store, kept aside for the recovery window in case its agent
// re-announces it.
struct RecoveringTrial {
  std::int64_t number = 0;
  std::int64_t trial_id = 0;
  std::int64_t attempt = 0;
  std::string lease;
  std::string agent_key;  // the key its lease is bound to (trials.agent_key; "" on plaintext)
};

class StudyRuntime {
 public:
  // Builds the runtime of a stored study: parses its spec, makes the sampler,
  // reads the History. `recovering` are this study's trials that were RUNNING
  // at start (already marked INTERRUPTED); every other INTERRUPTED trial is
  // requeued here. Errors: a stored spec that no longer parses.
  static Result<std::unique_ptr<StudyRuntime>> load(results::Store& store,
                                                    const results::StudyRow& row,
                                                    const std::vector<RecoveringTrial>& recovering,
                                                    double now);

  // Replaces the spec (a raised budget); the sampler is rebuilt, the History kept.
  Status update_spec(search::StudySpec spec);

  std::int64_t id() const { return id_; }
  const std::string& name() const { return spec_.name; }
  const search::StudySpec& spec() const { return spec_; }
  const search::History& history() const { return history_; }

  // Whether a trial may be leased now (budget, max_parallel, not finished).
  bool can_lease(double now) const;

  // The next trial to lease: a requeued one first, then a paused one its trial scheduler
  // promotes (higher rungs first), else a new one from the sampler, stored QUEUED. nullopt
  // when none (budget spent, grid exhausted, nothing promotable). The caller then starts it.
  Result<std::optional<std::int64_t>> next_trial(results::Store& store, double now);

  // Bookkeeping of leases; the caller writes the store.
  // start: the trial becomes RUNNING under `attempt` (counts in max_parallel).
  std::int64_t trial_id(std::int64_t number) const { return trial_ids_[number]; }
  std::int64_t next_attempt(std::int64_t number) const { return attempts_[number] + 1; }
  // `resumed`: it goes on from a checkpoint, so the curve it reported so far stays.
  void started(std::int64_t number, std::int64_t attempt, bool resumed = false);
  // A recovering trial re-adopted (already counted in running).
  void readopted(std::int64_t number);
  // What the study says to an intermediate value of the objective: go on, stop (the pruner,
  // or the study's end), or pause (the trial scheduler: checkpoint and free the slot).
  enum class Verdict { kContinue, kStop, kPause };
  Verdict reported(std::int64_t number, std::int64_t step, std::optional<double> objective);
  // Whether the study has a trial scheduler (ASHA, Hyperband, PBT) that may pause its trials.
  bool pauses() const { return spec_.schedule.type != search::SchedulerType::kNone; }
  bool pbt() const { return spec_.schedule.type == search::SchedulerType::kPbt; }
  // PBT: the parent whose checkpoint a child made by an exploit starts from, once (the
  // dispatcher copies it before the child's first lease); nullopt for any other trial.
  std::optional<std::int64_t> take_checkpoint_copy(std::int64_t number);
  // A trial its scheduler paused has stopped running (its FINISH paused, or its run lost while
  // it was pausing): PAUSED until promoted; its place in max_parallel released.
  void paused(std::int64_t number);
  // The study ends (budget met with nothing left to promote, target reached, time up): the
  // trials still paused, now PRUNED here with their last value; the caller writes the store.
  std::vector<std::int64_t> end_paused();
  // The trial's rung (index and resource) in its trial scheduler: -1/0 for none.
  int rung_of(std::int64_t number) const { return schedule_.rung_of(number); }
  std::int64_t rung_resource(std::int64_t number) const { return schedule_.rung_resource(number); }
  // Trials that ended since the last call (their checkpoints may go).
  std::vector<std::int64_t> take_ended();
  // Terminal outcomes; each releases the trial's place in max_parallel.
  void completed(std::int64_t number, std::optional<double> value, search::TrialState state);
  void failed(std::int64_t number);  // out of retries: its config is not suggested again
  // Back in the queue (failure with retries left, interruption, agent lost,
  // recovery window over); releases its place in max_parallel.
  void requeued(std::int64_t number, bool front);
  // The study ended before `number` finished (StudyRuntime::ending): CANCELLED, its place in
  // max_parallel released when it was running.
  void cancelled(std::int64_t number, bool was_running);
  // Empties the queue (the study ended): the numbers that were waiting, now CANCELLED here;
  // the caller writes the store.
  std::vector<std::int64_t> cancel_queued();

  void add_recovering() { ++running_; }

  int running() const { return running_; }
  std::size_t trial_count() const { return history_.size(); }
  std::size_t queued() const { return queue_.size(); }
  std::size_t paused_count() const { return paused_.size(); }
  std::optional<double> best() const { return best_; }

  // The wall-time budget (max_seconds) is spent: running trials are told STOP.
  bool time_up(double now) const;

  // The study stops here whatever is left: its target is reached or its time budget spent.
  // `why` says which ("target reached", "time budget spent").
  bool ending(double now, std::string* why = nullptr) const;

  // The study has nothing left to do: budget met (every trial terminal),
  // target reached or time up, and nothing running. `why` says which.
  bool finished(double now, std::string* why = nullptr) const;
  bool marked_finished = false;  // the daemon recorded it (status "finished")

 private:
  StudyRuntime() = default;
  bool target_reached() const;
  // The paused trials the trial scheduler promotes now, in order.
  std::vector<std::int64_t> promotable() const;
  // The trial scheduler's state from the History (a start, a changed spec).
  void rebuild_schedule();
  // What the sampler learns from: the History, or with a trial scheduler the History seen at
  // one resource level (sampler_view's comment in study.cpp).
  const search::History& sampler_history();
  void ended(std::int64_t number);
  // Trials sampled from the space (PBT: its population), not made by an exploit.
  std::int64_t sampled() const {
    return static_cast<std::int64_t>(history_.size() - lineage_.size());
  }

  std::int64_t id_ = 0;
  double created_ = 0;
  search::StudySpec spec_;
  std::unique_ptr<search::Sampler> sampler_;
  search::History history_;
  search::TrialScheduler schedule_{search::SchedulerSpec{}, search::Direction::kMinimize};
  std::set<std::int64_t> paused_;     // numbers PAUSED (not running, not queued)
  std::vector<std::int64_t> ended_;   // ended since take_ended()
  search::History view_;              // sampler_history()'s storage
  std::map<std::int64_t, search::Lineage> lineage_;  // PBT: child -> parent, step
  std::map<std::int64_t, std::int64_t> copy_from_;   // PBT: child -> parent, not copied yet
  // PBT: carries out the first pending exploit: the child trial, stored QUEUED; the loser
  // ends PRUNED. nullopt when none is pending.
  Result<std::optional<std::int64_t>> exploit(results::Store& store, double now);
  // The first pending exploit can be carried out: its parent and its loser have stopped.
  bool exploit_ready() const;
  std::vector<std::int64_t> levels_;  // the schedule's rung resources and max_resource, descending
  std::vector<std::int64_t> trial_ids_;  // by number
  std::vector<std::int64_t> attempts_;   // by number: last attempt started
  std::deque<std::int64_t> queue_;       // numbers waiting for a slot
  std::unordered_set<std::string> failed_hashes_;
  int running_ = 0;  // leased + recovering
  bool exhausted_ = false;
  std::optional<double> best_;
};

}  // namespace hpo::scheduler
