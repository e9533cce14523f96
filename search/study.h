// A study file: the objective, the sampler and pruner with their options, the
// budget, what a trial runs, and the search space (see the README's "Study
// file"). parse_study validates all of it and fills every default, so the
// StudySpec a caller gets is complete: sampler/pruner/trial JSON carry every
// option with its value.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"
#include "search/space.h"
#include "search/trial_scheduler.h"
#include "search/trial.h"

namespace hpo::search {

struct StudySpec {
  std::string name;                            // required, non-empty; unique in a database
  std::string objective_metric;                // objective.metric (required)
  Direction direction = Direction::kMinimize;  // objective.direction (required)
  // {"type": ..., options} with every option of that type present. Default
  // {"type": "tpe"}. Types and options (defaults):
  //   random
  //   grid       points (5) per numeric parameter, parameter_points ({}):
  //              {"decision key": points} overrides, e.g. {"solver.lr": 3}
  //   sobol      scramble (true): scrambled Sobol' (21 dimensions, padded
  //              with seeded uniform draws beyond)
  //   halton     scramble (true): scrambled Halton, any number of dimensions
  //   tpe        startup_trials (10), n_candidates (24), gamma (0.1: the
  //              best ceil(gamma * n) trials, at most max_good (25), are
  //              "good"), prior_weight (1.0), constant_liar (true),
  //              max_observations (200: newest "bad" trials used per ask),
  //              multivariate (true)
  //   evolution  population (20), sample_size (5)
  //   cmaes      popsize (0: 4 + floor(3 ln d)), sigma0 (1/6 of the unit
  //              cube), startup_trials (1): CMA-ES on the numeric
  //              parameters every finished trial has; the others
  //              (choices, block counts, conditional parameters) by TPE
  //              with its default options (search/cmaes.cpp)
  nlohmann::json sampler;
  // {"type": "median", "warmup_steps": N (0), "min_trials": M (5)} or
  // {"type": "none"} (the default). See pruner.h.
  nlohmann::json pruner;
  // {"type": "none"} (the default), or an "asha"/"hyperband" object with every field (see
  // trial_scheduler.h), and the same read into `schedule`. A trial scheduler and a pruner
  // both decide when a trial stops: a study has one or the other.
  nlohmann::json scheduler;
  SchedulerSpec schedule;
  std::uint64_t seed = 0;        // default 0
  std::int64_t max_trials = 20;  // budget.max_trials, >= 1, default 20
  int max_parallel = 1;          // budget.max_parallel, >= 1, default 1
  double max_seconds = 0.0;      // budget.max_seconds, 0 = no time limit
  std::optional<double> target;  // budget.target: stop once the best reaches it
  int max_retries = 0;           // budget.max_retries, >= 0, default 0
  // budget.max_interruptions, >= 0, default 5: how often a trial may lose its run (its agent
  // lost, left or stopped it) before it is FAILED; a trial that kills its agent is not requeued
  // forever. A scheduler restart and a trial that never started do not count.
  int max_interruptions = 5;
  // The "trial" object with defaults filled, by kind:
  //  builtin: {"kind","function": branin|hartmann6|sleep,"seconds": 1.0,"steps": 0}
  //           curves: "seconds" (0.1) is per epoch and "steps" (27, >= 1) the epochs
  //  native:  {"kind","base": {},"device": "auto","threads": 1,"timeout_seconds": 0}
  //  command: {"kind","command": "...","workdir": ".","timeout_seconds": 0,"env": {}}
  nlohmann::json trial;
  Space space;
  nlohmann::json raw;  // the study file's object as read
};

// What is shown in place of each trial.env value: those values are where users keep
// secrets (tokens, passwords) for their trials.
inline constexpr const char* kHiddenValue = "(hidden)";

// The study object `study` (a StudySpec's raw, or a stored spec) as it may be shown: in hpo
// export, a log line or an error. Each trial.env value is replaced by kHiddenValue, its name
// kept; everything else is as given (a non-object is returned unchanged). The stored spec
// keeps the values: only the agent that runs a trial gets them (in its ASSIGN).
nlohmann::json without_secrets(const nlohmann::json& study);

// Validates one study object. Errors read "FILE: path: message", e.g.
// "s.json: budget.max_parallel: must be an integer >= 1 (got 0)". Unknown
// keys at any level are errors.
Result<StudySpec> parse_study(const nlohmann::json& study, std::string_view file);

// Reads and parses a JSON file (comments allowed). A syntax error reads
// "FILE:LINE:COLUMN: invalid JSON: ..."; an unreadable file "FILE: cannot read: ...";
// a file over 16 MiB or nested deeper than 128 levels is refused (base/json.h).
Result<nlohmann::json> read_json_file(const std::string& path);

// read_json_file + parse_study.
Result<StudySpec> load_study_file(const std::string& path);

// Checks a "sampler" object and fills its defaults; `path` prefixes errors
// (e.g. "FILE: sampler"). Used by parse_study and by `hpo space sample --sampler`.
Result<nlohmann::json> normalize_sampler(const nlohmann::json& sampler, std::string_view where);

// Same for a "pruner" object.
Result<nlohmann::json> normalize_pruner(const nlohmann::json& pruner, std::string_view where);

}  // namespace hpo::search
