// The agent's client loop (trainer/agent.h) against a scheduler played by
// the test: a bare ROUTER socket that answers by hand, goes quiet, and comes
// back as a "restarted" scheduler on the same endpoint.
#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <thread>

#include "scheduler/protocol.h"
#include "tests/support/ports.h"
#include "trainer/agent/agent.h"
#include "trainer/agent/builtin_objectives.h"

namespace p = hpo::scheduler::protocol;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

struct FakeScheduler {
  zmq::socket_t router;
  std::string agent;  // routing id of the agent
  std::chrono::steady_clock::time_point last_beat{};
  FakeScheduler(zmq::context_t& ctx, const std::string& endpoint)
      : router(ctx, zmq::socket_type::router) {
    router.set(zmq::sockopt::linger, 0);
    // ZeroMQ closes sockets in its I/O thread: the previous scheduler's port
    // may stay taken for a moment.
    for (int i = 0;; ++i) {
      try {
        router.bind(endpoint);
        return;
      } catch (const zmq::error_t& e) {
        if (e.num() != EADDRINUSE || i == 200) throw;
        std::this_thread::sleep_for(10ms);
      }
    }
  }
  template <class T>
  T expect(std::chrono::milliseconds timeout = 5s) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, 10ms);
      // A live scheduler beats; the agent's liveness window is 3 x 50 ms.
      if (!agent.empty() && std::chrono::steady_clock::now() - last_beat > 30ms) {
        (void)p::send(router, p::Heartbeat{}, agent);
        last_beat = std::chrono::steady_clock::now();
      }
      while (auto r = p::receive(router, true)) {
        REQUIRE(r->message);
        // Like the real scheduler: a stranger must say HELLO first.
        if (std::holds_alternative<p::Hello>(*r->message)) {
          agent = r->routing_id;
        } else if (r->routing_id != agent) {
          (void)p::send(router, p::ErrorReply{"unknown agent; say HELLO", true}, r->routing_id);
          continue;
        }
        if (auto* t = std::get_if<T>(&*r->message)) return *t;
      }
    }
    FAIL("the agent sent no " << typeid(T).name());
    return T{};
  }
  void send(const p::Message& m) { REQUIRE(p::send(router, m, agent)); }
};

}  // namespace

TEST_CASE("an agent whose scheduler goes quiet reconnects and re-announces its running trial",
          "[agent]") {
  zmq::context_t ctx(1);
  const std::string endpoint = hpo::test::local_endpoint();
  auto first = std::make_unique<FakeScheduler>(ctx, endpoint);

  hpo::agent::AgentOptions o;
  o.endpoint = endpoint;
  o.name = "agent-under-test";
  o.heartbeat_ms = 50;
  o.liveness = 3;
  o.reconnect_min_ms = 20;
  std::atomic<bool> stop{false};
  hpo::Status result;
  hpo::agent::Agent agent(ctx, o, std::make_unique<hpo::agent::BuiltinRunner>());
  std::thread thread([&] { result = agent.run(stop); });

  auto hello = first->expect<p::Hello>();
  CHECK(hello.agent == "agent-under-test");
  CHECK(hello.running.empty());
  first->send(p::Welcome{"first", 50, 3, {}, {}});
  CHECK(first->expect<p::Ready>().free_slots == 1);
  first->send(
      p::Assign{"s", 4, 1, "1.4.1", json{{"x", 0.25}},
                json{{"kind", "builtin"}, {"function", "sleep"}, {"seconds", 0.6}, {"steps", 2}}});
  // The first scheduler dies and stays away for longer than the agent's
  // liveness window (3 x 50 ms): the agent starts over with a new socket.
  first.reset();
  std::this_thread::sleep_for(400ms);
  FakeScheduler second(ctx, endpoint);
  auto again = second.expect<p::Hello>();
  REQUIRE(again.running.size() == 1);
  CHECK(again.running[0].lease == "1.4.1");
  CHECK(again.running[0].attempt == 1);
  second.send(p::Welcome{"second", 50, 3, {"1.4.1"}, {}});
  auto finish = second.expect<p::Finish>();
  CHECK(finish.lease == "1.4.1");
  CHECK(finish.outcome == p::Outcome::kOk);
  CHECK(finish.metrics.at("value") == 0.25);
  second.send(p::Ack{4, 1, "1.4.1"});
  stop = true;
  second.expect<p::Bye>();
  thread.join();
  CHECK(result.has_value());
  CHECK(agent.stats().reconnects >= 1);
}

