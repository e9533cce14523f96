// The `curves` builtin objective: a synthetic learning curve of validation
// accuracy per epoch for each config, for benchmarking multi-fidelity search
// (ASHA, Hyperband) with many seeds in minutes instead of days. The model is
// parametric and documented here and in the README ("What a trial runs").
//
// Inputs: four top-level config keys, loosely those of a network's training
// (a missing key takes its default; a present one must be a finite number,
// > 0 except dropout, which may be 0; values are clamped to the range shown):
//   lr          learning rate      default 0.003   clamped to [1e-6, 10]
//   batch_size  batch size         default 128     clamped to [1, 65536]
//   width       units per layer    default 128     clamped to [1, 65536]
//   dropout     dropout rate       default 0.2     clamped to [0, 0.95]
// Other keys are ignored.
//
// Derived quantities:
//   le = log10(lr * sqrt(128 / batch_size))    the effective step size (log10)
//   w  = clamp(log2(width / 16) / 5, 0, 1)     capacity: 0 at 16 units, 1 at 512
//   d  = dropout
// Plateau (the accuracy the curve tends to):
//   A = 0.935 - 0.04 (1 - w)                   small nets underfit
//             - 0.025 w (1 - min(d, 0.5) / 0.5)^2   wide nets without dropout overfit
//             - 0.06 max(0, le + 2.2)^2        too large a step: a noisy, lower plateau
//             - 0.05 max(0, d - 0.5)           too much dropout
//             + luck                           uniform in [-0.004, 0.004], from the config
// Gap to the plateau after the first epoch, and how many epochs it takes to
// shrink by a factor e (small steps and dropout learn slowly):
//   G   = min(0.8, 0.06 * 10^(-0.5 (le + 2)) * (1 + d))
//   tau = 2 * 10^(-0.5 (le + 2.5)) * (1 + d)
// Accuracy after epoch e = 1, 2, ...:
//   acc(e) = clamp(A - G exp(-(e - 1) / tau) + noise(e), 0, 1),
//   noise(e) ~ Normal(0, 0.003)
//
// So curves cross: a large step (lr 0.03) starts high (0.85 after one epoch) and
// is flat near 0.89 from epoch 3; a small one (lr 0.001, dropout 0.4) starts at
// 0.66, passes it near epoch 11 and ends at 0.93. Every curve flattens into its
// plateau within a few tau (the slowest, with tau up to 25 in the space of
// experiments/curves.json, still climb at epoch 27), and the noise makes
// neighbouring curves swap places from epoch to epoch.
//
// Determinism: luck and noise(e) come from a hash of the four clamped inputs
// (their bits, so 128 and 128.0 are the same config) and e alone: the same
// config gives the same value at the same epoch in any process, so a trial
// resumed at epoch k continues exactly the curve it would have followed.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "base/error.h"

namespace hpo::agent {

// What a curves trial reports each epoch, how many epochs it runs when the
// spec's "steps" is 0, and its default "seconds" per epoch (search/study.cpp
// fills the same defaults into a study's trial object).
inline constexpr const char* kCurveMetric = "val_accuracy";
inline constexpr int kCurveEpochs = 27;
inline constexpr double kCurveSecondsPerEpoch = 0.1;

// The model's inputs, clamped.
struct CurveParams {
  double lr = 0.003;
  double batch_size = 128;
  double width = 128;
  double dropout = 0.2;
};

// Reads the inputs from a config. Errors name the key:
// "config.lr: must be a finite number > 0 (got \"fast\")".
Result<CurveParams> curve_params(const nlohmann::json& config);

// The plateau A, first-epoch gap G and time constant tau of the model above
// (luck included).
struct CurveShape {
  double plateau = 0;
  double gap = 0;
  double tau = 1;
};
CurveShape curve_shape(const CurveParams& params);

// Validation accuracy after `epoch` (>= 1) epochs: the model's acc(e).
double curve_accuracy(const CurveParams& params, std::int64_t epoch);

// The checkpoint of a curves trial: `<dir>/state` holds {"epoch": k}, the
// last epoch completed. Written after each epoch, atomically (a temporary
// file renamed over it), so a reader sees the old or the new epoch.
inline constexpr const char* kCurveStateFile = "state";
Status write_curve_state(const std::string& dir, std::int64_t epoch);
// The epoch in `<dir>/state`. Errors (ErrorCode kNotFound for a missing file):
// "DIR/state: cannot read: ...", "DIR/state: not a curves checkpoint ...".
Result<std::int64_t> read_curve_state(const std::string& dir);

}  // namespace hpo::agent
