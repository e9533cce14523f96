// The daemon against hostile or broken peers: every message is one unit that is refused
// (ERROR, nothing written) or handled, and nothing one peer sends stops the loop.
#include <sqlite3.h>

#include <map>

#include "tests/scheduler/daemon_harness.h"

using namespace hpo_test;

namespace {

void send_frames(zmq::socket_t& socket, const std::vector<std::string>& frames) {
  for (std::size_t i = 0; i < frames.size(); ++i) {
    auto more = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
    REQUIRE(socket.send(zmq::buffer(frames[i]), more));
  }
}

std::vector<p::ErrorReply> errors_in(const std::vector<p::Message>& got) {
  std::vector<p::ErrorReply> out;
  for (const auto& m : got) {
    if (auto* e = std::get_if<p::ErrorReply>(&m)) out.push_back(*e);
  }
  return out;
}

// Runs `sql` on the database file with a connection of its own (between the daemon's turns,
// when no transaction is open).
void run_sql(const std::string& db, const std::string& sql) {
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &err);
  INFO((err ? err : ""));
  sqlite3_free(err);
  sqlite3_close(raw);
  REQUIRE(rc == SQLITE_OK);
}

}  // namespace

TEST_CASE("a message over the size limit is answered ERROR naming the limit and its type",
          "[daemon][hostile]") {
  Fixture f;
  f.start();
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  send_frames(a.socket, {"hpo/1", "FINISH", std::string(2 * p::kMaxBodyBytes, ' ')});
  std::vector<std::string> many{"hpo/1", "REPORT"};
  for (int i = 0; i < 40; ++i) many.push_back(std::string(1000, 'x'));
  send_frames(a.socket, many);
  // 2 MB through TCP: on a loaded machine (the sanitizer tree under CI) it takes longer than
  // a fixed number of turns, so wait for both answers, up to 10 s.
  std::vector<p::ErrorReply> errors;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (errors.size() < 2 && std::chrono::steady_clock::now() < until) {
    for (auto& e : errors_in(settle(*f.daemon, a, 5))) errors.push_back(std::move(e));
  }
  for (auto& e : errors_in(settle(*f.daemon, a, 5))) errors.push_back(std::move(e));  // no more
  REQUIRE(errors.size() == 2);
  CHECK_THAT(errors[0].message, Catch::Contains("FINISH") && Catch::Contains("limit") &&
                                    Catch::Contains(std::to_string(p::kMaxMessageBytes)));
  CHECK_THAT(errors[1].message, Catch::Contains("REPORT") && Catch::Contains("42 frames") &&
                                    Catch::Contains("limit of 3 frames"));
  // The connection still works, frame boundaries intact.
  a.hello(1);
  expect<p::Welcome>(*f.daemon, a);
}

TEST_CASE("a READY that says draining gets no new work however many slots it says are free",
          "[daemon][hostile]") {
  Fixture f;
  f.start();
  REQUIRE(f.daemon->add_study(spec_of(study_json("s", 10, 10))));
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(4);
  expect<p::Welcome>(*f.daemon, a);
  a.send(p::Ready{4, /*draining=*/true});
  for (const auto& m : settle(*f.daemon, a, 10)) CHECK_FALSE(std::holds_alternative<p::Assign>(m));
  CHECK(f.daemon->stats().leases == 0);
}

TEST_CASE("a refused SUBMIT persists nothing", "[daemon][hostile]") {
  Fixture f;
  f.start();
  FakeAgent client(f.ctx, f.daemon->endpoint(), "client");
  client.send(p::Submit{study_json("s", 5, 1)});
  expect<p::Ok>(*f.daemon, client);
  // The same study with another direction: the stored trials were ranked the other way.
  json flipped = study_json("s", 50, 1);
  flipped["objective"]["direction"] = "maximize";
  client.send(p::Submit{flipped});
  auto refused = expect<p::ErrorReply>(*f.daemon, client);
  CHECK_THAT(refused.message, Catch::Contains("direction"));
  auto r = f.reader();
  auto row = r.find_study("s");
  REQUIRE(row);
  REQUIRE(*row);
  CHECK((*row)->spec["budget"]["max_trials"] == 5);
  CHECK((*row)->spec["objective"]["direction"] == "minimize");
  auto events = r.events((*row)->id);
  REQUIRE(events);
  for (const auto& e : *events) CHECK(e.kind != "study_updated");
}

