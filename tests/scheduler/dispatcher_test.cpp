// The dispatcher alone over a real store (a temporary file): which study's
// trial goes to which free slot. No sockets, no clock.
#include "scheduler/dispatcher.h"

#include <catch2/catch.hpp>
#include <map>
#include <string>

#include "results/store.h"
#include "tests/support/temp_dir.h"

using hpo::scheduler::AgentRegistry;
using hpo::scheduler::Dispatcher;
using hpo::scheduler::LeaseTable;
using hpo::scheduler::Studies;
using nlohmann::json;

namespace {

constexpr double kNow = 1'700'000'000.0;

json study_json(const std::string& name, int max_trials, int max_parallel) {
  return json{{"name", name},
              {"objective", {{"metric", "value"}, {"direction", "minimize"}}},
              {"sampler", {{"type", "random"}}},
              {"seed", 3},
              {"budget", {{"max_trials", max_trials}, {"max_parallel", max_parallel}}},
              {"trial", {{"kind", "builtin"}, {"function", "branin"}}},
              {"space", {{"x", {{"type", "float"}, {"low", 0}, {"high", 1}}}}}};
}

struct World {
  hpo::test::TempDir dir{"dispatcher-test"};  // declared first: goes after the store
  std::optional<hpo::results::Store> store;
  Studies studies;
  AgentRegistry agents{1.0, 5};
  LeaseTable leases;

  World() {
    auto s = hpo::results::Store::open(dir / "t.db", hpo::results::OpenMode::kWriter);
    REQUIRE(s);
    store.emplace(std::move(*s));
  }
  void add(const json& study) {
    auto answer = studies.submit(*store, study, kNow);
    REQUIRE(answer);
    REQUIRE(std::holds_alternative<hpo::scheduler::protocol::Ok>(*answer));
  }
};

}  // namespace

TEST_CASE("free slots go round-robin over the studies and max_parallel caps each", "[dispatcher]") {
  World w;
  auto txn = w.store->begin();
  REQUIRE(txn);
  w.add(study_json("s1", 10, 2));
  w.add(study_json("s2", 10, 10));
  auto& a = w.agents.join("r1", "a", 6, 0, 0.0);
  a.key = "key-of-a";
  AgentRegistry::ready(a, 6, false);
  Dispatcher dispatcher;
  auto got = dispatcher.fill(*w.store, w.studies, w.agents, w.leases, kNow);
  REQUIRE(got);
  REQUIRE(got->size() == 6);
  std::map<std::string, int> per_study;
  for (const auto& [to, assign] : *got) {
    CHECK(to == "r1");
    CHECK(assign.attempt == 1);
    // Each lease is live, bound to the agent's key, and so recorded in the store.
    const auto* lease = w.leases.find(assign.lease);
    REQUIRE(lease);
    CHECK(lease->agent_key == "key-of-a");
    const auto& study = w.studies[*w.studies.find(assign.study)];
    auto row = w.store->find_trial(study.id(), assign.trial);
    REQUIRE(row);
    REQUIRE(*row);
    CHECK((*row)->lease == assign.lease);
    CHECK((*row)->agent_key == "key-of-a");
    ++per_study[assign.study];
  }
  CHECK((*got)[0].second.study == "s1");
  CHECK((*got)[1].second.study == "s2");
  CHECK(per_study["s1"] == 2);  // its max_parallel
  CHECK(per_study["s2"] == 4);  // the rest
  CHECK(w.leases.size() == 6);
  CHECK(a.free == 0);
  CHECK(a.leases == 6);
  REQUIRE(txn->commit());
}

TEST_CASE("nothing is leased when no agent has a free slot", "[dispatcher]") {
  World w;
  auto txn = w.store->begin();
  REQUIRE(txn);
  w.add(study_json("s1", 10, 2));
  w.agents.join("r1", "a", 4, 0, 0.0);  // no READY yet
  Dispatcher dispatcher;
  auto got = dispatcher.fill(*w.store, w.studies, w.agents, w.leases, kNow);
  REQUIRE(got);
  CHECK(got->empty());
  CHECK(w.leases.empty());
}
