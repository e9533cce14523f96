// The agent registry alone: slots, draining, liveness and names, with times
// passed in (no sockets, no clock).
#include "scheduler/agents.h"

#include <catch2/catch.hpp>

using hpo::scheduler::Agent;
using hpo::scheduler::AgentRegistry;

TEST_CASE("an agent has no free slot until READY, and READY never offers more than slots - leases",
          "[agents]") {
  AgentRegistry agents(1.0, 5);
  Agent& a = agents.join("r1", "a", 4, /*leases=*/1, 100.0);
  CHECK(a.free == 0);
  CHECK(agents.with_free_slots().empty());
  AgentRegistry::ready(a, 8, false);
  CHECK(a.free == 3);
  AgentRegistry::ready(a, -2, false);
  CHECK(a.free == 0);
}

TEST_CASE("a finished trial frees its slot unless the agent is draining", "[agents]") {
  AgentRegistry agents(1.0, 5);
  Agent& a = agents.join("r1", "a", 2, 0, 100.0);
  AgentRegistry::ready(a, 2, false);
  AgentRegistry::leased(a);
  AgentRegistry::leased(a);
  CHECK(a.free == 0);
  CHECK(a.leases == 2);
  AgentRegistry::released(a);
  CHECK(a.free == 1);
  AgentRegistry::ready(a, 0, /*draining=*/true);
  AgentRegistry::released(a);
  CHECK(a.leases == 0);
  CHECK(a.free == 0);
}

TEST_CASE("a drained agent gets no slot, even after it reconnects; a new process of it does",
          "[agents]") {
  AgentRegistry agents(1.0, 5);
  Agent& a = agents.join("r1", "a", 2, 1, 100.0, /*pid=*/7);
  AgentRegistry::ready(a, 1, false);
  agents.drain(a, "3 trials failed to start: ENOSPC");
  CHECK(a.free == 0);
  AgentRegistry::released(a);
  AgentRegistry::ready(a, 2, false);
  CHECK(a.free == 0);
  CHECK(agents.with_free_slots().empty());
  Agent& again = agents.join("r2", "a", 2, 0, 101.0, /*pid=*/7);  // the same process
  AgentRegistry::ready(again, 2, false);
  CHECK(again.drained == "3 trials failed to start: ENOSPC");
  CHECK(again.free == 0);
  Agent& fresh = agents.join("r3", "a", 2, 0, 102.0, /*pid=*/8);  // restarted: a new chance
  AgentRegistry::ready(fresh, 2, false);
  CHECK(fresh.drained.empty());
  CHECK(fresh.free == 2);
}

TEST_CASE("an agent is lost only after more than heartbeat * liveness seconds of silence",
          "[agents]") {
  AgentRegistry agents(1.0, 5);
  agents.join("r1", "a", 1, 0, 100.0);
  CHECK(agents.window() == 5.0);
  CHECK(agents.silent(105.0).empty());
  CHECK(agents.silent(105.1) == std::vector<std::string>{"r1"});
  agents.find("r1")->last_heard = 104.0;
  CHECK(agents.silent(105.1).empty());
}

TEST_CASE("a heartbeat is due a beat after the last message sent", "[agents]") {
  AgentRegistry agents(2.0, 3);
  agents.join("r1", "a", 1, 0, 100.0);
  CHECK(agents.heartbeat_due(101.9).empty());
  CHECK(agents.heartbeat_due(102.0) == std::vector<std::string>{"r1"});
  agents.sent("r1", 102.0);
  CHECK(agents.heartbeat_due(103.0).empty());
  CHECK(agents.next_deadline(103.0) == 104.0);
  agents.sent("unknown", 103.0);  // nothing happens
}

TEST_CASE("a name maps to the connection it joined on last", "[agents]") {
  AgentRegistry agents(1.0, 5);
  agents.join("r1", "a", 1, 0, 100.0);
  agents.join("r2", "a", 1, 0, 101.0);
  CHECK(agents.routing_of("a") == "r2");
  agents.remove("r1");  // the old connection goes; the name stays with r2
  CHECK(agents.routing_of("a") == "r2");
  CHECK(agents.size() == 1);
  agents.remove("r2");
  CHECK(agents.routing_of("a").empty());
  CHECK(agents.find("r2") == nullptr);
}
