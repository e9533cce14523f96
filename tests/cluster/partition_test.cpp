// Partitions: one agent host's cable pulled for longer than the liveness
// window, and for less.
#include <catch2/catch.hpp>
#include <chrono>
#include <set>
#include <thread>

#include "tests/cluster/cluster.h"
#include "tests/support/skip.h"

namespace hpo::cluster {
namespace {

using search::TrialState;

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The trial of `study` running on `agent` now, if any.
std::optional<results::TrialRow> running_on(const fs::path& db, const std::string& study,
                                            const std::string& agent) {
  for (const auto& t : e2e::trials_of(db, study)) {
    if (t.state == TrialState::kRunning && t.agent == agent) return t;
  }
  return std::nullopt;
}

const results::TrialRow& by_number(const std::vector<results::TrialRow>& trials,
                                   std::int64_t number) {
  for (const auto& t : trials) {
    if (t.number == number) return t;
  }
  FAIL("no trial " << number);
  return trials.front();
}

// Every trial of the budget completed once, with its value.
void check_budget_exact(const std::vector<results::TrialRow>& trials, std::size_t budget) {
  REQUIRE(trials.size() == budget);
  std::set<std::int64_t> numbers;
  for (const auto& t : trials) {
    INFO("trial " << t.number);
    CHECK(t.state == TrialState::kCompleted);
    CHECK(t.value.has_value());
    numbers.insert(t.number);
  }
  CHECK(numbers.size() == budget);
}

// Agent 3 starts alone and takes the first trial; agents 1 and 2 join; all have one slot.
struct Partitioned {
  Partitioned(Cluster& c, const std::string& study, int trials, double seconds) {
    const auto file = c.path("study.json");
    e2e::write_json(file, e2e::sleep_study(study, trials, 3, seconds, 8));
    c.start_agent(3, 1);
    c.start_scheduler(file);
    const bool started =
        test::wait_until([&] { return running_on(c.db(), study, "agent3").has_value(); }, 30s);
    INFO(c.logs());
    REQUIRE(started);
    first = *running_on(c.db(), study, "agent3");
    c.start_agent(1, 1);
    c.start_agent(2, 1);
    const bool joined = test::wait_until(
        [&] {
          const auto log = c.scheduler().log();
          return occurrences(log, "agent agent1 joined") == 1 &&
                 occurrences(log, "agent agent2 joined") == 1;
        },
        30s);
    REQUIRE(joined);
  }
  results::TrialRow first;  // agent 3's trial when its cable is pulled
};

TEST_CASE(
    "a partition longer than the liveness window: the cut-off agent's trial is requeued "
    "and completed elsewhere, its late messages are fenced, and it rejoins and gets "
    "new work",
    "[cluster]") {
  if (auto why = Bed::missing_prerequisite(); !why.empty()) HPO_SKIP(why);
  Cluster c(3);
  Partitioned p(c, "partition", 9, 2.0);
  c.bed().link(c.bed().agent(3), false);
  // Down until the scheduler has given agent 3's trial to another agent.
  const bool moved = test::wait_until(
      [&] {
        for (const auto& t : e2e::trials_of(c.db(), "partition")) {
          if (t.number == p.first.number && t.attempt > p.first.attempt && t.agent != "agent3") {
            return true;
          }
        }
        return false;
      },
      30s);
  c.bed().link(c.bed().agent(3), true);
  const double plugged = wall_now();
  INFO(c.logs());
  REQUIRE(moved);
  REQUIRE(c.scheduler().wait(60s) == 0);

  const auto trials = e2e::stored_trials(c.db(), "partition");
  check_budget_exact(trials, 9);
  const auto log = c.scheduler().log();
  CHECK(occurrences(log, "agent agent3 lost") == 1);
  // The trial agent 3 was cut off with: requeued, completed by another agent.
  const auto& moved_trial = by_number(trials, p.first.number);
  CHECK(moved_trial.attempt == p.first.attempt + 1);
  CHECK(moved_trial.agent != "agent3");
  // Agent 3 came back still running its old attempt and said so in its HELLO: the scheduler
  // fenced it (no re-adoption of a lease it gave away, a stop instead), so nothing of that
  // attempt is counted. Then agent 3 ran a trial after the cable was plugged back.
  // (An agent repeats HELLO each heartbeat until a WELCOME reaches it, and each repeat that
  // still names the old lease is logged: after a partition, more than one such line is usual.)
  CHECK(occurrences(log, "agent agent3 joined") >= 2);
  CHECK(occurrences(log, "agent agent3 joined (1 slot(s), re-adopted 0, stopped 1)") >= 1);
  CHECK(occurrences(log, "agent agent3 joined (1 slot(s), re-adopted 1") == 0);
  bool new_work = false;
  for (const auto& t : trials) {
    if (t.agent == "agent3" && t.started && *t.started > plugged) new_work = true;
  }
  CHECK(new_work);
}

TEST_CASE("a blip shorter than the liveness window: nothing is requeued and no work is lost",
          "[cluster]") {
  if (auto why = Bed::missing_prerequisite(); !why.empty()) HPO_SKIP(why);
  // A 2 s window here (200 ms heartbeats, liveness 10), and 500 ms down: the messages lost
  // in the blip are retransmitted by TCP (after about 0.2, 0.6 and 1.4 s) well inside it.
  Cluster c(3, 10);
  Partitioned p(c, "blip", 6, 2.0);
  c.bed().link(c.bed().agent(3), false);
  std::this_thread::sleep_for(500ms);
  c.bed().link(c.bed().agent(3), true);
  INFO(c.logs());
  REQUIRE(c.scheduler().wait(60s) == 0);

  const auto trials = e2e::stored_trials(c.db(), "blip");
  check_budget_exact(trials, 6);
  for (const auto& t : trials) {
    INFO("trial " << t.number);
    CHECK(t.attempt == 1);
  }
  CHECK(by_number(trials, p.first.number).agent == "agent3");
  const auto log = c.scheduler().log();
  CHECK(occurrences(log, "lost") == 0);
  CHECK(occurrences(log, "agent agent3 joined") == 1);
}

}  // namespace
}  // namespace hpo::cluster
