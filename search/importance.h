// Parameter importance: how much of the objective's variation each parameter
// explains on its own, by functional ANOVA over a random forest (Hutter, Hoos &
// Leyton-Brown 2014, "An Efficient Approach for Assessing Hyperparameter
// Importance"; Optuna's FanovaImportanceEvaluator computes the same). Pure: no
// I/O, no clock; the same history, space and options give the same report.
//
// Method
// - The completed trials with a finite value are the data. Each decision point
//   of the space (space.h: "solver.lr", "optimizer", "net.conv",
//   "net.conv[0].filters") found in their configs is one parameter, mapped onto
//   [0, 1]: a number linearly, or logarithmically on a log scale (ints and steps
//   widened by half a step each side, so each value owns an equal share); a
//   category as one of equal cells, ordered by the category's mean objective so
//   that a single split can separate good from bad categories.
// - A parameter that is inactive in some trials (behind a condition, in an
//   option not taken, in a block beyond a config's block count) gets an
//   "absent" cell in front of its range, as wide as the share of trials that
//   lack it: the space is weighted the way the study actually visited it.
// - A seeded forest of regression trees is fitted to those points (bootstrap
//   samples, splits that reduce the squared error most over all parameters).
//   A parameter's values are compared only among trials where it is active: in
//   a node that holds trials without it, its one possible split is absent |
//   present. A tie goes to the parameter met first in the walk, so the effect
//   of taking a branch is credited to the choice (or block count) that took
//   it, not to the absence of the other branch's parameters.
//   Each tree is a piecewise-constant function over boxes of [0, 1]^d; for each
//   parameter the variance of its marginal (the tree averaged over all the other
//   parameters, uniformly) is computed exactly over the tree's partition, as a
//   fraction of the tree's total variance over the whole space.
// - A parameter's importance is the mean of its fraction over the trees,
//   normalized so that the importances sum to 1; its stddev is the spread of
//   the fraction over the trees on the same scale. What the single parameters
//   do not explain is interaction between them: `main_effects` says how much
//   they explain together, before the normalization.
// - Parameters that never vary in the used trials (a fixed value, one category
//   only, never active) cannot explain anything and are left out of the report.
//
// Cost: a study larger than `max_trials` is represented by a seeded subsample
// of that many completed trials, so the cost does not grow with the study: 100,000
// trials of 10 parameters take 0.4 s of CPU with the defaults (measured by
// tests/search/importance_test.cpp, which prints the figure).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "search/space.h"
#include "search/trial.h"

namespace hpo::search {

struct ImportanceOptions {
  std::int64_t trees = 64;             // trees in the forest (>= 1)
  std::int64_t max_depth = 64;         // a node this deep is a leaf (>= 1)
  std::int64_t min_samples_split = 2;  // a node with fewer samples is a leaf (>= 2)
  std::int64_t min_samples_leaf = 1;   // no split leaves fewer samples on a side (>= 1)
  std::int64_t max_trials = 2000;      // larger studies: a seeded subsample of this many (>= 2)
  std::uint64_t seed = 0;              // the subsample and every tree's bootstrap
};

struct ParameterImportance {
  std::string key;        // the decision key (space.h), e.g. "solver.lr", "net.conv[0].filters"
  double importance = 0;  // this parameter's share; the shares of a report sum to 1
  double stddev = 0;      // standard deviation over the trees, on the scale of `importance`
  double absent = 0;      // fraction of the used trials in which the parameter was inactive
};

struct ImportanceReport {
  std::vector<ParameterImportance> parameters;  // most important first, ties by key
  // Mean over the trees of the variance the single parameters explain together, in [0, 1];
  // the rest is interaction. Near 0 (an objective made only of interactions) the shares are 0.
  double main_effects = 0;
  std::size_t trials_completed = 0;  // completed trials with a finite value in the history
  std::size_t trials_used = 0;       // of those, the ones the forest was fitted to
};

// The importance of every parameter that varies among the completed trials of `history`
// (other states are ignored), whose configs were sampled from `space`.
// Errors (kInvalidInput): fewer than 2 completed trials with a finite value; no parameter
// that varies among them; an objective with the same value in every used trial; options
// out of range.
Result<ImportanceReport> parameter_importance(const Space& space, const History& history,
                                              const ImportanceOptions& options = {});

}  // namespace hpo::search
