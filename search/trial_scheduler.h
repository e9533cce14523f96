// Trial schedulers: the multi-fidelity rules that decide, each time a trial
// reports its objective after some resource (epochs), whether it goes on, waits
// (PAUSED, to be promoted later) or is done. Pure, like the samplers and the
// pruner: no I/O, no clock; the daemon applies the decisions.
//
// The study file's "scheduler" object (the default is {"type": "none"}):
//   {"type": "asha", "resource": "epoch", "min_resource": 1, "max_resource": 27,
//    "reduction_factor": 3}
//   {"type": "hyperband", ... the same fields}
// resource: "epoch" only, the step number of a trial's reports; min_resource
// (default 1) and reduction_factor η (default 3, at least 2) are optional,
// max_resource (the epochs a trial runs to) is required.
//   {"type": "pbt", "resource": "epoch", "max_resource": 20, "perturbation_interval": 4,
//    "population": 8, "quantile": 0.25, "resample_probability": 0.25,
//    "mutations": ["solver.lr", "solver.momentum"]}
// max_resource and perturbation_interval K (1 <= K < max_resource) are required;
// population defaults to 0, which means the study's budget.max_parallel (the daemon
// fills it in); quantile q in (0, 0.5] and resample_probability p in [0, 1]
// default to 0.25; mutations (parameter names, pbt.h's mutable_dimensions) defaults to
// every float parameter. pbt.h has the rules.
//
// ASHA (asynchronous successive halving, Li et al. 2018, "A System for
// Massively Parallel Hyperparameter Tuning"): rungs at min_resource·η^k below
// max_resource. A trial's result at a rung is its first report at or beyond the
// rung's resource. With n results at a rung, its "top" are the ⌊n/η⌋ best of
// them (ties: the lower trial number first; NaN is worst and never in a top).
// A trial that reports at a rung goes on when it is in that rung's top, else
// it is PAUSED (so the first η−1 results at a rung always wait). As the
// rung fills, a paused trial that enters its rung's top becomes promotable:
// the next free slot resumes it (promotable() lists them, higher rungs first,
// then best first), before any new trial. A report at max_resource or beyond
// completes the trial. Between rungs a trial goes on.
//
// Hyperband (Li et al. 2017, asynchronous as in the ASHA paper and Ray Tune's
// and Optuna's Hyperband): s_max = ⌊log_η(max_resource / min_resource)⌋;
// bracket s = s_max..0 is an ASHA of its own (its trials are compared only
// with each other) with s rungs, at min_resource·η^(s_max−s+i) for i < s;
// bracket 0 runs every trial to max_resource.
// In the synchronous algorithm bracket s starts n_s = ⌈(s_max+1)/(s+1)·η^s⌉
// trials; a new trial's bracket follows those proportions: trial number t goes
// to the bracket chosen at step t mod N (N = Σ n_s) of a smooth weighted
// round-robin over the brackets with weights n_s (nginx's; ties go to the
// larger s). So every N consecutive trials hold exactly n_s of bracket s,
// interleaved, and trial 0 starts in the most aggressive bracket.
//
// Restart: the state is a function of each trial's reports (its first result
// at each rung) and its status (running, paused, ended), never of the order in
// which trials reported, so rebuild() from the store gives the decisions the
// live object would have given.
//
// For the daemon (not wired in yet): on kPause it pauses the trial (PAUSED in
// the store); a slot that asks for work resumes promotable().front(), after
// set_status(kRunning), before it asks the sampler for a new trial; once the
// trial budget is spent, the study ends when nothing runs and nothing is
// promotable, and its still-paused trials end then (they would never be
// promoted).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "search/trial.h"

