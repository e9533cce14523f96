// The daemon and one trial's life: leased, reported, pruned, finished, retried,
// and fenced off when a message comes from an old attempt.
#include "tests/scheduler/daemon_harness.h"

using namespace hpo_test;

TEST_CASE("an assigned trial is recorded COMPLETED once with its value", "[daemon]") {
  Fixture f;
  f.start();
  REQUIRE(f.daemon->add_study(spec_of(study_json("s", 1, 1))));
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(1);
  expect<p::Welcome>(*f.daemon, a);
  a.send(p::Ready{1});
  auto assign = expect<p::Assign>(*f.daemon, a);
  CHECK(assign.attempt == 1);
  CHECK(assign.spec["function"] == "branin");
  CHECK(f.trial("s", 0).state == TrialState::kRunning);
  a.send(finish_of(assign, 2.5));
  auto ack = expect<p::Ack>(*f.daemon, a);
  CHECK(ack.lease == assign.lease);
  a.send(finish_of(assign, 9.0));  // a duplicate FINISH: ACKed, not counted
  expect<p::Ack>(*f.daemon, a);
  auto t = f.trial("s", 0);
  CHECK(t.state == TrialState::kCompleted);
  CHECK(t.value == 2.5);
  CHECK(f.daemon->stats().completed == 1);
  CHECK(f.daemon->stats().ignored == 1);
  CHECK(f.daemon->all_done());
}

TEST_CASE("a late report and finish from an old attempt are ignored", "[daemon]") {
  Fixture f;
  f.start();
  REQUIRE(f.daemon->add_study(spec_of(study_json("s", 1, 1))));
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(1);
  expect<p::Welcome>(*f.daemon, a);
  a.send(p::Ready{1});
  auto old = expect<p::Assign>(*f.daemon, a);
  f.clock.advance(6);  // a is lost; the trial goes back to the queue
  settle(*f.daemon, a, 3);

  FakeAgent b(f.ctx, f.daemon->endpoint(), "b");
  b.hello(1);
  expect<p::Welcome>(*f.daemon, b);
  b.send(p::Ready{1});
  auto current = expect<p::Assign>(*f.daemon, b);
  REQUIRE(current.attempt == old.attempt + 1);

  // a comes back and delivers what it had: announced in HELLO it is not
  // re-adopted (WELCOME says stop), and its report and finish count for nothing.
  a.hello(1, {{old.study, old.trial, old.attempt, old.lease, true}});
  auto w = expect<p::Welcome>(*f.daemon, a);
  CHECK(w.adopted.empty());
  CHECK(w.stop == std::vector<std::string>{old.lease});
  a.send(p::Report{old.study, old.trial, old.attempt, old.lease, 1, {{"value", -100.0}}});
  auto d = expect<p::Decision>(*f.daemon, a);
  CHECK(d.stop);
  a.send(finish_of(old, -100.0));
  expect<p::Ack>(*f.daemon, a);
  CHECK(f.daemon->stats().ignored == 2);
  CHECK(f.trial("s", 0).state == TrialState::kRunning);
  CHECK(f.trial("s", 0).attempt == current.attempt);

  b.send(finish_of(current, 7.0));
  expect<p::Ack>(*f.daemon, b);
  auto t = f.trial("s", 0);
  CHECK(t.state == TrialState::kCompleted);
  CHECK(t.value == 7.0);
  CHECK(f.daemon->stats().completed == 1);
}

TEST_CASE("a failing trial is retried up to max_retries, then FAILED with its error", "[daemon]") {
  Fixture f;
  f.start();
  REQUIRE(f.daemon->add_study(spec_of(study_json("s", 1, 1, /*max_retries=*/2))));
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(1);
  expect<p::Welcome>(*f.daemon, a);
  a.send(p::Ready{1});
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto as = expect<p::Assign>(*f.daemon, a);
    CHECK(as.trial == 0);
    CHECK(as.attempt == attempt);
    a.send(p::Finish{as.study,
                     as.trial,
                     as.attempt,
                     as.lease,
                     p::Outcome::kFailed,
                     {},
                     "boom " + std::to_string(attempt),
                     "line\n",
                     false,
                     false});
    expect<p::Ack>(*f.daemon, a);
  }
  CHECK(settle(*f.daemon, a, 10).empty());  // no fourth attempt, no new trial
  auto t = f.trial("s", 0);
  CHECK(t.state == TrialState::kFailed);
  CHECK(t.error == "boom 3");
  CHECK(t.log_tail == "line\n");
  CHECK(f.daemon->all_done());
}

TEST_CASE("the median pruner's verdict reaches the agent as DECISION STOP and ends PRUNED",
          "[daemon]") {
  Fixture f;
  f.start();
  json j = study_json("s", 2, 1);
  j["pruner"] = {{"type", "median"}, {"warmup_steps", 0}, {"min_trials", 1}};
  REQUIRE(f.daemon->add_study(spec_of(j)));
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(1);
  expect<p::Welcome>(*f.daemon, a);
  a.send(p::Ready{1});
  auto good = expect<p::Assign>(*f.daemon, a);
  a.send(p::Report{good.study, good.trial, good.attempt, good.lease, 1, {{"value", 1.0}}});
  CHECK_FALSE(expect<p::Decision>(*f.daemon, a).stop);
  a.send(finish_of(good, 1.0));
  auto bad = expect<p::Assign>(*f.daemon, a);
  a.send(p::Report{bad.study, bad.trial, bad.attempt, bad.lease, 1, {{"value", 50.0}}});
  auto d = expect<p::Decision>(*f.daemon, a);
  CHECK(d.stop);
  CHECK(d.lease == bad.lease);
  a.send(p::Finish{
      bad.study, bad.trial, bad.attempt, bad.lease, p::Outcome::kPruned, {}, "", "", false, false});
  expect<p::Ack>(*f.daemon, a);
  auto t = f.trial("s", bad.trial);
  CHECK(t.state == TrialState::kPruned);
  CHECK(t.value == 50.0);
  CHECK(f.daemon->all_done());
}

TEST_CASE("when max_seconds is spent running trials are told STOP and nothing new starts",
          "[daemon]") {
  Fixture f;
  DaemonOptions o;
  o.liveness = 100;
  f.start(o);
  json j = study_json("s", 10, 1);
  j["budget"]["max_seconds"] = 10;
  REQUIRE(f.daemon->add_study(spec_of(j)));
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(1);
  expect<p::Welcome>(*f.daemon, a);
  a.send(p::Ready{1});
  auto first = expect<p::Assign>(*f.daemon, a);
  a.send(p::Report{first.study, first.trial, first.attempt, first.lease, 1, {{"value", 3.0}}});
  CHECK_FALSE(expect<p::Decision>(*f.daemon, a).stop);
  f.clock.advance(11);
  a.send(p::Report{first.study, first.trial, first.attempt, first.lease, 2, {{"value", 2.0}}});
  CHECK(expect<p::Decision>(*f.daemon, a).stop);
  a.send(p::Finish{first.study,
                   first.trial,
                   first.attempt,
                   first.lease,
                   p::Outcome::kPruned,
                   {},
                   "",
                   "",
                   false,
                   false});
  expect<p::Ack>(*f.daemon, a);
  CHECK(settle(*f.daemon, a, 10).empty());
  CHECK(f.daemon->all_done());
  // Stopped because the study ended, not by the pruner (issue 11).
  CHECK(f.trial("s", 0).state == TrialState::kCancelled);
  CHECK(f.trial("s", 0).error == "study finished: time budget spent");
}
