// The daemon and its agents: liveness, heartbeats, malformed frames, and
// re-adoption of running trials after a scheduler restart.
#include "tests/scheduler/daemon_harness.h"

using namespace hpo_test;

TEST_CASE("an agent silent past its liveness window is lost and its trial requeued", "[daemon]") {
  Fixture f;
  DaemonOptions o;
  o.heartbeat_ms = 1000;
  o.liveness = 5;
  f.start(o);
  REQUIRE(f.daemon->add_study(spec_of(study_json("s", 1, 1))));
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(1);
  expect<p::Welcome>(*f.daemon, a);
  a.send(p::Ready{1});
  auto first = expect<p::Assign>(*f.daemon, a);

  f.clock.advance(4.9);  // inside the window: still alive
  settle(*f.daemon, a, 5);
  CHECK(f.daemon->stats().agents == 1);
  f.clock.advance(0.2);  // 5.1 s of silence
  settle(*f.daemon, a, 5);
  CHECK(f.daemon->stats().agents == 0);
  CHECK(f.daemon->stats().agents_lost == 1);
  auto t = f.trial("s", 0);
  CHECK(t.state == TrialState::kQueued);

  // Its later messages are refused until it says HELLO again.
  a.send(p::Heartbeat{});
  auto refused = expect<p::ErrorReply>(*f.daemon, a);
  CHECK(refused.hello_required);

  FakeAgent b(f.ctx, f.daemon->endpoint(), "b");
  b.hello(1);
  expect<p::Welcome>(*f.daemon, b);
  b.send(p::Ready{1});
  auto second = expect<p::Assign>(*f.daemon, b);
  CHECK(second.trial == first.trial);
  CHECK(second.attempt == first.attempt + 1);
  CHECK(second.config == first.config);
  CHECK(second.lease != first.lease);
}

TEST_CASE("the scheduler sends heartbeats to an idle agent and any message keeps it alive",
          "[daemon]") {
  Fixture f;
  DaemonOptions o;
  o.heartbeat_ms = 1000;
  o.liveness = 3;
  f.start(o);
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(1);
  expect<p::Welcome>(*f.daemon, a);
  for (int i = 0; i < 10; ++i) {  // 25 s, far past the 3 s window, in steps of 2.5 s
    f.clock.advance(2.5);
    expect<p::Heartbeat>(*f.daemon, a);
    a.send(p::Heartbeat{});
    settle(*f.daemon, a, 3);
  }
  CHECK(f.daemon->stats().agents == 1);
  f.clock.advance(3.5);
  settle(*f.daemon, a, 3);
  CHECK(f.daemon->stats().agents == 0);
}

TEST_CASE("after a restart a re-announced trial is re-adopted and the others requeued",
          "[daemon]") {
  Fixture f;
  DaemonOptions o;
  o.recovery_window_s = 10;
  o.liveness = 30;  // the agent stays alive across the window
  f.start(o);
  REQUIRE(f.daemon->add_study(spec_of(study_json("s", 2, 2))));
  p::Assign one, two;
  {
    FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
    a.hello(2);
    expect<p::Welcome>(*f.daemon, a);
    a.send(p::Ready{2});
    one = expect<p::Assign>(*f.daemon, a);
    two = expect<p::Assign>(*f.daemon, a);
  }
  f.crash();
  CHECK(f.trial("s", 0).state == TrialState::kRunning);

  f.start(o);  // no add_study: the stored study carries on
  CHECK(f.trial("s", 0).state == TrialState::kInterrupted);
  CHECK(f.daemon->stats().recovering == 2);
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(2, {{one.study, one.trial, one.attempt, one.lease, false}});
  auto w = expect<p::Welcome>(*f.daemon, a);
  CHECK(w.adopted == std::vector<std::string>{one.lease});
  a.send(p::Ready{1});
  // max_parallel 2: the trial still recovering keeps its place, nothing new is leased.
  CHECK(settle(*f.daemon, a, 10).empty());
  auto t = f.trial("s", one.trial);
  CHECK(t.state == TrialState::kRunning);
  CHECK(t.attempt == one.attempt);
  CHECK(t.lease == one.lease);

  f.clock.advance(10.5);  // the window closes: the other one is requeued, then leased again
  auto again = expect<p::Assign>(*f.daemon, a);
  CHECK(again.trial == two.trial);
  CHECK(again.attempt == two.attempt + 1);

  a.send(finish_of(one, 1.0));
  a.send(finish_of(again, 2.0));
  expect<p::Ack>(*f.daemon, a);
  expect<p::Ack>(*f.daemon, a);
  settle(*f.daemon, a, 3);
  CHECK(f.trial("s", 0).state == TrialState::kCompleted);
  CHECK(f.trial("s", 1).state == TrialState::kCompleted);
  CHECK(f.daemon->all_done());
  CHECK(f.daemon->stats().readopted == 1);
}

