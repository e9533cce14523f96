// The metric-line protocol: what a record adds up to, whatever a trial prints.
#include "trainer/agent/metric_lines.h"

#include <catch2/catch.hpp>

using nlohmann::json;

TEST_CASE("a record whose final is not a boolean is an ordinary record, not a crash") {
  hpo::agent::MetricTally tally;
  // Only "final": true marks the final record; a number there must not throw out of the agent.
  REQUIRE_NOTHROW(tally.add(json{{"final", 1}, {"acc", 0.9}}));
  REQUIRE_NOTHROW(tally.add(json{{"final", "yes"}, {"acc", 0.8}}));
  CHECK(tally.any());
  CHECK(tally.final_metrics().at("acc") == 0.8);
  tally.add(json{{"final", true}, {"acc", 0.95}});
  tally.add(json{{"acc", 0.5}});
  CHECK(tally.final_metrics().at("acc") == 0.95);
}
