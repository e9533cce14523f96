#include "search/trial.h"

#include <array>
#include <utility>

namespace hpo::search {
namespace {

constexpr std::array<std::pair<TrialState, std::string_view>, 8> kStateNames{{
    {TrialState::kQueued, "QUEUED"},
    {TrialState::kRunning, "RUNNING"},
    {TrialState::kCompleted, "COMPLETED"},
    {TrialState::kPruned, "PRUNED"},
    {TrialState::kFailed, "FAILED"},
    {TrialState::kInterrupted, "INTERRUPTED"},
    {TrialState::kCancelled, "CANCELLED"},
    {TrialState::kPaused, "PAUSED"},
}};

}  // namespace

std::string_view to_string(TrialState state) {
  for (const auto& [s, name] : kStateNames) {
    if (s == state) return name;
  }
  return "UNKNOWN";
}

std::optional<TrialState> trial_state_from_string(std::string_view name) {
  for (const auto& [s, n] : kStateNames) {
    if (n == name) return s;
  }
  return std::nullopt;
}

std::string_view to_string(Direction direction) {
  return direction == Direction::kMinimize ? "minimize" : "maximize";
}

std::optional<Direction> direction_from_string(std::string_view name) {
  if (name == "minimize") return Direction::kMinimize;
  if (name == "maximize") return Direction::kMaximize;
  return std::nullopt;
}

}  // namespace hpo::search
