// One training run (what `hpo train` does): data, net, solver loop, metric lines, checkpoints.
//
// Metric lines (the contract with the agent; one JSON object per line, flushed at once):
//   every `solver.report_every_steps` steps (optional):
//     {"step": <global step, 1-based>, "epoch": <current epoch, 1-based>, "train_loss": <mean
//      loss over the steps since the previous report>, "lr": ..}
//   after every epoch:
//     {"epoch": e, "step": .., "train_loss": .., "train_accuracy": .., "val_loss": ..,
//      "val_accuracy": .., "lr": .., "samples_per_sec": .., "elapsed": <seconds since start>}
//     (val_* only when data.validation > 0)
//   at the end:
//     {"final": true, "epochs": E, "test_loss": .., "test_accuracy": .., "val_loss": ..,
//      "val_accuracy": .., "train_loss": .., "samples_per_sec": .., "elapsed": ..}
// Accuracies are fractions in [0, 1]; losses are mean softmax cross-entropy.
//
// Checkpoints (when a directory is given): DIR/checkpoint.bin after every epoch and on a stop
// request, written to a temporary file and renamed, holding the weights, solver state, batch-norm
// statistics, the position (epoch, step in epoch, global step) and the config. The shuffling
// order and the dropout masks are pure functions of (seed, epoch) and (seed, step), so a resumed
// run reproduces an uninterrupted one exactly on the same backend and thread count.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "base/error.h"
#include "trainer/nn/backend.h"
#include "trainer/nn/spec.h"

namespace hpo::nn {

struct RunOptions {
  std::string checkpoint_dir;  // empty: no checkpoints
  bool resume = false;         // continue from checkpoint_dir/checkpoint.bin when it exists
  // Set from a signal handler: the run finishes the current step, checkpoints, and returns
  // RunOutcome::kStopped.
  const std::atomic<bool>* stop = nullptr;
  std::function<void(const std::string&)> metric;    // one JSON line (no newline)
  std::function<void(const std::string&)> progress;  // human-readable, for stderr
};

enum class RunOutcome { kFinished, kStopped };

// Exit code of `hpo train` after SIGTERM/SIGINT: the current step finished and (with
// --checkpoint) a checkpoint was written; `--resume` continues. 75 is EX_TEMPFAIL.
inline constexpr int kExitStopped = 75;

Result<RunOutcome> run_training(const TrainConfig& config, Backend& backend,
                                const RunOptions& options);

}  // namespace hpo::nn
