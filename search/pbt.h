// Population Based Training (Jaderberg et al. 2017), the synchronous variant
// (Ray Tune's PopulationBasedTraining with synch=True), as pure rules over a
// study's reports: no I/O, no clock. TrialScheduler holds one for a study whose
// "scheduler" is {"type": "pbt", ...} (trial_scheduler.h has the syntax).
//
// Population: the first `population` trials the daemon samples are its members;
// after them, new trials come only from exploits. Every member reports its
// objective per epoch. Generation g ends at step g·K (K = perturbation_interval,
// g·K < max_resource): a member's first report at or past g·K is its value for
// generation g, and it is told kPause. At max_resource it is told kComplete.
//
// Generation g is complete once the population is filled (`population` sampled
// trials are known, in any status) and every member that has not ended is paused
// at g·K or later; members that ended on the way drop out. Then the generation's
// ranked set is every trial with a value for g (an adopted child's copied value
// excepted): by value in the study's direction, NaN worst, ties by the lower
// trial number. With n ranked, m = ⌈q·n⌉, at least 1 when n >= 2, at most ⌊n/2⌋
// (q = quantile). Each of the bottom m (worst first) gets a parent drawn
// uniformly from the top m (a generator seeded by the study's seed and g): an
// Exploit {loser, parent, step g·K}. The other paused members become promotable.
//
// The daemon carries out an exploit by creating a new trial, the child, with
// config explore(parent's config) that starts from the parent's checkpoint at
// the exploit's step, and calls adopt(child, parent, step): the child joins
// the population (running, with the parent's results up to step as its own)
// and the loser ends (the daemon records it PRUNED). A loser never resumes.
//
// Restart: rebuild() gives the live state from the store's observations, each
// trial's status and the lineage (child -> parent, step): completed
// generations are inferred from what only a completed generation allows (a
// child adopted at g·K; a member that paused at g·K and is running again) or
// from the paused population itself; plans are functions of the values, and an
// exploit whose child exists is done. Two assumptions: a report from a trial
// that was told to pause is neither passed to report() nor stored, and the
// daemon carries out exploits() in the order given.
//
// For the daemon: fill spec.population (0: budget.max_parallel) and spec.seed
// (the study's seed) before it builds the TrialScheduler; sample exactly
// `population` trials. On kPause it pauses the trial (checkpoint, PAUSED).
// When a slot asks for work: first each of exploits(), in order: create the
// child (config explore(space, parent's config, p, explore_rng(seed, loser)),
// trials.parent = parent, parent_step = step, starting from the parent's
// checkpoint at step), record the loser PRUNED and call adopt(child, parent,
// step); then resume promotable().front() after set_status(kRunning). The
// study ends when nothing runs, nothing is promotable and no exploit is pending.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "search/space.h"
#include "search/trial_scheduler.h"

namespace hpo::search {

// The synchronous PBT rules of one study. Not thread-safe.
class Pbt {
 public:
  // spec.type is kPbt; spec.population >= 1 (0 counts as 1), spec.seed draws the parents.
  Pbt(const SchedulerSpec& spec, Direction direction);

  // `trial` reported `value` at `step`; its first value at each step counts. kPause
  // (rung = g − 1) on its first report at or past a generation's step g·K (the highest,
  // if one report passes several); kComplete at max_resource; else kContinue. An unknown
  // trial joins as a sampled member, running.
  Decision report(std::int64_t trial, std::int64_t step, double value);

  // Paused members of completed generations that resume as themselves, by trial number.
  std::vector<std::int64_t> promotable() const;

  // Exploits of completed generations whose child is not adopted yet, generation by
  // generation, worst loser first. The same list until adopt() carries one out.
  std::vector<Exploit> exploits() const;

  // The daemon created `child` for the first pending exploit with this parent and step:
  // the child runs with the parent's results up to `step`; that exploit's loser ends.
  // False (the lineage is still recorded) when no pending exploit matches.
  bool adopt(std::int64_t child, std::int64_t parent, std::int64_t step);

  // Resumed (kRunning), ended, or a status from the store. An unknown trial that is not
  // a child joins as a sampled member (so a trial that failed before reporting counts).
  void set_status(std::int64_t trial, TrialStatus status);
  TrialStatus status(std::int64_t trial) const;  // kEnded for an unknown trial

  // Generations 1..completed() are complete (0: none yet).
  std::int64_t completed() const { return completed_; }
  // The generation step a trial last paused at or passed (0: none): a multiple of K.
  std::int64_t generation_step(std::int64_t trial) const;

  // The state from the store (see the restart note above).
  static Pbt rebuild(const SchedulerSpec& spec, Direction direction,
                     const std::vector<Observation>& observations,
                     const std::map<std::int64_t, TrialStatus>& status,
                     const std::map<std::int64_t, Lineage>& lineage);

 private:
  std::int64_t boundary(std::int64_t step) const;  // the highest g·K <= step below max, or 0
  std::vector<std::pair<std::int64_t, double>> ranked(std::int64_t g) const;
  std::vector<Exploit> plan(std::int64_t g) const;
  bool generation_ready(std::int64_t g) const;
  void advance();  // completes every generation that is ready

  SchedulerSpec spec_;
  Direction direction_;
  std::map<std::int64_t, std::map<std::int64_t, double>> results_;  // trial -> step -> value
  std::map<std::int64_t, TrialStatus> status_;
  std::map<std::int64_t, Lineage> lineage_;        // child -> parent, step
  std::map<std::int64_t, std::int64_t> replaced_;  // loser -> child
  std::int64_t sampled_ = 0;                       // known trials that are not children
  std::int64_t completed_ = 0;
};

// What explore() made of a parent's config.
struct Exploration {
  nlohmann::json config;   // the child's config: always inside the space
  nlohmann::json changed;  // {"lr": [0.01, 0.012], ...}: each leaf that differs, [old, new]
};

// PBT's explore: the parent's decisions (Space::decode), each numeric one (float, int,
// blocks count) resampled uniformly from its range with probability `resample_probability`,
// else multiplied by 0.8 or 1.2 (even odds; the walk then clamps to the range and rounds
// ints and steps); each categorical one resampled with that probability, else kept; a
// decision point the parent did not reach (a condition now holds) drawn uniformly. The
// space's walk builds the config, so conditions and blocks stay valid. `changed` keys are
// config paths as the decision keys spell them ("net.conv[1].filters").
// `may_change` (empty: every decision point) limits that to the points it accepts; the others
// keep the parent's decision.
Exploration explore(const Space& space, const nlohmann::json& parent_config,
                    double resample_probability, std::mt19937_64& rng,
                    const std::function<bool(const Dimension&)>& may_change = {});

// The decision points a study's explore may change: those that `mutations` name (parameter
// names as `hpo trials` shows them, "solver.lr", "net.conv[].filters": a block's index and
// a nested choice's option are not named, so "solver.lr" is the lr of every optimizer
// option), or, when it is empty, every float parameter. Ints, choices and block counts
// stay by default because they usually shape the network, and a child resumes from its
// parent's checkpoint, whose tensors would not fit another shape.
std::function<bool(const Dimension&)> mutable_dimensions(const std::vector<std::string>& mutations);
// Whether `name` names a parameter of `space` in that sense.
bool names_parameter(const Space& space, const std::string& name);
// The generator for the exploit that replaces `loser` in a study with `seed`.
std::mt19937_64 explore_rng(std::uint64_t seed, std::int64_t loser);

}  // namespace hpo::search
