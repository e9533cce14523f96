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
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "results/store.h"
#include "search/sampler.h"
#include "search/study.h"
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

  // The next trial to lease: a requeued one first, else a new one from the
  // sampler, stored QUEUED. nullopt when none (budget spent, grid exhausted).
  // The caller then starts it (start()).
  Result<std::optional<std::int64_t>> next_trial(results::Store& store, double now);

  // Bookkeeping of leases; the caller writes the store.
  // start: the trial becomes RUNNING under `attempt` (counts in max_parallel).
  std::int64_t trial_id(std::int64_t number) const { return trial_ids_[number]; }
  std::int64_t next_attempt(std::int64_t number) const { return attempts_[number] + 1; }
  void started(std::int64_t number, std::int64_t attempt);
  // A recovering trial re-adopted (already counted in running).
  void readopted(std::int64_t number);
  // An intermediate value of the objective; returns whether the pruner stops it.
  bool reported(std::int64_t number, std::int64_t step, std::optional<double> objective);
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

  std::int64_t id_ = 0;
  double created_ = 0;
  search::StudySpec spec_;
  std::unique_ptr<search::Sampler> sampler_;
  search::History history_;
  std::vector<std::int64_t> trial_ids_;  // by number
  std::vector<std::int64_t> attempts_;   // by number: last attempt started
  std::deque<std::int64_t> queue_;       // numbers waiting for a slot
  std::unordered_set<std::string> failed_hashes_;
  int running_ = 0;  // leased + recovering
  bool exhausted_ = false;
  std::optional<double> best_;
};

}  // namespace hpo::scheduler
