// What the daemon writes about its agents for `hpo agents` (agent_records.h): the state on each
// change, and last_seen swept every few seconds rather than written per heartbeat.
#include "tests/scheduler/daemon_harness.h"

using namespace hpo_test;

namespace {

hpo::results::AgentRow agent_row(Fixture& f, const std::string& name) {
  auto store = f.reader();
  auto rows = store.agents();
  REQUIRE(rows);
  for (auto& a : *rows) {
    if (a.id == name) return a;
  }
  FAIL("no agents row for " << name);
  return {};
}

}  // namespace

TEST_CASE("an agent's row says live, draining, live again, then left, as it goes", "[daemon]") {
  Fixture f;
  DaemonOptions o;
  o.heartbeat_ms = 1000;
  o.liveness = 5;
  f.start(o);
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(2);
  expect<p::Welcome>(*f.daemon, a);
  auto row = agent_row(f, "a");
  CHECK(row.state == "live");
  CHECK(row.slots == 2);
  CHECK(row.stale_after == Approx(5.0 + 2 * 2.5));  // the window and two sweeps

  a.send(p::Ready{0, true});
  settle(*f.daemon, a, 5);
  CHECK(agent_row(f, "a").state == "draining");
  a.send(p::Ready{0, true});  // no change, nothing new
  settle(*f.daemon, a, 5);
  CHECK(agent_row(f, "a").state == "draining");
  a.send(p::Ready{2, false});
  settle(*f.daemon, a, 5);
  CHECK(agent_row(f, "a").state == "live");

  f.clock.advance(1.0);
  const double bye_time = f.clock.now();
  a.send(p::Bye{});
  settle(*f.daemon, a, 5);
  row = agent_row(f, "a");
  CHECK(row.state == "left");
  CHECK(row.last_seen == Approx(bye_time));
}

TEST_CASE("last_seen is swept every few seconds, not written per heartbeat", "[daemon]") {
  Fixture f;
  DaemonOptions o;
  o.heartbeat_ms = 1000;
  o.liveness = 5;  // a 5 s window: a sweep every 2.5 s
  f.start(o);
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(1);
  expect<p::Welcome>(*f.daemon, a);
  const double joined = f.clock.now();
  CHECK(agent_row(f, "a").last_seen == Approx(joined));
  // Heartbeats inside one sweep interval leave the row alone...
  for (int i = 1; i <= 2; ++i) {
    f.clock.advance(1.0);
    a.send(p::Heartbeat{});
    settle(*f.daemon, a, 3);
    CHECK(agent_row(f, "a").last_seen == Approx(joined));
  }
  // ...and the next sweep records the latest of them.
  f.clock.advance(0.6);  // 2.6 s after the first sweep
  settle(*f.daemon, a, 3);
  CHECK(agent_row(f, "a").last_seen == Approx(joined + 2.0));
  f.clock.advance(0.4);
  a.send(p::Heartbeat{});
  settle(*f.daemon, a, 3);
  CHECK(agent_row(f, "a").last_seen == Approx(joined + 2.0));  // the next sweep is not due yet
  f.clock.advance(2.2);
  settle(*f.daemon, a, 3);
  CHECK(agent_row(f, "a").last_seen == Approx(joined + 3.0));
}

TEST_CASE("a silent agent's row says lost, seen when it was last heard", "[daemon]") {
  Fixture f;
  DaemonOptions o;
  o.heartbeat_ms = 1000;
  o.liveness = 3;
  f.start(o);
  REQUIRE(f.daemon->add_study(spec_of(study_json("s", 1, 1))));
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(1);
  expect<p::Welcome>(*f.daemon, a);
  a.send(p::Ready{1});
  expect<p::Assign>(*f.daemon, a);
  const double heard = f.clock.now();
  {
    auto row = agent_row(f, "a");
    CHECK(row.state == "live");
    CHECK(row.running == 1);
  }
  f.clock.advance(3.5);
  settle(*f.daemon, a, 5);
  REQUIRE(f.daemon->stats().agents_lost == 1);
  auto row = agent_row(f, "a");
  CHECK(row.state == "lost");
  CHECK(row.last_seen == Approx(heard));
  CHECK(row.running == 0);  // its trial was requeued
}
