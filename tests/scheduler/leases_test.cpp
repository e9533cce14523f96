// The lease table alone: fencing, HELLO's re-announced trials and the
// recovery window, with times passed in (no store, no sockets).
#include "scheduler/leases.h"

#include <algorithm>
#include <catch2/catch.hpp>

using hpo::scheduler::Announced;
using hpo::scheduler::Announcements;
using hpo::scheduler::Lease;
using hpo::scheduler::LeaseTable;
using hpo::scheduler::Recovering;

TEST_CASE("a lease id names the study, trial and attempt", "[leases]") {
  CHECK(LeaseTable::lease_id(7, 3, 2) == "7.3.2");
}

TEST_CASE("a message counts only for the live lease its sender holds for that trial and attempt",
          "[leases]") {
  LeaseTable leases;
  leases.grant("1.0.2", Lease{0, 0, 2, "r1", 0, {}});
  CHECK(leases.fenced("1.0.2", "r1", 0, 0, 2) != nullptr);
  CHECK(leases.fenced("1.0.2", "r2", 0, 0, 2) == nullptr);             // another connection
  CHECK(leases.fenced("1.0.2", "r1", 0, 0, 1) == nullptr);             // an old attempt
  CHECK(leases.fenced("1.0.2", "r1", 1, 0, 2) == nullptr);             // another study
  CHECK(leases.fenced("1.0.2", "r1", std::nullopt, 0, 2) == nullptr);  // an unknown study
  CHECK(leases.fenced("1.0.1", "r1", 0, 0, 1) == nullptr);             // no such lease
  REQUIRE(leases.release("1.0.2"));
  CHECK_FALSE(leases.release("1.0.2"));
  CHECK(leases.fenced("1.0.2", "r1", 0, 0, 2) == nullptr);  // a duplicate FINISH
}

TEST_CASE("a reconnected agent keeps the leases it re-announces and only those", "[leases]") {
  LeaseTable leases;
  leases.grant("1.0.1", Lease{0, 0, 1, "old", 0, {}});
  leases.grant("1.1.1", Lease{0, 1, 1, "old", 0, {}});
  leases.grant("1.2.1", Lease{0, 2, 1, "old", 0, {}});
  Announcements announced{{"1.0.1", Announced{0, 0, 1}},
                          {"1.1.1", Announced{0, 1, 2}},   // wrong attempt
                          {"9.9.9", Announced{0, 9, 9}}};  // unknown
  auto moved = leases.transfer("old", "new", announced);
  CHECK(moved == std::vector<std::string>{"1.0.1"});
  CHECK(leases.held("1.0.1", "new"));
  CHECK(leases.held("1.1.1", "old"));
  CHECK(leases.held("1.2.1", "old"));
  CHECK(announced.count("1.0.1") == 0);
  auto sorted = leases.sort("new", announced);
  CHECK(sorted.readopt.empty());
  std::sort(sorted.stop.begin(), sorted.stop.end());
  CHECK(sorted.stop == std::vector<std::string>{"1.1.1", "9.9.9"});
}

TEST_CASE("a recovering trial re-announced with its study, trial and attempt is re-adopted",
          "[leases]") {
  LeaseTable leases;
  leases.set_recovery_deadline(110.0);
  leases.await(Recovering{0, {4, 40, 2, "1.4.2"}});
  leases.await(Recovering{0, {5, 50, 1, "1.5.1"}});
  CHECK(leases.recovery_deadline() == 110.0);
  Announcements announced{{"1.4.2", Announced{0, 4, 2}}, {"1.5.1", Announced{0, 5, 3}}};
  auto sorted = leases.sort("r1", announced);
  REQUIRE(sorted.readopt.size() == 1);
  CHECK(sorted.readopt[0].trial.trial_id == 40);
  CHECK(sorted.stop == std::vector<std::string>{"1.5.1"});
  leases.readopt("1.4.2", "r1");
  CHECK(leases.held("1.4.2", "r1"));
  CHECK(leases.find("1.4.2")->attempt == 2);
  CHECK(leases.recovering_count() == 1);
}

TEST_CASE("the recovery window closes at its deadline and hands back what no agent re-announced",
          "[leases]") {
  LeaseTable leases;
  CHECK_FALSE(leases.recovery_deadline());
  leases.set_recovery_deadline(110.0);
  leases.await(Recovering{1, {4, 40, 2, "2.4.2"}});
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
