// The harness of the daemon tests: the daemon's loop driven turn by turn
// with a fake clock. The "agents" here are bare DEALER sockets that speak the
// protocol by hand, so every message is the test's choice.
#pragma once

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "base/clock.h"
#include "results/store.h"
#include "scheduler/daemon.h"
#include "scheduler/protocol.h"
#include "search/study.h"
#include "tests/support/temp_dir.h"

namespace p = hpo::scheduler::protocol;
using hpo::FakeClock;
using hpo::scheduler::Daemon;
using hpo::scheduler::DaemonOptions;
using hpo::search::TrialState;
using nlohmann::json;

namespace hpo_test {

inline json study_json(const std::string& name, int max_trials, int max_parallel,
                       int max_retries = 0) {
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

inline hpo::search::StudySpec spec_of(const json& j) {
  auto s = hpo::search::parse_study(j, "test");
  REQUIRE(s);
  return *s;
}

struct Fixture {
  hpo::test::TempDir dir{"daemon-test"};
  std::string db_path = dir / "t.db";
  zmq::context_t ctx{1};
  FakeClock clock;
  std::unique_ptr<Daemon> daemon;

  void start(DaemonOptions o = {}) {
    o.bind = "tcp://127.0.0.1:*";
    auto store = hpo::results::Store::open(db_path, hpo::results::OpenMode::kWriter);
    REQUIRE(store);
    auto d = Daemon::create(ctx, std::move(*store), o, clock);
    REQUIRE(d);
    daemon = std::move(*d);
  }
  // Simulates a crash: the daemon goes away without its shutdown.
  void crash() { daemon.reset(); }

  hpo::results::Store reader() {
    auto s = hpo::results::Store::open(db_path, hpo::results::OpenMode::kReadOnly);
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
inline std::vector<p::Message> settle(Daemon& d, FakeAgent& agent, int turns = 20) {
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

inline p::Finish finish_of(const p::Assign& a, double value) {
  return p::Finish{a.study, a.trial, a.attempt, a.lease, p::Outcome::kOk, {{"value", value}},
                   "",      "",      false,     false};
}

}  // namespace hpo_test
