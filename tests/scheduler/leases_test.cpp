// The lease table alone: fencing, HELLO's re-announced trials and the
// recovery window, with times passed in (no store, no sockets); and the
// binding of each lease to the key of the agent holding it (issue 12).
#include "scheduler/leases.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <set>

using hpo::scheduler::Announced;
using hpo::scheduler::Announcements;
using hpo::scheduler::Lease;
using hpo::scheduler::LeaseTable;
using hpo::scheduler::Recovering;

TEST_CASE("a new lease id is 32 random hex digits, never one already in the table", "[leases]") {
  LeaseTable leases;
  std::set<std::string> ids;
  for (int i = 0; i < 200; ++i) {
    auto id = leases.new_id();
    REQUIRE(id);
    CHECK(id->size() == 32);
    CHECK(id->find_first_not_of("0123456789abcdef") == std::string::npos);
    ids.insert(*id);
    leases.grant(*id, Lease{0, i, 1, "r1", "", 0, {}});
  }
  CHECK(ids.size() == 200);
}

TEST_CASE("a message counts only for the live lease its sender holds for that trial and attempt",
          "[leases]") {
  LeaseTable leases;
  leases.grant("1.0.2", Lease{0, 0, 2, "r1", "", 0, {}});
  CHECK(leases.fenced("1.0.2", "r1", "", 0, 0, 2) != nullptr);
  CHECK(leases.fenced("1.0.2", "r2", "", 0, 0, 2) == nullptr);             // another connection
  CHECK(leases.fenced("1.0.2", "r1", "", 0, 0, 1) == nullptr);             // an old attempt
  CHECK(leases.fenced("1.0.2", "r1", "", 1, 0, 2) == nullptr);             // another study
  CHECK(leases.fenced("1.0.2", "r1", "", std::nullopt, 0, 2) == nullptr);  // an unknown study
  CHECK(leases.fenced("1.0.1", "r1", "", 0, 0, 1) == nullptr);             // no such lease
  REQUIRE(leases.release("1.0.2"));
  CHECK_FALSE(leases.release("1.0.2"));
  CHECK(leases.fenced("1.0.2", "r1", "", 0, 0, 2) == nullptr);  // a duplicate FINISH
}

TEST_CASE("a lease counts only for the key it was granted to", "[leases]") {
  LeaseTable leases;
  leases.grant("L", Lease{0, 0, 1, "r1", "key-A", 0, {}});
  CHECK(leases.fenced("L", "r1", "key-A", 0, 0, 1) != nullptr);
  CHECK(leases.fenced("L", "r1", "key-B", 0, 0, 1) == nullptr);
  CHECK(leases.fenced("L", "r1", "", 0, 0, 1) == nullptr);  // plaintext cannot act for a key
}

TEST_CASE("a reconnected agent keeps the leases it re-announces and only those", "[leases]") {
  LeaseTable leases;
  leases.grant("1.0.1", Lease{0, 0, 1, "old", "", 0, {}});
  leases.grant("1.1.1", Lease{0, 1, 1, "old", "", 0, {}});
  leases.grant("1.2.1", Lease{0, 2, 1, "old", "", 0, {}});
  Announcements announced{{"1.0.1", Announced{0, 0, 1}},
                          {"1.1.1", Announced{0, 1, 2}},   // wrong attempt
                          {"9.9.9", Announced{0, 9, 9}}};  // unknown
  auto moved = leases.transfer("old", "new", "", announced);
  CHECK(moved == std::vector<std::string>{"1.0.1"});
  CHECK(leases.held("1.0.1", "new"));
  CHECK(leases.held("1.1.1", "old"));
  CHECK(leases.held("1.2.1", "old"));
  CHECK(announced.count("1.0.1") == 0);
  auto sorted = leases.sort("new", "", announced);
  CHECK(sorted.readopt.empty());
  std::sort(sorted.stop.begin(), sorted.stop.end());
  CHECK(sorted.stop == std::vector<std::string>{"1.1.1", "9.9.9"});
}

