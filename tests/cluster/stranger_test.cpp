// CURVE on the bed: a host whose key is not on the scheduler's list gets nothing, while the
// listed agents on the other hosts run the study.
#include <catch2/catch.hpp>
#include <set>

#include "tests/cluster/cluster.h"
#include "tests/support/skip.h"

namespace hpo::cluster {
namespace {

using search::TrialState;

TEST_CASE(
    "a host whose key is not on the list gets nothing (no agents row or trial or event) "
    "while listed hosts run the study and the scheduler logs the refused address and the "
    "stranger gives up with an error",
    "[cluster]") {
  if (auto why = Bed::missing_prerequisite(); !why.empty()) HPO_SKIP(why);
  // Hosts 1-3 hold listed keys; host 4's pair is valid, made by `hpo keys new` like the
  // others, but its public key is in no --agent-keys directory.
  Cluster c(4, 5, 1);
  const Host& stranger_host = c.bed().agent(4);
  const auto file = c.path("study.json");
  constexpr int kTrials = 12;
  // Long enough (4 rounds of 1 s on 3 slots) that the stranger fails its handshakes while
  // the scheduler is up: after the study it would meet a closed port, not a refusal.
  e2e::write_json(file, e2e::sleep_study("guarded", kTrials, 3, 1.0, 2));
  auto& stranger = c.start_agent(4, 4);  // more slots than anyone: it would be chosen first
  for (int i = 1; i <= 3; ++i) c.start_agent(i, 1);
  c.start_scheduler(file);

  // The stranger gives up (scheduler/handshake.h: after 3 refused handshakes) while the
  // study still runs, and says why.
  const auto stranger_code = stranger.wait(40s);
  INFO(c.logs());
  REQUIRE(stranger_code.has_value());
  CHECK(*stranger_code != 0);
  const std::string stranger_log = test::read_text(c.path("agent4.log"));
  CHECK_THAT(stranger_log, Catch::Contains("refused this client's key"));
  CHECK_THAT(stranger_log, Catch::Contains("3 handshakes failed; giving up"));

  const auto scheduler_code = c.scheduler().wait(60s);
  INFO("after the study:\n" << c.logs());
  REQUIRE(scheduler_code == 0);
  const std::string scheduler_log = test::read_text(c.path("scheduler.log"));
  CHECK_THAT(scheduler_log,
             Catch::Contains("refused a connection from " + stranger_host.address + ": key"));
  CHECK_THAT(scheduler_log, Catch::Contains("is on no allow-list"));
  // Only the stranger's handshakes were refused: no listed host appears in a refusal.
  for (int i = 1; i <= 3; ++i) {
    CHECK(occurrences(scheduler_log,
                      "refused a connection from " + c.bed().agent(i).address + ":") == 0);
  }

  // The study completed on the listed agents alone.
  const auto trials = e2e::stored_trials(c.db(), "guarded");
  REQUIRE(trials.size() == kTrials);
  std::set<std::string> ran;
  for (const auto& t : trials) {
    CHECK(t.state == TrialState::kCompleted);
    CHECK(t.attempt == 1);
    ran.insert(t.agent);
  }
  CHECK(ran == std::set<std::string>{"agent1", "agent2", "agent3"});

  CHECK(recorded_hosts(c.db()) == std::map<std::string, std::string>{
                                     {"agent1", "bed-a1"}, {"agent2", "bed-a2"}, {"agent3", "bed-a3"}});

  auto store = results::Store::open(c.db().string(), results::OpenMode::kReadOnly);
  REQUIRE(store);

  // No event names the stranger; the listed agents do appear in events, so a trial given to
  // the stranger would have shown.
  auto events = store->events(std::nullopt);
  REQUIRE(events);
  std::string all_events;
  for (const auto& e : *events) all_events += e.kind + " " + e.detail.dump() + "\n";
  INFO(all_events);
  CHECK_THAT(all_events, Catch::Contains("agent1"));
  CHECK_THAT(all_events, !Catch::Contains("agent4"));
  CHECK_THAT(all_events, !Catch::Contains(stranger_host.hostname));
  CHECK_THAT(all_events, !Catch::Contains(stranger_host.address));

  // `hpo trials` says the same: every trial ran on a listed host.
  auto listed = test::run_hpo("trials guarded --db " + c.db().string() + " --format json");
  INFO(listed.out << listed.err);
  REQUIRE(listed.code == 0);
  const auto rows = nlohmann::json::parse(listed.out);
  REQUIRE(rows.size() == kTrials);
  std::set<std::string> listed_hosts;
  for (const auto& row : rows) listed_hosts.insert(row.at("host").get<std::string>());
  CHECK(listed_hosts == std::set<std::string>{"bed-a1", "bed-a2", "bed-a3"});
}

}  // namespace
}  // namespace hpo::cluster
