// Helpers of the dashboard tests: a study whose spec parses (the importance view needs its
// space) filled through the store's writer API.
#pragma once

#include <string>

#include "tests/results/fixtures.h"

namespace hpo::dashboard::testing {

using namespace hpo::results::testing;

// A study "s" maximizing val_accuracy over x in [0, 1], y in [0, 1] and opt in {sgd, adam}.
inline results::StudyRow spaced_study(const std::string& name = "s") {
  results::StudyRow s = study_row(name);
  s.spec["space"] = {{"x", {{"type", "float"}, {"low", 0.0}, {"high", 1.0}}},
                     {"y", {{"type", "float"}, {"low", 0.0}, {"high", 1.0}}},
                     {"opt", {{"type", "choice"}, {"values", {"sgd", "adam"}}}}};
  s.spec["trial"] = {{"kind", "builtin"}, {"function", "branin"}};
  return s;
}

// A trial run on `agent` from `start` to `end` with two val_accuracy steps, finished in
// `state` with `value` (nullopt: left RUNNING).
inline std::int64_t run_trial(results::Store& store, std::int64_t study, std::int64_t number,
                              const nlohmann::json& config, std::optional<double> value,
                              const std::string& agent, double start, double end,
                              search::TrialState state = search::TrialState::kCompleted) {
  std::string tag = std::to_string(number);
  auto id = ok(store.add_trial(study, number, config, std::string("h").append(tag), start));
  ok(store.start_trial(id, 1, std::string("lease-").append(tag), agent, "", start));
  const double last = value.value_or(0.5);
  ok(store.record_metric(id, 1, "val_accuracy", last / 2, start + 0.1));
  ok(store.record_metric(id, 2, "val_accuracy", last, end));
  ok(store.record_metric(id, 2, "val_loss", 1 - last, end));
  if (value) ok(store.finish_trial(id, state, value, "", "tail of the log", end));
  return id;
}

}  // namespace hpo::dashboard::testing