namespace hpo::search {

enum class SchedulerType { kNone, kAsha, kHyperband, kPbt };

struct SchedulerSpec {
  SchedulerType type = SchedulerType::kNone;
  std::int64_t min_resource = 1;      // the first rung (Hyperband: of its most aggressive bracket)
  std::int64_t max_resource = 1;      // a trial that reaches it is complete
  std::int64_t reduction_factor = 3;  // η: a rung promotes its best 1/η
  // PBT (pbt.h):
  std::int64_t perturbation_interval = 0;  // K: a generation every K epochs, below max_resource
  std::int64_t population = 0;             // members; 0 = the study's budget.max_parallel
  double quantile = 0.25;                  // q: the bottom q are replaced by copies of the top q
  double resample_probability = 0.25;      // explore: resample a parameter instead of ×0.8/×1.2
  std::vector<std::string> mutations{};    // explore may change these ({}: every float; pbt.h)
  std::uint64_t seed = 0;                  // the study's seed (not in the object: the daemon's)
};

// Checks a "scheduler" object and fills its defaults, as normalize_pruner does; `where`
// prefixes errors, e.g. "s.json: scheduler" gives
// "s.json: scheduler.min_resource: must be an integer in [1, 1000000] (got 0)".
Result<nlohmann::json> normalize_scheduler(const nlohmann::json& scheduler, std::string_view where);
// The same, read into a SchedulerSpec.
Result<SchedulerSpec> parse_scheduler(const nlohmann::json& scheduler, std::string_view where);

// The rung resources of an ASHA from `min_resource`: min·η^k < max, ascending.
std::vector<std::int64_t> rung_resources(std::int64_t min_resource, std::int64_t max_resource,
                                         std::int64_t reduction_factor);

// One Hyperband bracket and its synchronous schedule (Li et al. 2017, Table 1).
struct Bracket {
  int s = 0;                      // s_max: the most aggressive; 0: every trial runs to the end
  std::int64_t trials = 0;        // n_s: its share of new trials
  std::int64_t min_resource = 0;  // r_s = min_resource·η^(s_max−s); max_resource for s = 0
  struct Rung {
    std::int64_t trials = 0;    // n_i = ⌊n_s·η^−i⌋
    std::int64_t resource = 0;  // r_s·η^i, and max_resource for the last (i = s)
  };
  std::vector<Rung> rungs;  // i = 0..s
};
// Brackets s = s_max down to 0. Requires a parsed spec.
std::vector<Bracket> hyperband_brackets(const SchedulerSpec& spec);

// The bracket (an index into `brackets`) of trial number t is element t mod N of this
// cycle of N = Σ n_s entries: the smooth weighted round-robin described above.
std::vector<int> hyperband_cycle(const std::vector<Bracket>& brackets);

// What the scheduler says to a trial's report.
enum class Action {
  kContinue,  // run on (not at a rung, or in the rung's top)
  kPause,     // checkpoint and free the slot; promotable() says when to resume
  kComplete,  // reached max_resource: the trial is done
};

struct Decision {
  Action action = Action::kContinue;
  int rung = -1;  // index of the rung this report was the result for, -1 for none
};

// A trial's state as a scheduler sees it. kRunning also covers a promoted trial
// that waits for a slot; kEnded is any end (completed, pruned, failed, cancelled).
enum class TrialStatus { kRunning, kPaused, kEnded };

// One reported objective value, as the store keeps them.
struct Observation {
  std::int64_t trial = 0;
  std::int64_t resource = 0;  // the report's step
  double value = 0;
};

// The ASHA rules over one set of rungs. Not thread-safe.
class Asha {
 public:
  // `rungs` ascending and below max_resource (may be empty: every trial runs to the end).
  Asha(std::vector<std::int64_t> rungs, std::int64_t max_resource, std::int64_t reduction_factor,
       Direction direction);

  // `trial` reported `value` after `resource`. Records it as the trial's result at every
  // rung it reaches for the first time (a later report at a recorded rung changes nothing);
  // the decision is taken at the highest such rung. kPause marks the trial paused, kComplete
  // ended; an unknown trial starts running.
  Decision report(std::int64_t trial, std::int64_t resource, double value);

  // Paused trials now in their rung's top, in the order to resume them.
  std::vector<std::int64_t> promotable() const;

  // The caller's changes: resumed (kRunning), ended, or a status read from the store.
  void set_status(std::int64_t trial, TrialStatus status);
  TrialStatus status(std::int64_t trial) const;  // kEnded for an unknown trial

