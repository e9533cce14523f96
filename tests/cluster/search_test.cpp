// The test bed itself, and a search whose agents sit on three hosts.
#include <catch2/catch.hpp>
#include <set>

#include "tests/cluster/cluster.h"
#include "tests/support/skip.h"

namespace hpo::cluster {
namespace {

using search::TrialState;
using namespace std::chrono_literals;

TEST_CASE(
    "the test bed gives each host its own address and hostname, and a pulled link cuts it off",
    "[cluster]") {
  if (auto why = Bed::missing_prerequisite(); !why.empty()) HPO_SKIP(why);
  test::TempDir dir("bed");
  Bed bed(2, dir.path);
  auto in = [&](const Host& h, const std::string& command) {
    return test::run_shell("ip netns exec " + h.ns + " unshare --uts sh -c 'hostname " +
                           h.hostname + " && " + command + "' 2>&1");
  };
  // Reachable: a TCP connect to a closed port of the scheduler host is refused (a RST came
  // back), where a cut link leaves it unanswered until the timeout.
  auto reaches_scheduler = [&](const Host& h) {
    auto r = in(h, "timeout 2 bash -c \"exec 3<>/dev/tcp/" + bed.scheduler().address + "/9\"");
    return r.out.find("Connection refused") != std::string::npos;
  };
  for (int i = 1; i <= 2; ++i) {
    const Host& h = bed.agent(i);
    CHECK(in(h, "hostname").out == h.hostname + "\n");
    CHECK(reaches_scheduler(h));
  }
  // Only the bed's own addresses: no default route, nothing outside it is reachable.
  auto routes = in(bed.agent(1), "ip route");
  CHECK(routes.out == "198.18.0.0/24 dev eth0 proto kernel scope link src 198.18.0.11 \n");
  bed.link(bed.agent(1), false);
  CHECK_FALSE(reaches_scheduler(bed.agent(1)));
  CHECK(reaches_scheduler(bed.agent(2)));
  bed.link(bed.agent(1), true);
  // Plugged back, the port forwards again once the bridge has it (not at once).
  CHECK(test::wait_until([&] { return reaches_scheduler(bed.agent(1)); }, 10s));
}

TEST_CASE(
    "a search across hosts: agents on three hosts finish one study, and the database "
    "and hpo trials say which host ran each trial",
    "[cluster]") {
  if (auto why = Bed::missing_prerequisite(); !why.empty()) HPO_SKIP(why);
  Cluster c(3);
  const auto study = c.path("study.json");
  e2e::write_json(study, e2e::sleep_study("across", 9, 3, 0.4, 2));
  // The agents first, so that all three are there when the study starts: one slot each,
  // so no host can take every trial.
  for (int i = 1; i <= 3; ++i) c.start_agent(i, 1);
  c.start_scheduler(study);
  auto code = c.scheduler().wait(60s);
  INFO(c.logs());
  REQUIRE(code == 0);

  auto trials = e2e::stored_trials(c.db(), "across");
  REQUIRE(trials.size() == 9);
  CHECK(e2e::count_state(trials, TrialState::kCompleted) == 9);
  std::set<std::string> ran;
  for (const auto& t : trials) {
    CHECK(t.attempt == 1);
    ran.insert(t.agent);
  }
  CHECK(ran == std::set<std::string>{"agent1", "agent2", "agent3"});

  // Each agent's host, as the scheduler recorded it from its HELLO, is its namespace's hostname.
  CHECK(recorded_hosts(c.db()) == std::map<std::string, std::string>{
                     {"agent1", "bed-a1"}, {"agent2", "bed-a2"}, {"agent3", "bed-a3"}});

  auto listed = test::run_hpo("trials across --db " + c.db().string() + " --format json");
  INFO(listed.out << listed.err);
  REQUIRE(listed.code == 0);
  auto rows = nlohmann::json::parse(listed.out);
  REQUIRE(rows.size() == 9);
  std::set<std::string> hosts_listed;
  for (const auto& row : rows) hosts_listed.insert(row.at("host").get<std::string>());
  CHECK(hosts_listed == std::set<std::string>{"bed-a1", "bed-a2", "bed-a3"});
}

}  // namespace
}  // namespace hpo::cluster
