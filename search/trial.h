// Value types shared by the search library, the store and the scheduler:
// a trial as the sampler sees it, and the history it asks from.
// Plain values: the scheduler rebuilds a History from the database, so a
// resumed search asks exactly what it would have asked.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hpo::search {

enum class Direction { kMinimize, kMaximize };

// The life of a trial. One spelling across code, DB and CLI: the upper-case names.
// CANCELLED: the study ended (target reached, time budget spent) before the trial finished: it
// never ran, or was stopped; like FAILED it has no value and is not asked about again.
// kPaused: a trial scheduler (trial_scheduler.h) stopped it at a rung with its checkpoint
// kept; it may be resumed later as a new attempt.
enum class TrialState {
  kQueued,
  kRunning,
  kCompleted,
  kPruned,
  kFailed,
  kInterrupted,
  kCancelled,
  kPaused
};

std::string_view to_string(TrialState state);
std::optional<TrialState> trial_state_from_string(std::string_view name);
std::string_view to_string(Direction direction);
std::optional<Direction> direction_from_string(std::string_view name);

// One intermediate value a trial reported for the objective metric.
struct Intermediate {
  std::int64_t step = 0;
  double value = 0.0;
};

struct TrialRecord {
  std::int64_t number = 0;          // 0-based, per study, in ask order
  TrialState state = TrialState::kQueued;
  nlohmann::json config;            // the sampled config (plain nested JSON)
  std::optional<double> value;      // objective, set when COMPLETED (or PRUNED at its last step)
  std::vector<Intermediate> intermediates;  // objective metric by step, in step order
};

// Every trial of one study, in number order (index == number).
using History = std::vector<TrialRecord>;

}  // namespace hpo::search
