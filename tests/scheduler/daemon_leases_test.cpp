// The daemon and its leases as a stranger sees them (issue 12): a lease id
// tells nothing and cannot be guessed, and a lease is bound to the key of the
// agent it was given to, across a scheduler restart too.
#include <set>

#include "tests/scheduler/daemon_harness.h"

using namespace hpo_test;

namespace {

bool is_hex128(const std::string& id) {
  return id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

TEST_CASE("a lease id is 128 random bits, not predictable from the study, trial and attempt",
          "[daemon][leases]") {
  Fixture f;
  f.start();
  REQUIRE(f.daemon->add_study(spec_of(study_json("s", 2, 2, /*max_retries=*/1))));
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(2);
  expect<p::Welcome>(*f.daemon, a);
  a.send(p::Ready{2});
  auto one = expect<p::Assign>(*f.daemon, a);
  auto two = expect<p::Assign>(*f.daemon, a);
  // A failed attempt runs again under a new lease.
  a.send(p::Finish{one.study,
                   one.trial,
                   one.attempt,
                   one.lease,
                   p::Outcome::kFailed,
                   {},
                   "boom",
                   "",
                   false,
                   false});
  auto retry = expect<p::Assign>(*f.daemon, a);
  REQUIRE(retry.trial == one.trial);
  REQUIRE(retry.attempt == one.attempt + 1);
  std::set<std::string> ids;
  for (const auto* as : {&one, &two, &retry}) {
    INFO("lease " << as->lease);
    CHECK(is_hex128(as->lease));
    CHECK(as->lease.find(std::to_string(as->trial) + "." + std::to_string(as->attempt)) ==
          std::string::npos);
    ids.insert(as->lease);
  }
  CHECK(ids.size() == 3);
  // The store keeps the id the agent was sent.
  CHECK(f.trial("s", retry.trial).lease == retry.lease);
  CHECK(f.trial("s", two.trial).lease == two.lease);
}

TEST_CASE(
    "after a restart a lease bound to a key is stopped, not re-adopted, when another key "
    "announces it",
    "[daemon][leases]") {
  Fixture f;
  DaemonOptions o;
  o.recovery_window_s = 10;
  o.liveness = 30;  // the agent stays alive across the window
  f.start(o);
  REQUIRE(f.daemon->add_study(spec_of(study_json("s", 1, 1))));
  p::Assign held;
  {
    FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
    a.hello(1);
    expect<p::Welcome>(*f.daemon, a);
    a.send(p::Ready{1});
    held = expect<p::Assign>(*f.daemon, a);
  }
  f.crash();
  // The trial was leased to an agent that joined with the CURVE key "key-A" (what a scheduler
  // with keys records; these test sockets are plaintext, key "").
  {
    auto store = hpo::results::Store::open(f.db_path, hpo::results::OpenMode::kWriter);
    REQUIRE(store);
    auto t = f.trial("s", held.trial);
    REQUIRE(store->start_trial(t.id, held.attempt, held.lease, "a", "key-A", f.clock.now()));
  }
  CHECK(f.trial("s", held.trial).agent_key == "key-A");

  f.start(o);
  REQUIRE(f.daemon->stats().recovering == 1);
  // Everything about the lease is right but the key.
  FakeAgent b(f.ctx, f.daemon->endpoint(), "a");
  b.hello(1, {{held.study, held.trial, held.attempt, held.lease, false}});
  auto w = expect<p::Welcome>(*f.daemon, b);
  CHECK(w.adopted.empty());
  CHECK(w.stop == std::vector<std::string>{held.lease});
  CHECK(f.daemon->stats().readopted == 0);
  CHECK(f.daemon->stats().recovering == 1);  // still waiting for its own agent
  // Its REPORT and FINISH do not count.
  b.send(finish_of(held, 0.5));
  settle(*f.daemon, b, 10);
  auto t = f.trial("s", held.trial);
  CHECK(t.state == TrialState::kInterrupted);
  CHECK(t.value == std::nullopt);
  // The window closes: the trial runs again under a new lease, bound to the new holder.
  f.clock.advance(10.5);
  b.send(p::Ready{1});
  auto again = expect<p::Assign>(*f.daemon, b);
  CHECK(again.trial == held.trial);
  CHECK(again.attempt == held.attempt + 1);
  CHECK(again.lease != held.lease);
  CHECK(f.trial("s", held.trial).agent_key.empty());
}
