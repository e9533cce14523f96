// The agent's client loop (trainer/agent.h) against a scheduler played by
// the test: a bare ROUTER socket that answers by hand, goes quiet, and comes
// back as a "restarted" scheduler on the same endpoint.
#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "scheduler/protocol.h"
#include "tests/support/ports.h"
#include "tests/support/temp_dir.h"
#include "trainer/agent/agent.h"
#include "trainer/agent/builtin_objectives.h"
#include "trainer/agent/process_runner.h"

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
          (void)p::send(router, p::ErrorReply{"unknown agent; say HELLO", true, false}, r->routing_id);
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
  s.send(p::ErrorReply{"unknown agent; say HELLO", true, false});
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

namespace {

// A runner whose poll() throws once, as a bug in parsing one trial's output would.
class ThrowOncePoll final : public hpo::agent::TrialRunner {
 public:
  hpo::Status start(const p::Assign& a, const hpo::agent::TrialFiles& f) override {
    return inner_.start(a, f);
  }
  void stop(const std::string& lease, hpo::agent::StopReason r) override { inner_.stop(lease, r); }
  std::vector<hpo::agent::TrialEvent> poll() override {
    if (!thrown_) {
      thrown_ = true;
      throw std::runtime_error("unexpected output");
    }
    return inner_.poll();
  }
  std::size_t running() const override { return inner_.running(); }

 private:
  hpo::agent::BuiltinRunner inner_;
  bool thrown_ = false;
};

struct AgentUnderTest {
  std::atomic<bool> stop{false};
  hpo::agent::Agent agent;
  std::thread thread;
  AgentUnderTest(zmq::context_t& ctx, const std::string& endpoint,
                 std::unique_ptr<hpo::agent::TrialRunner> runner)
      : agent(ctx, options(endpoint), std::move(runner)),
        thread([this] { (void)agent.run(stop); }) {}
  ~AgentUnderTest() {
    stop = true;
    thread.join();
  }
  static hpo::agent::AgentOptions options(const std::string& endpoint) {
    hpo::agent::AgentOptions o;
    o.endpoint = endpoint;
    o.name = "agent-under-test";
    o.heartbeat_ms = 50;
    o.shutdown_grace_s = 0;
    return o;
  }
};

std::unique_ptr<hpo::agent::TrialRunner> kind_runner(const std::string& workdir) {
  hpo::agent::ProcessRunnerOptions po;
  po.workdir = workdir;
  po.kill_grace_s = 0.1;
  return std::make_unique<hpo::agent::KindRunner>(std::make_unique<hpo::agent::BuiltinRunner>(),
                                                  std::make_unique<hpo::agent::ProcessRunner>(po));
}

const json kBranin = {{"kind", "builtin"}, {"function", "branin"}};

}  // namespace

TEST_CASE("a malformed ASSIGN ends its trial FAILED, naming it, and the agent takes the next",
          "[agent]") {
  zmq::context_t ctx(1);
  const std::string endpoint = hpo::test::local_endpoint();
  FakeScheduler s(ctx, endpoint);
  hpo::test::TempDir dir("agent-bad-assign");
  AgentUnderTest a(ctx, endpoint, kind_runner(dir / "work"));
  s.expect<p::Hello>();
  s.send(p::Welcome{"x", 50, 3, {}, {}});
  s.expect<p::Ready>();
  // Valid wire JSON, nonsense specs: a kind that is a number, a function that is a list.
  s.send(p::Assign{"s", 0, 1, "1.0.1", json{{"x1", 1.0}}, json{{"kind", 5}}});
  auto first = s.expect<p::Finish>();
  CHECK(first.outcome == p::Outcome::kFailed);
  CHECK(first.error.find("s#0 attempt 1") != std::string::npos);
  CHECK_FALSE(first.start_failed);
  s.send(p::Ack{0, 1, "1.0.1"});
  s.send(p::Assign{"s", 1, 1, "1.1.1", json{{"x1", 1.0}},
                   json{{"kind", "builtin"}, {"function", json::array({1})}}});
  auto second = s.expect<p::Finish>();
  CHECK(second.outcome == p::Outcome::kFailed);
  CHECK(second.error.find("s#1") != std::string::npos);
  s.send(p::Ack{1, 1, "1.1.1"});
  // Still alive: a good trial runs.
  s.send(p::Assign{"s", 2, 1, "1.2.1", json{{"x1", 1.0}, {"x2", 2.0}}, kBranin});
  auto good = s.expect<p::Finish>();
  CHECK(good.outcome == p::Outcome::kOk);
  s.send(p::Ack{2, 1, "1.2.1"});
}