TEST_CASE("a FINISH whose recording fails ends its trial FAILED, is ACKed, and the loop goes on",
          "[daemon][hostile]") {
  Fixture f;
  f.start();
  REQUIRE(f.daemon->add_study(spec_of(study_json("s", 2, 1))));
  // A store that refuses to record trial 0 as COMPLETED (a stand-in for any error while one
  // message is handled).
  run_sql(f.db_path,
          "CREATE TRIGGER refuse_completed BEFORE UPDATE OF state ON trials "
          "WHEN NEW.state = 'COMPLETED' AND NEW.number = 0 "
          "BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(1);
  expect<p::Welcome>(*f.daemon, a);
  a.send(p::Ready{1});
  auto first = expect<p::Assign>(*f.daemon, a);
  a.send(p::Report{first.study, first.trial, first.attempt, first.lease, 1, {{"value", 9.0}}});
  a.send(finish_of(first, 3.0));
  // The refusal is answered, the trial ends anyway (ACK), and the next trial is leased.
  std::vector<p::Message> got;
  for (int i = 0; i < 10; ++i) {
    for (auto& m : settle(*f.daemon, a, 5)) got.push_back(m);
    if (std::any_of(got.begin(), got.end(),
                    [](const auto& m) { return std::holds_alternative<p::Assign>(m); }))
      break;
  }
  auto errors = errors_in(got);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0].message, Catch::Contains("FINISH") && Catch::Contains("injected failure"));
  CHECK(std::any_of(got.begin(), got.end(),
                    [](const auto& m) { return std::holds_alternative<p::Ack>(m); }));
  auto t0 = f.trial("s", 0);
  CHECK(t0.state == TrialState::kFailed);
  CHECK_THAT(t0.error, Catch::Contains("could not record") && Catch::Contains("injected"));
  auto second = std::find_if(got.begin(), got.end(),
                             [](const auto& m) { return std::holds_alternative<p::Assign>(m); });
  REQUIRE(second != got.end());
  auto next = std::get<p::Assign>(*second);
  CHECK(next.trial == 1);
  a.send(finish_of(next, 2.0));
  expect<p::Ack>(*f.daemon, a);
  settle(*f.daemon, a, 3);
  CHECK(f.trial("s", 1).state == TrialState::kCompleted);
  CHECK(f.trial("s", 1).value == 2.0);
  CHECK(f.daemon->stats().refused == 1);
}

TEST_CASE("a HELLO under a name a live agent holds is refused, and that agent keeps its trial",
          "[daemon][hostile]") {
  Fixture f;
  f.start();
  REQUIRE(f.daemon->add_study(spec_of(study_json("s", 3, 1))));
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(2);
  expect<p::Welcome>(*f.daemon, a);
  a.send(p::Ready{2});
  auto lease = expect<p::Assign>(*f.daemon, a);
  // Another process (another pid) says HELLO as "a" from a new connection.
  FakeAgent impostor(f.ctx, f.daemon->endpoint(), "a");
  impostor.send(p::Hello{"a", "test-host", 4, json::array(), 999, {}});
  auto refused = expect<p::ErrorReply>(*f.daemon, impostor);
  CHECK_THAT(refused.message, Catch::Contains("'a' is taken"));
  CHECK_FALSE(refused.hello_required);
  CHECK(f.daemon->stats().agents == 1);
  CHECK(f.daemon->stats().leases == 1);
  // The holder is not dropped: its FINISH counts.
  a.send(finish_of(lease, 1.5));
  // The slot it freed is filled again.
  auto held = expect<p::Assign>(*f.daemon, a);
  auto t = f.trial("s", lease.trial);
  CHECK(t.state == TrialState::kCompleted);
  CHECK(t.attempt == lease.attempt);
  // The same process on a new connection (same host and pid) takes its leases over.
  FakeAgent again(f.ctx, f.daemon->endpoint(), "a");
  again.hello(2, {{held.study, held.trial, held.attempt, held.lease, false}});
  CHECK(expect<p::Welcome>(*f.daemon, again).adopted == std::vector<std::string>{held.lease});
  CHECK(f.daemon->stats().agents == 1);
  CHECK(f.daemon->stats().leases == 1);
}