TEST_CASE("an agent keeps an unacknowledged FINISH and delivers it after a restart", "[agent]") {
  zmq::context_t ctx(1);
  const std::string endpoint = hpo::test::local_endpoint();
  auto first = std::make_unique<FakeScheduler>(ctx, endpoint);
  hpo::agent::AgentOptions o;
  o.endpoint = endpoint;
  o.name = "agent-under-test";
  o.heartbeat_ms = 50;
  o.liveness = 3;
  o.reconnect_min_ms = 20;
  std::atomic<bool> stop{false};
  hpo::agent::Agent agent(ctx, o, std::make_unique<hpo::agent::BuiltinRunner>());
  std::thread thread([&] { (void)agent.run(stop); });

  first->expect<p::Hello>();
  first->send(p::Welcome{"first", 50, 3, {}, {}});
  first->expect<p::Ready>();
  first->send(p::Assign{"s", 0, 2, "1.0.2", json{{"x1", 1.0}, {"x2", 2.0}},
                        json{{"kind", "builtin"}, {"function", "branin"}}});
  auto lost = first->expect<p::Finish>();  // never ACKed: the scheduler "crashes"
  first.reset();
  FakeScheduler second(ctx, endpoint);
  auto hello = second.expect<p::Hello>();
  REQUIRE(hello.running.size() == 1);
  CHECK(hello.running[0].finished);
  second.send(p::Welcome{"second", 50, 3, {"1.0.2"}, {}});
  auto finish = second.expect<p::Finish>();
  CHECK(finish.lease == lost.lease);
  CHECK(finish.metrics == lost.metrics);
  second.send(p::Ack{0, 2, "1.0.2"});
  stop = true;
  second.expect<p::Bye>();
  thread.join();
}

TEST_CASE("an agent stops a trial the scheduler no longer counts and frees its slot", "[agent]") {
  zmq::context_t ctx(1);
  const std::string endpoint = hpo::test::local_endpoint();
  FakeScheduler s(ctx, endpoint);
  hpo::agent::AgentOptions o;
  o.endpoint = endpoint;
  o.name = "agent-under-test";
  o.heartbeat_ms = 50;
  std::atomic<bool> stop{false};
  hpo::agent::Agent agent(ctx, o, std::make_unique<hpo::agent::BuiltinRunner>());
  std::thread thread([&] { (void)agent.run(stop); });
  s.expect<p::Hello>();
  s.send(p::Welcome{"x", 50, 3, {}, {}});
  s.expect<p::Ready>();
  s.send(p::Assign{"s", 1, 1, "1.1.1", json{{"seconds", 30}},
                   json{{"kind", "builtin"}, {"function", "sleep"}, {"steps", 3}}});
  // The scheduler restarts and declines the lease: the agent stops the trial,
  // sends no FINISH for it, and says its slot is free again.
  s.send(p::ErrorReply{"unknown agent; say HELLO", true});
  auto hello = s.expect<p::Hello>();
  REQUIRE(hello.running.size() == 1);
  s.send(p::Welcome{"y", 50, 3, {}, {"1.1.1"}});
  auto deadline = std::chrono::steady_clock::now() + 3s;
  int free = 0;
  while (free != 1 && std::chrono::steady_clock::now() < deadline) {
    free = s.expect<p::Ready>().free_slots;
  }
  CHECK(free == 1);
  stop = true;
  s.expect<p::Bye>();
  thread.join();
}
