// The regression forest and the per-tree functional ANOVA behind
// parameter_importance (importance.h has the method). Internal to search/.
//
// Every parameter is a coordinate in [0, 1], and the space is the unit cube
// with the uniform measure, so a box's volume is its share of the space.
// Some coordinates are made of cells that a split must not cut: the absent
// cell [0, absent) of a conditional parameter, and the equal cells of a
// categorical one. Splits therefore fall on cell boundaries there, and in the
// middle between two observed values elsewhere.
#pragma once

#include <cstdint>
#include <vector>

#include "search/importance.h"

namespace hpo::search::detail {

struct ForestFeature {
  std::vector<double> values;  // one per sample, in [0, 1]
  double absent = 0;       // width of the absent cell [0, absent); its samples sit at absent / 2
  std::int64_t cells = 0;  // > 0: categorical, `cells` equal cells over [absent, 1],
                           // sample in cell i at absent + (i + 0.5) * (1 - absent) / cells
};

// Fits options.trees trees to (features, y) and returns, for each tree whose prediction is
// not constant over the space, each feature's main-effect variance as a fraction of that
// tree's total variance (in the order of `features`). `y` has one value per sample; every
// feature has as many values as `y`. Deterministic for options.seed.
std::vector<std::vector<double>> main_effect_fractions(const std::vector<ForestFeature>& features,
                                                       const std::vector<double>& y,
                                                       const ImportanceOptions& options);

}  // namespace hpo::search::detail
