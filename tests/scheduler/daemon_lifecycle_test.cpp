// The daemon and the life of a trial beyond one run (issue 11): retry and
// interruption budgets that live in the store, start failures charged to the
// agent, and the end of a study (target reached, time spent) cancelling what is
// left.
#include "tests/scheduler/daemon_harness.h"

using namespace hpo_test;

namespace {

p::Finish ended(const p::Assign& a, p::Outcome outcome, const std::string& error = "") {
  return p::Finish{a.study, a.trial, a.attempt, a.lease, outcome, {}, error, "", false, false};
}

p::Finish start_failed(const p::Assign& a, const std::string& error) {
  p::Finish f = ended(a, p::Outcome::kInterrupted, error);
  f.start_failed = true;
  return f;
}

std::vector<hpo::results::EventRow> events_of(Fixture& f, const std::string& kind) {
  auto r = f.reader();
  auto all = r.events(std::nullopt);
  REQUIRE(all);
  std::vector<hpo::results::EventRow> out;
  for (auto& e : *all) {
    if (e.kind == kind) out.push_back(e);
  }
  return out;
}

}  // namespace

TEST_CASE("a trial interrupted more than max_interruptions times is FAILED, saying so",
          "[daemon][lifecycle]") {
  Fixture f;
  f.start();
  json j = study_json("s", 1, 1);
  j["budget"]["max_interruptions"] = 2;
  REQUIRE(f.daemon->add_study(spec_of(j)));
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(1);
  expect<p::Welcome>(*f.daemon, a);
  a.send(p::Ready{1});
  // A refused ASSIGN (the agent had no slot) is not the trial's interruption.
  auto refused = expect<p::Assign>(*f.daemon, a);
  p::Finish no_slot = ended(refused, p::Outcome::kInterrupted, "agent has no free slot");
  no_slot.refused = true;
  a.send(no_slot);
  expect<p::Ack>(*f.daemon, a);
  for (int attempt = 2; attempt <= 4; ++attempt) {
    auto as = expect<p::Assign>(*f.daemon, a);
    CHECK(as.attempt == attempt);
    a.send(ended(as, p::Outcome::kInterrupted, "agent killed by its trial"));
    expect<p::Ack>(*f.daemon, a);
  }
  CHECK(settle(*f.daemon, a, 10).empty());  // not requeued a fourth time
  auto t = f.trial("s", 0);
  CHECK(t.state == TrialState::kFailed);
  CHECK(t.interruptions == 3);
  CHECK(t.error.find("max_interruptions (2)") != std::string::npos);
  CHECK(t.error.find("agent killed by its trial") != std::string::npos);
  CHECK(f.daemon->all_done());
}

TEST_CASE("a trial whose agent is lost again and again is FAILED after max_interruptions",
          "[daemon][lifecycle]") {
  Fixture f;
  f.start();
  json j = study_json("s", 1, 1);
  j["budget"]["max_interruptions"] = 1;
  REQUIRE(f.daemon->add_study(spec_of(j)));
  for (const std::string name : {"a1", "a2"}) {
    const int attempt = name == "a1" ? 1 : 2;
    FakeAgent a(f.ctx, f.daemon->endpoint(), name);
    a.hello(1);
    expect<p::Welcome>(*f.daemon, a);
    a.send(p::Ready{1});
    auto as = expect<p::Assign>(*f.daemon, a);
    CHECK(as.attempt == attempt);
    f.clock.advance(60);  // silent past its liveness window: lost
    settle(*f.daemon, a, 3);
  }
  auto t = f.trial("s", 0);
  CHECK(t.state == TrialState::kFailed);
  CHECK(t.error.find("max_interruptions") != std::string::npos);
}

TEST_CASE("retry counts survive a scheduler restart: a trial gets only the retries it has left",
          "[daemon][lifecycle]") {
  Fixture f;
  DaemonOptions o;
  o.recovery_window_s = 0;
  f.start(o);
  REQUIRE(f.daemon->add_study(spec_of(study_json("s", 1, 1, /*max_retries=*/2))));
  {
    FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
    a.hello(1);
    expect<p::Welcome>(*f.daemon, a);
    a.send(p::Ready{1});
    auto as = expect<p::Assign>(*f.daemon, a);
    a.send(ended(as, p::Outcome::kFailed, "boom 1"));
    CHECK(expect<p::Assign>(*f.daemon, a).attempt == 2);  // the retry; then the crash
  }
  f.crash();
  CHECK(f.trial("s", 0).failures == 1);

  f.start(o);  // a new Daemon over the same store; attempt 2 is requeued uncharged
  FakeAgent a(f.ctx, f.daemon->endpoint(), "b");
  a.hello(1);
  expect<p::Welcome>(*f.daemon, a);
  a.send(p::Ready{1});
  for (int attempt = 3; attempt <= 4; ++attempt) {
    auto as = expect<p::Assign>(*f.daemon, a);
    CHECK(as.attempt == attempt);
    a.send(ended(as, p::Outcome::kFailed, "boom " + std::to_string(attempt)));
    expect<p::Ack>(*f.daemon, a);
  }
  // 1 + max_retries failed attempts in all (the restart's is not one), not 1 + 2 + 2.
  CHECK(settle(*f.daemon, a, 10).empty());
  auto t = f.trial("s", 0);
  CHECK(t.state == TrialState::kFailed);
  CHECK(t.failures == 3);
  CHECK(t.interruptions == 0);
  CHECK(t.error == "boom 4");
}

