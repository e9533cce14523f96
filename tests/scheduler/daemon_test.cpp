// The daemon's loop driven turn by turn with a fake clock: leases, liveness,
// fencing, recovery, budgets. The "agents" here are bare DEALER sockets that
// speak the protocol by hand, so every message is the test's choice.
#include "scheduler/daemon.h"

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <string>

#include "results/store.h"
#include "base/clock.h"
#include "scheduler/protocol.h"
#include "search/study.h"

namespace p = hpo::scheduler::protocol;
namespace fs = std::filesystem;
using hpo::scheduler::Daemon;
using hpo::scheduler::DaemonOptions;
using hpo::FakeClock;
using hpo::search::TrialState;
using nlohmann::json;

namespace {

struct TempDb {
  fs::path dir;
  TempDb() {
    static int n = 0;
    dir = fs::temp_directory_path() /
          ("hpo-daemon-test-" + std::to_string(getpid()) + "-" + std::to_string(n++));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~TempDb() { fs::remove_all(dir); }
  std::string path() const { return (dir / "t.db").string(); }
};

json study_json(const std::string& name, int max_trials, int max_parallel, int max_retries = 0) {
  return json{
      {"name", name},
      {"objective", {{"metric", "value"}, {"direction", "minimize"}}},
      {"sampler", {{"type", "random"}}},
      {"seed", 3},
      {"budget",
       {{"max_trials", max_trials}, {"max_parallel", max_parallel}, {"max_retries", max_retries}}},
      {"trial", {{"kind", "builtin"}, {"function", "branin"}}},
      {"space",
       {{"x1", {{"type", "float"}, {"low", -5}, {"high", 10}}},
        {"x2", {{"type", "float"}, {"low", 0}, {"high", 15}}}}}};
}

hpo::search::StudySpec spec_of(const json& j) {
  auto s = hpo::search::parse_study(j, "test");
  REQUIRE(s);
  return *s;
}

struct Fixture {
  TempDb db;
  zmq::context_t ctx{1};
  FakeClock clock;
  std::unique_ptr<Daemon> daemon;

  void start(DaemonOptions o = {}) {
    o.bind = "tcp://127.0.0.1:*";
    auto store = hpo::results::Store::open(db.path(), hpo::results::OpenMode::kWriter);
    REQUIRE(store);
    auto d = Daemon::create(ctx, std::move(*store), o, clock);
    REQUIRE(d);
    daemon = std::move(*d);
  }
  // Simulates a crash: the daemon goes away without its shutdown.
  void crash() { daemon.reset(); }

