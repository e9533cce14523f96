// Latency and cuts: one agent host reaches the scheduler through a relay (relay.h) that adds
// 20 ms +- 5 ms each way and now and then cuts the connection.
#include <catch2/catch.hpp>
#include <set>

#include "tests/cluster/cluster.h"
#include "tests/cluster/relay.h"
#include "tests/support/skip.h"

namespace hpo::cluster {
namespace {

using search::TrialState;

TEST_CASE(
    "latency and cuts: an agent behind a 20 ms relay that cuts its connection now and "
    "then still does its share, and every trial completes once with each step recorded "
    "once",
    "[cluster]") {
  if (auto why = Bed::missing_prerequisite(); !why.empty()) HPO_SKIP(why);
  Cluster c(3);
  constexpr int kRelayPort = 7171;
  Relay relay(c.bed().agent(3).ns, kRelayPort, c.bed().scheduler().address, Cluster::kPort);
  const auto file = c.path("study.json");
  constexpr int kTrials = 12;
  constexpr int kSteps = 4;
  e2e::write_json(file, e2e::sleep_study("latency", kTrials, 3, 1.0, kSteps));
  c.start_agent(1, 1);
  c.start_agent(2, 1);
  c.start_agent(3, 1, "tcp://127.0.0.1:" + std::to_string(kRelayPort));
  c.start_scheduler(file);
  auto code = c.scheduler().wait(90s);
  INFO(c.logs() << "relay: " << relay.connections() << " connection(s), " << relay.cuts()
                << " cut(s)");
  REQUIRE(code == 0);

  const auto trials = e2e::stored_trials(c.db(), "latency");
  REQUIRE(trials.size() == kTrials);
  std::set<std::int64_t> numbers;
  std::set<std::string> agents;
  for (const auto& t : trials) {
    INFO("trial " << t.number);
    CHECK(t.state == TrialState::kCompleted);
    CHECK(t.value.has_value());
    numbers.insert(t.number);
    agents.insert(t.agent);
    std::set<std::int64_t> steps;
    const auto metrics = e2e::metrics_of(c.db(), t.id);
    for (const auto& m : metrics) steps.insert(m.step);
    CHECK(metrics.size() == kSteps);
    CHECK(steps.size() == kSteps);
  }
  CHECK(numbers.size() == kTrials);
  CHECK(agents.count("agent3") == 1);  // the relayed agent did its share
  // The study outlasts a connection's longest life (3 s): the relay did cut.
  CHECK(relay.cuts() >= 1);
  CHECK(relay.connections() >= 2);
}

}  // namespace
}  // namespace hpo::cluster
