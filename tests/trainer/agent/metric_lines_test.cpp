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

TEST_CASE("a step too large for an integer is a malformed record, not a wrapped-around step") {
  using hpo::agent::MetricLine;
  using hpo::agent::OutputStream;
  // Converting 1e300 to int64 is undefined behaviour: it used to arrive as some negative step.
  auto m = hpo::agent::read_metric_line(OutputStream::kStdout,
                                        R"(HPO_METRIC {"step": 1e300, "loss": 1})", false);
  CHECK(m.kind == MetricLine::Kind::kMalformed);
  CHECK(m.warning.find("\"step\" is out of range") != std::string::npos);
  // Native trials print bare JSON; there such a line is no report either.
  hpo::agent::MetricTally tally;
  CHECK_FALSE(tally.add(json{{"epoch", -1e300}, {"loss", 1.0}}).has_value());
  auto ok = tally.add(json{{"epoch", 3.0}, {"loss", 1.0}});
  REQUIRE(ok);
  CHECK(ok->step == 3);
}

TEST_CASE("a step or epoch beyond 2^53 is refused, not converted to an integer") {
  // Found by fuzz_metric_line (corpus seed huge-number): 1e300 cast to int64 is undefined
  // behaviour.
  for (const char* text : {R"({"step": 1e300, "acc": 1})", R"({"epoch": -1e19, "acc": 1})"}) {
    auto r = hpo::agent::parse_metric_record(text);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("is out of range") != std::string::npos);
  }
  auto ok = hpo::agent::parse_metric_record(R"({"step": 9007199254740992, "acc": 1})");
  REQUIRE(ok.has_value());
  // A tally given such a record directly makes no report from it (there is no step).
  hpo::agent::MetricTally tally;
  CHECK_FALSE(tally.add(json{{"step", 1e300}, {"acc", 1.0}}).has_value());
  CHECK(tally.add(json{{"step", 3}, {"acc", 1.0}})->step == 3);
}