  // The highest rung index the trial has a result at, -1 for none.
  int rung_of(std::int64_t trial) const;
  const std::vector<std::int64_t>& rungs() const { return rungs_; }

 private:
  bool in_top(std::size_t rung, std::int64_t trial) const;
  std::vector<std::int64_t> rungs_;
  std::int64_t max_resource_;
  std::int64_t eta_;
  Direction direction_;
  std::vector<std::map<std::int64_t, double>> results_;  // per rung: trial -> value
  std::map<std::int64_t, TrialStatus> status_;
};

// PBT: one exploit for the daemon to carry out (pbt.h): the child it creates takes
// `loser`'s place, starting from `parent`'s checkpoint at `step` (= g·K).
struct Exploit {
  std::int64_t loser = 0;
  std::int64_t parent = 0;
  std::int64_t step = 0;
  bool operator==(const Exploit&) const = default;
};

// PBT: where a child came from, as the store keeps it (child -> this).
struct Lineage {
  std::int64_t parent = 0;
  std::int64_t step = 0;  // the parent's checkpoint step the child starts from
};

class Pbt;  // pbt.h

// The scheduler of one study: none, one ASHA, Hyperband's brackets, or a PBT population.
class TrialScheduler {
 public:
  TrialScheduler(const SchedulerSpec& spec, Direction direction);

  // The state after `observations` (in the store's order) with each trial's `status`
  // (a trial that has observations but no status counts as ended) and, for PBT, each
  // child's `lineage` (ignored by the other types).
  static TrialScheduler rebuild(const SchedulerSpec& spec, Direction direction,
                                const std::vector<Observation>& observations,
                                const std::map<std::int64_t, TrialStatus>& status,
                                const std::map<std::int64_t, Lineage>& lineage = {});
  // The same from a study's history: each trial's intermediate values in order, and its
  // status from its state (queued, running or interrupted: running; paused: paused; any
  // other: ended). The daemon's restart and the read side's rungs both come from here.
  static TrialScheduler rebuild(const SchedulerSpec& spec, Direction direction,
                                const History& history,
                                const std::map<std::int64_t, Lineage>& lineage = {});

  // As Asha::report, in the trial's bracket. With type none: always kContinue.
  Decision report(std::int64_t trial, std::int64_t resource, double value);
  // Every bracket's promotable trials: those paused at a higher resource first, then by
  // bracket (larger s first), then in the bracket's order.
  std::vector<std::int64_t> promotable() const;
  void set_status(std::int64_t trial, TrialStatus status);
  TrialStatus status(std::int64_t trial) const;

  // PBT (Pbt::exploits, Pbt::adopt); empty and false for the other types.
  std::vector<Exploit> exploits() const;
  bool adopt(std::int64_t child, std::int64_t parent, std::int64_t step);

  // The trial's bracket: an index into brackets() (0 for ASHA and none).
  int bracket_of(std::int64_t trial) const;
  // The rung index within its bracket (-1 for none) and that rung's resource (0 for none).
  // PBT: the generation g − 1 of the last generation step g·K the trial reached, and g·K.
  int rung_of(std::int64_t trial) const;
  std::int64_t rung_resource(std::int64_t trial) const;
  // Hyperband's brackets; empty for ASHA and none.
  const std::vector<Bracket>& brackets() const { return brackets_; }

 private:
  SchedulerSpec spec_;
  std::vector<Bracket> brackets_;
  std::vector<Asha> ladders_;       // one per bracket
  std::vector<int> bracket_cycle_;  // Hyperband: bracket index for t mod N
  // PBT's state, deep-copied with the scheduler (defined in pbt.cpp).
  struct PbtBox {
    PbtBox();
    explicit PbtBox(std::unique_ptr<Pbt> p);
    PbtBox(const PbtBox& other);
    PbtBox(PbtBox&& other) noexcept;
    PbtBox& operator=(const PbtBox& other);
    PbtBox& operator=(PbtBox&& other) noexcept;
    ~PbtBox();
    std::unique_ptr<Pbt> pbt;
  };
  PbtBox pbt_;
};

}  // namespace hpo::search