TEST_CASE("an exception out of a trial runner's poll is logged and the agent goes on", "[agent]") {
  zmq::context_t ctx(1);
  const std::string endpoint = hpo::test::local_endpoint();
  FakeScheduler s(ctx, endpoint);
  AgentUnderTest a(ctx, endpoint, std::make_unique<ThrowOncePoll>());
  s.expect<p::Hello>();
  s.send(p::Welcome{"x", 50, 3, {}, {}});
  s.expect<p::Ready>();
  s.send(p::Assign{"s", 0, 1, "1.0.1", json{{"x1", 1.0}, {"x2", 2.0}}, kBranin});
  auto f = s.expect<p::Finish>();
  CHECK(f.outcome == p::Outcome::kOk);
  s.send(p::Ack{0, 1, "1.0.1"});
}

TEST_CASE("a trial that cannot start on this agent comes back start_failed, not failed",
          "[agent]") {
  zmq::context_t ctx(1);
  const std::string endpoint = hpo::test::local_endpoint();
  FakeScheduler s(ctx, endpoint);
  hpo::test::TempDir dir("agent-start-failed");
  hpo::test::write_text(dir / "file", "");  // the workdir is a file: no trial directory
  AgentUnderTest a(ctx, endpoint, kind_runner(dir / "file"));
  s.expect<p::Hello>();
  s.send(p::Welcome{"x", 50, 3, {}, {}});
  s.expect<p::Ready>();
  s.send(p::Assign{"s", 0, 1, "1.0.1", json::object(),
                   json{{"kind", "command"}, {"command", "true"}}});
  auto f = s.expect<p::Finish>();
  CHECK(f.outcome == p::Outcome::kInterrupted);
  CHECK(f.start_failed);
  CHECK(f.error.find("trial directory") != std::string::npos);
  s.send(p::Ack{0, 1, "1.0.1"});
  // A bad placeholder is the trial's own fault: failed as before.
  s.send(p::Assign{"s", 1, 1, "1.1.1", json::object(),
                   json{{"kind", "command"}, {"command", "echo {missing}"}}});
  auto g = s.expect<p::Finish>();
  CHECK(g.outcome == p::Outcome::kFailed);
  CHECK_FALSE(g.start_failed);
  s.send(p::Ack{1, 1, "1.1.1"});
}

TEST_CASE("an agent's reconnect back-off stays within the liveness window the scheduler announced",
          "[agent]") {
  // A restarted scheduler waits 2 x its liveness window for agents to re-announce their
  // trials. An agent whose back-off had grown past that (here it may double up to 60 s)
  // would come back after the window closed and see its running trials requeued.
  zmq::context_t ctx(1);
  const std::string endpoint = hpo::test::local_endpoint();
  auto first = std::make_unique<FakeScheduler>(ctx, endpoint);
  hpo::agent::AgentOptions o;
  o.endpoint = endpoint;
  o.name = "patient-agent";
  o.heartbeat_ms = 50;
  o.liveness = 3;
  o.reconnect_min_ms = 1000;
  o.reconnect_max_ms = 60000;
  std::atomic<bool> stop{false};
  hpo::agent::Agent agent(ctx, o, std::make_unique<hpo::agent::BuiltinRunner>());
  std::thread thread([&] { (void)agent.run(stop); });
  struct Joiner {  // stops and joins the agent however the test ends
    std::atomic<bool>& stop;
    std::thread& thread;
    ~Joiner() {
      stop = true;
      thread.join();
    }
  } joiner{stop, thread};
  first->expect<p::Hello>();
  first->send(p::Welcome{"first", 50, 3, {}, {}});
  first->expect<p::Ready>();
  // Away for 3.6 s: an uncapped back-off (1, 2, 4 s, each after 150 ms of silence) would try
  // at about 1.15 s, 3.3 s and 7.45 s, nearly 4 s after the scheduler is back; capped at the
  // 150 ms window, the agent tries every 300 ms or so.
  first.reset();
  std::this_thread::sleep_for(3600ms);
  FakeScheduler second(ctx, endpoint);
  second.expect<p::Hello>(1500ms);
}

