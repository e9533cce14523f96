// The scheduler's host goes away (process SIGKILLed, cable pulled) and comes back.
#include <signal.h>

#include <catch2/catch.hpp>
#include <set>

#include "tests/cluster/cluster.h"
#include "tests/support/skip.h"

namespace hpo::cluster {
namespace {

using search::TrialState;

TEST_CASE(
    "the scheduler host goes away and comes back: agents reconnect, their running trials "
    "are re-adopted, and the budget is exact",
    "[cluster]") {
  if (auto why = Bed::missing_prerequisite(); !why.empty()) HPO_SKIP(why);
  Cluster c(3);
  const auto file = c.path("study.json");
  constexpr int kSteps = 4;
  e2e::write_json(file, e2e::sleep_study("away", 9, 3, 2.0, kSteps));
  for (int i = 1; i <= 3; ++i) c.start_agent(i, 1);
  c.start_scheduler(file);
  const bool busy =
      test::wait_until([&] { return e2e::counts(c.db(), "away")[TrialState::kRunning] == 3; }, 30s);
  INFO(c.logs());
  REQUIRE(busy);

  c.scheduler().signal(SIGKILL);
  REQUIRE(c.scheduler().wait(5s) == 128 + SIGKILL);
  c.bed().link(c.bed().scheduler(), false);
  // Down until every agent has given the scheduler up and gone to reconnecting.
  const bool noticed = test::wait_until(
      [&] {
        for (int i = 1; i <= 3; ++i) {
          if (c.agent(i).log().find("scheduler silent") == std::string::npos) return false;
        }
        return true;
      },
      15s);
  c.bed().link(c.bed().scheduler(), true);
  REQUIRE(noticed);
  c.start_scheduler(file);
  REQUIRE(c.scheduler().wait(60s) == 0);

  // Each agent came back with the trial it was running (or had finished unacknowledged).
  // (An agent repeats HELLO each heartbeat until a WELCOME reaches it, and each repeat that
  // re-adopts is logged: one agent may have several such lines.)
  const auto log = c.scheduler().log();
  for (int i = 1; i <= 3; ++i) {
    INFO("agent " << i);
    CHECK(occurrences(log,
                      "agent " + Cluster::agent_name(i) + " joined (1 slot(s), re-adopted 1") >= 1);
  }

  const auto trials = e2e::stored_trials(c.db(), "away");
  REQUIRE(trials.size() == 9);
  std::set<std::int64_t> numbers;
  for (const auto& t : trials) {
    INFO("trial " << t.number);
    CHECK(t.state == TrialState::kCompleted);
    CHECK(t.value.has_value());
    CHECK(t.attempt == 1);  // re-adopted, never run again
    numbers.insert(t.number);
    // Every step recorded once: nothing of a re-adopted trial was counted twice.
    std::set<std::int64_t> steps;
    const auto metrics = e2e::metrics_of(c.db(), t.id);
    for (const auto& m : metrics) steps.insert(m.step);
    CHECK(metrics.size() == kSteps);
    CHECK(steps.size() == kSteps);
  }
  CHECK(numbers.size() == 9);
}

}  // namespace
}  // namespace hpo::cluster