  hpo::results::Store reader() {
    auto s = hpo::results::Store::open(db.path(), hpo::results::OpenMode::kReadOnly);
    REQUIRE(s);
    return std::move(*s);
  }
  hpo::results::TrialRow trial(const std::string& study, std::int64_t number) {
    auto r = reader();
    auto row = r.find_study(study);
    REQUIRE(row);
    REQUIRE(*row);
    auto t = r.find_trial((*row)->id, number);
    REQUIRE(t);
    REQUIRE(*t);
    return **t;
  }
};

struct FakeAgent {
  zmq::socket_t socket;
  std::string name;
  FakeAgent(zmq::context_t& ctx, const std::string& endpoint, std::string n)
      : socket(ctx, zmq::socket_type::dealer), name(std::move(n)) {
    socket.set(zmq::sockopt::linger, 0);
    socket.connect(endpoint);
  }
  void send(const p::Message& m) { REQUIRE(p::send(socket, m)); }
  void hello(int slots, std::vector<p::RunningTrial> running = {}) {
    send(p::Hello{name, "test-host", slots, json::array(), 1, std::move(running)});
  }
};

// Turns the daemon until `agent` receives a message of type T (heartbeats
// skipped unless asked for), within two seconds of real time.
template <class T>
T expect(Daemon& d, FakeAgent& agent) {
  for (int i = 0; i < 400; ++i) {
    REQUIRE(d.turn(std::chrono::milliseconds(5)));
    zmq::pollitem_t item{agent.socket.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(i < 5 ? 0 : 5));
    while (auto r = p::receive(agent.socket, false)) {
      REQUIRE(r->message);
      if (auto* t = std::get_if<T>(&*r->message)) return *t;
      INFO("got " << p::type_name(*r->message));
      if (!std::holds_alternative<p::Heartbeat>(*r->message) &&
          !std::holds_alternative<p::Ack>(*r->message) &&
          !std::holds_alternative<p::Decision>(*r->message)) {
        FAIL("unexpected message");
      }
    }
  }
  FAIL("no " << typeid(T).name() << " within 2 s");
  return T{};
}

// Turns the daemon a little and returns everything `agent` got (no heartbeats).
std::vector<p::Message> settle(Daemon& d, FakeAgent& agent, int turns = 20) {
  std::vector<p::Message> out;
  for (int i = 0; i < turns; ++i) {
    REQUIRE(d.turn(std::chrono::milliseconds(2)));
    zmq::pollitem_t item{agent.socket.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(2));
    while (auto r = p::receive(agent.socket, false)) {
      REQUIRE(r->message);
      if (!std::holds_alternative<p::Heartbeat>(*r->message)) out.push_back(*r->message);
    }
  }
  return out;
}

p::Finish finish_of(const p::Assign& a, double value) {
  return p::Finish{a.study, a.trial, a.attempt, a.lease, p::Outcome::kOk, {{"value", value}},
                   "",      ""};
}

}  // namespace

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
  o.recovery_grace_s = 10;
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

TEST_CASE("max_parallel holds even when agents have more free slots", "[daemon]") {
  Fixture f;
  f.start();
  REQUIRE(f.daemon->add_study(spec_of(study_json("s", 10, 2))));
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(8);
  expect<p::Welcome>(*f.daemon, a);
  a.send(p::Ready{8});
  auto got = settle(*f.daemon, a, 20);
  REQUIRE(got.size() == 2);
  auto first = std::get<p::Assign>(got[0]);
  a.send(finish_of(first, 3.0));
  got = settle(*f.daemon, a, 20);
  int assigns = 0;
  for (const auto& m : got) assigns += std::holds_alternative<p::Assign>(m);
  CHECK(assigns == 1);
  CHECK(f.daemon->stats().leases == 2);
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
                     "line\n"});
    expect<p::Ack>(*f.daemon, a);
  }
  CHECK(settle(*f.daemon, a, 10).empty());  // no fourth attempt, no new trial
  auto t = f.trial("s", 0);
  CHECK(t.state == TrialState::kFailed);
  CHECK(t.error == "boom 3");
  CHECK(t.log_tail == "line\n");
  CHECK(f.daemon->all_done());
}

TEST_CASE("malformed frames are dropped and the loop carries on", "[daemon]") {
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
  a.hello(1);
  expect<p::Welcome>(*f.daemon, a);
  CHECK(f.daemon->stats().bad_messages == 4);
}

TEST_CASE("two studies share one agent's slots round-robin", "[daemon]") {
  Fixture f;
  f.start();
  REQUIRE(f.daemon->add_study(spec_of(study_json("s1", 10, 10))));
  REQUIRE(f.daemon->add_study(spec_of(study_json("s2", 10, 10))));
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(4);
  expect<p::Welcome>(*f.daemon, a);
  a.send(p::Ready{4});
  std::map<std::string, int> per_study;
  for (const auto& m : settle(*f.daemon, a, 20)) {
    if (auto* as = std::get_if<p::Assign>(&m)) ++per_study[as->study];
  }
  CHECK(per_study["s1"] == 2);
  CHECK(per_study["s2"] == 2);
}

TEST_CASE("SUBMIT adds a study to a running scheduler and a bad one is refused", "[daemon]") {
  Fixture f;
  f.start();
  FakeAgent client(f.ctx, f.daemon->endpoint(), "client");
  client.send(p::Submit{study_json("late", 1, 1)});
  auto ok = expect<p::Ok>(*f.daemon, client);
  CHECK(ok.body["study"] == "late");
  json bad = study_json("bad", 1, 1);
  bad["budget"]["max_parallel"] = 0;
  client.send(p::Submit{bad});
  auto refused = expect<p::ErrorReply>(*f.daemon, client);
  CHECK_THAT(refused.message, Catch::Contains("max_parallel"));
  CHECK_FALSE(refused.hello_required);
  CHECK_FALSE(f.daemon->all_done());
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
  a.send(p::Finish{bad.study, bad.trial, bad.attempt, bad.lease, p::Outcome::kPruned, {}, "", ""});
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
  a.send(p::Finish{
      first.study, first.trial, first.attempt, first.lease, p::Outcome::kPruned, {}, "", ""});
  expect<p::Ack>(*f.daemon, a);
  CHECK(settle(*f.daemon, a, 10).empty());
  CHECK(f.daemon->all_done());
  CHECK(f.trial("s", 0).state == TrialState::kPruned);
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