TEST_CASE("malformed frames are answered ERROR and the loop carries on", "[daemon]") {
  Fixture f;
  f.start();
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.socket.send(zmq::str_buffer("garbage"), zmq::send_flags::none);
  a.socket.send(zmq::str_buffer("hpo/1"), zmq::send_flags::sndmore);
  a.socket.send(zmq::str_buffer("REPORT"), zmq::send_flags::sndmore);
  a.socket.send(zmq::str_buffer("{not json"), zmq::send_flags::none);
  a.socket.send(zmq::str_buffer("hpo/9"), zmq::send_flags::sndmore);
  a.socket.send(zmq::str_buffer("HELLO"), zmq::send_flags::sndmore);
  a.socket.send(zmq::str_buffer("{}"), zmq::send_flags::none);
  std::string big(p::kMaxBodyBytes + 10, 'x');
  a.socket.send(zmq::str_buffer("hpo/1"), zmq::send_flags::sndmore);
  a.socket.send(zmq::str_buffer("HELLO"), zmq::send_flags::sndmore);
  a.socket.send(zmq::buffer(big), zmq::send_flags::none);
  std::vector<p::ErrorReply> errors;
  for (int i = 0; i < 4; ++i) errors.push_back(expect<p::ErrorReply>(*f.daemon, a));
  CHECK_THAT(errors[0].message, Catch::Contains("expected 3 frames"));
  CHECK_THAT(errors[1].message, Catch::StartsWith("REPORT: body is not valid JSON"));
  CHECK_THAT(errors[2].message, Catch::Contains("unknown protocol version 'hpo/9'"));
  CHECK_THAT(errors[3].message, Catch::StartsWith("HELLO: ") && Catch::Contains("limit"));
  for (const auto& e : errors) CHECK_FALSE(e.hello_required);
  a.hello(1);
  expect<p::Welcome>(*f.daemon, a);
  CHECK(f.daemon->stats().bad_messages == 4);
}

TEST_CASE(
    "an agent that re-announces a running trial with no free slot gets new work after "
    "its FINISH",
    "[daemon]") {
  Fixture f;
  f.start();
  REQUIRE(f.daemon->add_study(spec_of(study_json("s", 3, 1))));
  p::Assign first;
  {
    FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
    a.hello(1);
    expect<p::Welcome>(*f.daemon, a);
    a.send(p::Ready{1});
    first = expect<p::Assign>(*f.daemon, a);
  }
  f.crash();
  f.start();
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(1, {{first.study, first.trial, first.attempt, first.lease, false}});
  CHECK(expect<p::Welcome>(*f.daemon, a).adopted.size() == 1);
  a.send(p::Ready{0});  // busy with the re-adopted trial, not draining
  a.send(finish_of(first, 1.0));
  auto next = expect<p::Assign>(*f.daemon, a);
  CHECK(next.trial == 1);
  a.send(p::Ready{0, true});  // draining: no refill after this FINISH
  a.send(finish_of(next, 2.0));
  expect<p::Ack>(*f.daemon, a);
  for (const auto& m : settle(*f.daemon, a, 10)) CHECK_FALSE(std::holds_alternative<p::Assign>(m));
}