TEST_CASE("a draining agent finishes its running trial, takes no new one, and leaves once the "
          "FINISH is acknowledged",
          "[agent]") {
  zmq::context_t ctx(1);
  const std::string endpoint = hpo::test::local_endpoint();
  FakeScheduler s(ctx, endpoint);
  hpo::agent::AgentOptions o = AgentUnderTest::options(endpoint);  // no shutdown grace at all
  o.slots = 2;
  std::atomic<bool> stop{false}, drain{false};
  hpo::Status result = hpo::fail("still running");
  hpo::agent::Agent agent(ctx, o, std::make_unique<hpo::agent::BuiltinRunner>());
  std::thread thread([&] { result = agent.run(stop, &drain); });
  struct Joiner {
    std::atomic<bool>& stop;
    std::thread& thread;
    ~Joiner() {
      stop = true;
      if (thread.joinable()) thread.join();
    }
  } joiner{stop, thread};
  s.expect<p::Hello>();
  s.send(p::Welcome{"x", 50, 3, {}, {}});
  CHECK(s.expect<p::Ready>().free_slots == 2);
  // Two seconds in four steps: the drain begins once the trial has reported its first step
  // (half a second in), so the agent surely holds it, and the exchange below has 1.5 s to
  // happen while it runs. (Set at once after the ASSIGN, the drain could be seen before the
  // ASSIGN was read: with nothing running the agent rightly said BYE at once.)
  const json sleep = {{"kind", "builtin"}, {"function", "sleep"}, {"seconds", 2.0}, {"steps", 4}};
  s.send(p::Assign{"s", 0, 1, "1.0.1", json{{"x", 0.5}}, sleep});
  CHECK(s.expect<p::Report>().lease == "1.0.1");
  drain = true;
  auto ready = s.expect<p::Ready>();
  CHECK(ready.draining);
  CHECK(ready.free_slots == 0);
  // An ASSIGN that crossed the READY is handed back, not run.
  s.send(p::Assign{"s", 1, 1, "1.1.1", json{{"x", 0.7}}, sleep});
  auto refused = s.expect<p::Finish>();
  CHECK(refused.lease == "1.1.1");
  CHECK(refused.refused);
  CHECK(refused.error == "agent is draining");
  s.send(p::Ack{1, 1, "1.1.1"});
  // The running trial ends on its own, completed, however short the shutdown grace.
  auto done = s.expect<p::Finish>();
  REQUIRE(done.lease == "1.0.1");
  CHECK(done.outcome == p::Outcome::kOk);
  CHECK(done.metrics.at("value") == 0.5);
  // Unacknowledged, it is sent again rather than given up.
  CHECK(s.expect<p::Finish>().lease == "1.0.1");
  s.send(p::Ack{0, 1, "1.0.1"});
  s.expect<p::Bye>();
  thread.join();
  CHECK(result.has_value());
}

TEST_CASE("a stop during a drain takes over: the running trial is interrupted", "[agent]") {
  zmq::context_t ctx(1);
  const std::string endpoint = hpo::test::local_endpoint();
  FakeScheduler s(ctx, endpoint);
  std::atomic<bool> stop{false}, drain{false};
  hpo::agent::Agent agent(ctx, AgentUnderTest::options(endpoint),
                          std::make_unique<hpo::agent::BuiltinRunner>());
  std::thread thread([&] { (void)agent.run(stop, &drain); });
  s.expect<p::Hello>();
  s.send(p::Welcome{"x", 50, 3, {}, {}});
  s.expect<p::Ready>();
  // The drain begins once the trial has reported its first step (half a second in), so the
  // agent surely holds it: set at once after the ASSIGN, the drain could be seen before the
  // ASSIGN was read, and with nothing running the agent rightly left at once (a failure seen
  // on a loaded machine).
  s.send(p::Assign{"s", 0, 1, "1.0.1", json{{"x", 0.5}},
                   json{{"kind", "builtin"}, {"function", "sleep"}, {"seconds", 30}, {"steps", 60}}});
  CHECK(s.expect<p::Report>().lease == "1.0.1");
  drain = true;
  CHECK(s.expect<p::Ready>().draining);
  stop = true;
  auto f = s.expect<p::Finish>();
  CHECK(f.outcome == p::Outcome::kInterrupted);
  s.send(p::Ack{0, 1, "1.0.1"});
  s.expect<p::Bye>();
  thread.join();
}