TEST_CASE("a connection with another key cannot take over a lease, even announcing it exactly",
          "[leases]") {
  LeaseTable leases;
  leases.grant("L1", Lease{0, 0, 1, "old", "key-A", 0, {}});
  leases.grant("L2", Lease{0, 1, 1, "old", "key-A", 0, {}});
  Announcements announced{{"L1", Announced{0, 0, 1}}, {"L2", Announced{0, 1, 1}}};
  auto moved = leases.transfer("old", "impostor", "key-B", announced);
  CHECK(moved.empty());
  CHECK(leases.held("L1", "old"));
  CHECK(leases.find("L1")->agent_key == "key-A");
  CHECK(announced.size() == 2);
  // What it announced is not its own: it is told to stop it.
  auto sorted = leases.sort("impostor", "key-B", announced);
  CHECK(sorted.readopt.empty());
  std::sort(sorted.stop.begin(), sorted.stop.end());
  CHECK(sorted.stop == std::vector<std::string>{"L1", "L2"});
  // The same key on a new connection takes them over.
  CHECK(leases.transfer("old", "new", "key-A", announced).size() == 2);
  CHECK(leases.held("L1", "new"));
}

TEST_CASE("a recovering trial re-announced with its study, trial and attempt is re-adopted",
          "[leases]") {
  LeaseTable leases;
  leases.set_recovery_deadline(110.0);
  leases.await(Recovering{0, {4, 40, 2, "1.4.2", ""}});
  leases.await(Recovering{0, {5, 50, 1, "1.5.1", ""}});
  CHECK(leases.recovery_deadline() == 110.0);
  Announcements announced{{"1.4.2", Announced{0, 4, 2}}, {"1.5.1", Announced{0, 5, 3}}};
  auto sorted = leases.sort("r1", "", announced);
  REQUIRE(sorted.readopt.size() == 1);
  CHECK(sorted.readopt[0].trial.trial_id == 40);
  CHECK(sorted.stop == std::vector<std::string>{"1.5.1"});
  CHECK(leases.readopt("1.4.2", "r1", ""));
  CHECK(leases.held("1.4.2", "r1"));
  CHECK(leases.find("1.4.2")->attempt == 2);
  CHECK(leases.recovering_count() == 1);
}

TEST_CASE("a recovering trial is re-adopted only from the key it was leased to", "[leases]") {
  LeaseTable leases;
  leases.set_recovery_deadline(110.0);
  leases.await(Recovering{0, {4, 40, 2, "L", "key-A"}});
  Announcements announced{{"L", Announced{0, 4, 2}}};
  for (const char* other : {"key-B", ""}) {
    auto sorted = leases.sort("r2", other, announced);
    CHECK(sorted.readopt.empty());
    CHECK(sorted.stop == std::vector<std::string>{"L"});
    CHECK_FALSE(leases.readopt("L", "r2", other));
    CHECK(leases.find("L") == nullptr);
    CHECK(leases.recovering_count() == 1);  // still waiting for its own agent
  }
  auto sorted = leases.sort("r1", "key-A", announced);
  REQUIRE(sorted.readopt.size() == 1);
  CHECK(leases.readopt("L", "r1", "key-A"));
  REQUIRE(leases.find("L"));
  CHECK(leases.find("L")->agent_key == "key-A");
  CHECK(leases.fenced("L", "r1", "key-A", 0, 4, 2) != nullptr);
}

TEST_CASE("the recovery window closes at its deadline and hands back what no agent re-announced",
          "[leases]") {
  LeaseTable leases;
  CHECK_FALSE(leases.recovery_deadline());
  leases.set_recovery_deadline(110.0);
  leases.await(Recovering{1, {4, 40, 2, "2.4.2", ""}});
  CHECK_FALSE(leases.recovery_due(109.9));
  CHECK(leases.recovery_due(110.0));
  auto left = leases.close_recovery();
  REQUIRE(left.size() == 1);
  CHECK(left[0].study == 1);
  CHECK(left[0].trial.number == 4);
  CHECK(leases.recovering_count() == 0);
  CHECK_FALSE(leases.recovery_due(200.0));
  CHECK_FALSE(leases.recovery_deadline());
}