TEST_CASE("a repeated HELLO on the same connection keeps the trials it re-adopted", "[daemon]") {
  // After a restart an agent re-sends HELLO every heartbeat until it is welcomed, and ZeroMQ
  // queues them through the outage: two HELLOs from one socket must not undo the re-adoption.
  Fixture f;
  DaemonOptions o;
  o.recovery_window_s = 10;
  o.liveness = 30;
  f.start(o);
  REQUIRE(f.daemon->add_study(spec_of(study_json("s", 1, 1))));
  p::Assign one;
  {
    FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
    a.hello(1);
    expect<p::Welcome>(*f.daemon, a);
    a.send(p::Ready{1});
    one = expect<p::Assign>(*f.daemon, a);
  }
  f.crash();
  f.start(o);
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(1, {{one.study, one.trial, one.attempt, one.lease, false}});
  a.hello(1, {{one.study, one.trial, one.attempt, one.lease, false}});
  auto first = expect<p::Welcome>(*f.daemon, a);
  auto second = expect<p::Welcome>(*f.daemon, a);
  CHECK(first.adopted == std::vector<std::string>{one.lease});
  CHECK(second.adopted == std::vector<std::string>{one.lease});
  settle(*f.daemon, a, 3);
  auto t = f.trial("s", one.trial);
  CHECK(t.state == TrialState::kRunning);
  CHECK(t.attempt == one.attempt);
  CHECK(t.lease == one.lease);

  // The trial's FINISH counts: it was never requeued.
  a.send(finish_of(one, 1.0));
  expect<p::Ack>(*f.daemon, a);
  settle(*f.daemon, a, 3);
  CHECK(f.trial("s", one.trial).state == TrialState::kCompleted);
  CHECK(f.trial("s", one.trial).attempt == one.attempt);
  CHECK(f.daemon->all_done());
}

TEST_CASE(
    "a scheduler restarted again inside the recovery window still waits for the trials of the "
    "restart before",
    "[daemon]") {
  // Found by the chaos test (tests/e2e/chaos_test.cpp, seeds 4 and 7): two scheduler kills in a
  // row, the second before the agents re-announced to the first restart. The trials still
  // awaiting them were INTERRUPTED in the file and were requeued at once on the second start,
  // and the work their agents still ran was thrown away.
  Fixture f;
  DaemonOptions o;
  o.recovery_window_s = 10;
  o.liveness = 30;
  f.start(o);
  REQUIRE(f.daemon->add_study(spec_of(study_json("s", 2, 2))));
  p::Assign one, two;
  {
    FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
    a.hello(2);
    expect<p::Welcome>(*f.daemon, a);
    a.send(p::Ready{2});
    one = expect<p::Assign>(*f.daemon, a);
    two = expect<p::Assign>(*f.daemon, a);
  }
  f.crash();
  f.start(o);
  CHECK(f.daemon->stats().recovering == 2);
  f.crash();  // before any agent re-announced
  f.start(o);
  CHECK(f.daemon->stats().recovering == 2);
  CHECK(f.trial("s", one.trial).state == TrialState::kInterrupted);

  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(2, {{one.study, one.trial, one.attempt, one.lease, false},
              {two.study, two.trial, two.attempt, two.lease, false}});
  auto w = expect<p::Welcome>(*f.daemon, a);
  CHECK(w.adopted.size() == 2);
  CHECK(w.stop.empty());
  for (const auto& assign : {one, two}) {
    auto t = f.trial("s", assign.trial);
    CHECK(t.state == TrialState::kRunning);
    CHECK(t.attempt == assign.attempt);
    a.send(finish_of(assign, 1.0));
    expect<p::Ack>(*f.daemon, a);
  }
  settle(*f.daemon, a, 3);
  CHECK(f.trial("s", one.trial).state == TrialState::kCompleted);
  CHECK(f.trial("s", two.trial).state == TrialState::kCompleted);
  CHECK(f.daemon->all_done());
}
