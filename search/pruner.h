// Pruner: should a running trial stop early? Pure, like the samplers.
//
// Median stopping rule (as Optuna's MedianPruner): a trial is stopped when its
// best intermediate value so far is worse than the median of the intermediate
// values that COMPLETED trials reported at the same step (the trial's latest
// step), direction-aware. Never stopped:
//  - while the trial has reported at most `warmup_steps` intermediate values;
//  - while fewer than `min_trials` (at least 1) COMPLETED trials reported a
//    value at that step;
//  - with pruner type "none".
// A NaN intermediate value is always pruned (after warm-up).
#pragma once

#include <nlohmann/json.hpp>

#include "search/study.h"
#include "search/trial.h"

namespace hpo::search {

// `pruner` is a normalized pruner object (StudySpec::pruner).
bool should_prune(const nlohmann::json& pruner, Direction direction, const History& history,
                  const TrialRecord& trial);

// The same with the study's pruner and direction.
bool should_prune(const StudySpec& spec, const History& history, const TrialRecord& trial);

}  // namespace hpo::search
