// Median stopping: a trial worse than the median of completed trials at the
// same step stops, after warm-up and once enough trials completed.
#include "search/pruner.h"

#include "tests/search/helpers.h"

using nlohmann::json;
using namespace hpo::search;

namespace {

TrialRecord with_curve(std::int64_t number, TrialState state, std::vector<double> values) {
  TrialRecord t{number, state, json::object(), std::nullopt, {}};
  for (std::size_t i = 0; i < values.size(); ++i) {
    t.intermediates.push_back({static_cast<std::int64_t>(i + 1), values[i]});
  }
  return t;
}

const json kMedian = {{"type", "median"}, {"warmup_steps", 1}, {"min_trials", 3}};

History finished() {
  return {with_curve(0, TrialState::kCompleted, {0.5, 0.6, 0.7}),
          with_curve(1, TrialState::kCompleted, {0.6, 0.7, 0.8}),
          with_curve(2, TrialState::kCompleted, {0.7, 0.8, 0.9}),
          with_curve(3, TrialState::kPruned, {0.1, 0.1}),
          with_curve(4, TrialState::kRunning, {0.0, 0.0})};
}

}  // namespace

TEST_CASE("a maximizing trial below the median at its step is pruned, one above is not") {
  History h = finished();
  CHECK(should_prune(kMedian, Direction::kMaximize, h,
                     with_curve(5, TrialState::kRunning, {0.5, 0.65})));
  CHECK(!should_prune(kMedian, Direction::kMaximize, h,
                      with_curve(5, TrialState::kRunning, {0.5, 0.75})));
  // The best value so far counts, not the latest.
  CHECK(!should_prune(kMedian, Direction::kMaximize, h,
                      with_curve(5, TrialState::kRunning, {0.9, 0.2})));
}

TEST_CASE("the median rule is direction-aware") {
  History h = finished();
  CHECK(!should_prune(kMedian, Direction::kMinimize, h,
                      with_curve(5, TrialState::kRunning, {0.5, 0.65})));
  CHECK(should_prune(kMedian, Direction::kMinimize, h,
                     with_curve(5, TrialState::kRunning, {0.75, 0.75})));
}

TEST_CASE("no trial is pruned during warm-up or before min_trials completed") {
  History h = finished();
  CHECK(
      !should_prune(kMedian, Direction::kMaximize, h, with_curve(5, TrialState::kRunning, {0.0})));
  json strict = kMedian;
  strict["min_trials"] = 4;  // only 3 completed trials (pruned/running ones do not count)
  CHECK(!should_prune(strict, Direction::kMaximize, h,
                      with_curve(5, TrialState::kRunning, {0.0, 0.0})));
  // A step no completed trial reached: nothing to compare with.
  CHECK(!should_prune(kMedian, Direction::kMaximize, h,
                      with_curve(5, TrialState::kRunning, {0, 0, 0, 0})));
}

TEST_CASE("the none pruner never prunes and a NaN value is pruned") {
  History h = finished();
  CHECK(!should_prune(json{{"type", "none"}}, Direction::kMaximize, h,
                      with_curve(5, TrialState::kRunning, {0.0, 0.0})));
  CHECK(should_prune(kMedian, Direction::kMaximize, h,
                     with_curve(5, TrialState::kRunning, {0.9, std::nan("")})));
}

TEST_CASE("should_prune reads the study's pruner and direction") {
  auto spec = parse_study(
      json::parse(R"({"name": "s", "objective": {"metric": "acc", "direction": "maximize"},
      "pruner": {"type": "median", "warmup_steps": 1, "min_trials": 3},
      "trial": {"kind": "builtin", "function": "sleep"}, "space": {}})"),
      "s.json");
  REQUIRE(spec);
  CHECK(should_prune(*spec, finished(), with_curve(5, TrialState::kRunning, {0.5, 0.65})));
}