TEST_CASE("one connection cannot change its agent name", "[daemon][hostile]") {
  Fixture f;
  f.start();
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(1);
  expect<p::Welcome>(*f.daemon, a);
  a.send(p::Hello{"b", "test-host", 1, json::array(), 1, {}});
  CHECK_THAT(expect<p::ErrorReply>(*f.daemon, a).message, Catch::Contains("joined as agent 'a'"));
  CHECK(f.daemon->stats().agents == 1);
}

TEST_CASE("a HELLO flood is bounded: connected agents, agents rows and agent events",
          "[daemon][hostile]") {
  Fixture f;
  DaemonOptions o;
  o.max_agents = 8;
  o.agent_records = 10;
  f.start(o);
  int welcomed = 0, refused = 0;
  for (int round = 0; round < 5; ++round) {
    std::vector<std::unique_ptr<FakeAgent>> flood;
    for (int i = 0; i < 12; ++i) {
      flood.push_back(std::make_unique<FakeAgent>(
          f.ctx, f.daemon->endpoint(), "flood-" + std::to_string(round) + "-" + std::to_string(i)));
      flood.back()->hello(1);
    }
    // Every peer gets one answer: WELCOME or ERROR.
    int answers = 0;
    for (int turn = 0; turn < 400 && answers < 12; ++turn) {
      REQUIRE(f.daemon->turn(std::chrono::milliseconds(2)));
      for (auto& peer : flood) {
        while (auto r = p::receive(peer->socket, false)) {
          REQUIRE(r->message);
          welcomed += std::holds_alternative<p::Welcome>(*r->message);
          answers += std::holds_alternative<p::Welcome>(*r->message);
          if (auto* e = std::get_if<p::ErrorReply>(&*r->message)) {
            ++refused;
            ++answers;
            CHECK_THAT(e->message, Catch::Contains("too many agents") && Catch::Contains("8"));
          }
        }
      }
    }
    REQUIRE(answers == 12);
    CHECK(f.daemon->stats().agents <= 8);
    f.clock.advance(10);  // all silent: lost
    settle(*f.daemon, *flood.front(), 2);
  }
  CHECK(welcomed == 40);
  CHECK(refused == 20);
  auto r = f.reader();
  auto agents = r.agents();
  REQUIRE(agents);
  CHECK(agents->size() <= 10 + 8 + 10);  // kept, connected, joined since the last prune
  auto events = r.events(std::nullopt);
  REQUIRE(events);
  std::size_t agent_events = 0;
  for (const auto& e : *events) agent_events += e.kind.rfind("agent_", 0) == 0;
  CHECK(agent_events <= 10 + 2 * 10);
}

TEST_CASE("a repeated HELLO on the same connection adds no event", "[daemon][hostile]") {
  Fixture f;
  f.start();
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  for (int i = 0; i < 5; ++i) {
    a.hello(1);
    expect<p::Welcome>(*f.daemon, a);
  }
  auto events = f.reader().events(std::nullopt);
  REQUIRE(events);
  CHECK(std::count_if(events->begin(), events->end(),
                      [](const auto& e) { return e.kind == "agent_joined"; }) == 1);
}