TEST_CASE("trials that fail to start are requeued uncharged and their agent is drained after 3",
          "[daemon][lifecycle]") {
  Fixture f;
  DaemonOptions o;
  o.liveness = 1000;
  f.start(o);
  REQUIRE(f.daemon->add_study(spec_of(study_json("s", 2, 1, /*max_retries=*/0))));
  FakeAgent bad(f.ctx, f.daemon->endpoint(), "bad");
  bad.hello(1);
  expect<p::Welcome>(*f.daemon, bad);
  bad.send(p::Ready{1});
  for (int i = 1; i <= 3; ++i) {
    auto as = expect<p::Assign>(*f.daemon, bad);
    CHECK(as.trial == 0);  // the same trial again: its config is not blamed
    bad.send(start_failed(as, "trial directory /full: No space left on device"));
    expect<p::Ack>(*f.daemon, bad);
  }
  bad.send(p::Ready{1});
  for (const auto& m : settle(*f.daemon, bad, 10)) {
    CHECK_FALSE(std::holds_alternative<p::Assign>(m));  // drained: no more work
  }
  CHECK(f.daemon->stats().agents_drained == 1);
  auto t = f.trial("s", 0);
  CHECK(t.state == TrialState::kQueued);
  CHECK(t.failures == 0);
  CHECK(t.interruptions == 0);
  auto drained = events_of(f, "agent_drained");
  REQUIRE(drained.size() == 1);
  CHECK(drained[0].detail["agent"] == "bad");
  CHECK(drained[0].detail["reason"].get<std::string>().find("3 trials failed to start") !=
        std::string::npos);
  {
    auto r = f.reader();
    auto agents = r.agents();
    REQUIRE(agents);
    REQUIRE(agents->size() == 1);
    CHECK(agents->front().drained.find("No space left on device") != std::string::npos);
  }

  // A healthy agent runs the study to the end; nothing is FAILED.
  FakeAgent good(f.ctx, f.daemon->endpoint(), "good");
  good.hello(1);
  expect<p::Welcome>(*f.daemon, good);
  good.send(p::Ready{1});
  for (int i = 0; i < 2; ++i) {
    auto as = expect<p::Assign>(*f.daemon, good);
    good.send(finish_of(as, 1.0 + i));
    expect<p::Ack>(*f.daemon, good);
  }
  settle(*f.daemon, good, 3);
  CHECK(f.daemon->all_done());
  CHECK(f.trial("s", 0).state == TrialState::kCompleted);
  CHECK(f.trial("s", 1).state == TrialState::kCompleted);
}

TEST_CASE("a start failure between successes does not drain the agent", "[daemon][lifecycle]") {
  Fixture f;
  DaemonOptions o;
  o.liveness = 1000;
  f.start(o);
  REQUIRE(f.daemon->add_study(spec_of(study_json("s", 3, 1))));
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(1);
  expect<p::Welcome>(*f.daemon, a);
  a.send(p::Ready{1});
  for (int i = 0; i < 3; ++i) {
    for (int k = 0; k < 2; ++k) {
      auto as = expect<p::Assign>(*f.daemon, a);
      a.send(start_failed(as, "EACCES"));
      expect<p::Ack>(*f.daemon, a);
    }
    auto as = expect<p::Assign>(*f.daemon, a);
    a.send(finish_of(as, 1.0));
    expect<p::Ack>(*f.daemon, a);
  }
  settle(*f.daemon, a, 3);
  CHECK(f.daemon->stats().agents_drained == 0);
  CHECK(f.daemon->all_done());
}

TEST_CASE("a study that reaches its target cancels its queued trials and stops its running ones",
          "[daemon][lifecycle]") {
  Fixture f;
  DaemonOptions o;
  o.liveness = 1000;
  f.start(o);
  json j = study_json("s", 10, 3);
  j["budget"]["target"] = 5.0;
  REQUIRE(f.daemon->add_study(spec_of(j)));
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(2);
  expect<p::Welcome>(*f.daemon, a);
  a.send(p::Ready{2});
  auto first = expect<p::Assign>(*f.daemon, a);
  auto second = expect<p::Assign>(*f.daemon, a);
  // A third trial goes back to the queue (its agent left) and waits there: no free slot.
  FakeAgent b(f.ctx, f.daemon->endpoint(), "b");
  b.hello(1);
  expect<p::Welcome>(*f.daemon, b);
  b.send(p::Ready{1});
  auto third = expect<p::Assign>(*f.daemon, b);
  b.send(p::Bye{});
  settle(*f.daemon, a, 3);
  REQUIRE(f.trial("s", third.trial).state == TrialState::kQueued);

  a.send(finish_of(first, 1.0));  // better than the target
  auto stop = expect<p::Decision>(*f.daemon, a);
  CHECK(stop.stop);
  CHECK(stop.lease == second.lease);
  CHECK(f.trial("s", third.trial).state == TrialState::kCancelled);
  CHECK(f.trial("s", third.trial).error == "study finished: target reached");
  CHECK_FALSE(f.daemon->all_done());  // the stopped trial has not ended yet

  a.send(ended(second, p::Outcome::kPruned));
  expect<p::Ack>(*f.daemon, a);
  settle(*f.daemon, a, 3);
  auto t = f.trial("s", second.trial);
  CHECK(t.state == TrialState::kCancelled);
  CHECK(t.error == "study finished: target reached");
  CHECK(f.trial("s", first.trial).state == TrialState::kCompleted);
  CHECK(f.daemon->all_done());
  CHECK(events_of(f, "cancelled").size() == 2);
  auto finished = events_of(f, "study_finished");
  REQUIRE(finished.size() == 1);
  CHECK(finished[0].detail["reason"] == "target reached");
}
