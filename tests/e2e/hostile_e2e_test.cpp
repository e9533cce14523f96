// The real `hpo scheduler` and a real `hpo agent` running a command-trial study while test
// peers send a corpus of hostile messages: the daemon lives, answers ERROR where the protocol
// promises it, and the real agent's study completes with the right values in a sound file.
#include <sqlite3.h>

#include <random>

#include "scheduler/protocol.h"
#include "tests/e2e/harness.h"

using namespace hpo::e2e;
using hpo::search::TrialState;
using nlohmann::json;
namespace p = hpo::scheduler::protocol;

namespace {

const char* kScript = R"PY(import json, sys, time
x = float(sys.argv[1])
print("HPO_METRIC " + json.dumps({"step": 1, "value": 3 * x + 1}), flush=True)
time.sleep(0.25)
print("HPO_METRIC " + json.dumps({"step": 2, "value": 3 * x}), flush=True)
)PY";

// One hostile peer: a DEALER of its own that sends `frames` and returns the first answer
// within `wait` (heartbeats skipped), or nullopt.
struct Peer {
  zmq::socket_t socket;
  Peer(zmq::context_t& ctx, const std::string& endpoint) : socket(ctx, zmq::socket_type::dealer) {
    socket.set(zmq::sockopt::linger, 0);
    socket.connect(endpoint);
  }
  void send(const std::vector<std::string>& frames) {
    for (std::size_t i = 0; i < frames.size(); ++i) {
      auto more = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      REQUIRE(socket.send(zmq::buffer(frames[i]), more));
    }
  }
  void send(const p::Message& m) { REQUIRE(p::send(socket, m)); }
  std::optional<p::Message> answer(std::chrono::milliseconds wait = 3s) {
    auto until = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < until) {
      zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(20));
      while (auto r = p::receive(socket, false)) {
        REQUIRE(r->message);
        if (!std::holds_alternative<p::Heartbeat>(*r->message)) return *r->message;
      }
    }
    return std::nullopt;
  }
};

std::string body(const json& j) { return j.dump(); }

std::string integrity(const fs::path& db) {
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  std::string out;
  sqlite3_exec(
      raw, "PRAGMA integrity_check",
      [](void* o, int, char** v, char**) {
        *static_cast<std::string*>(o) += v[0] ? v[0] : "";
        return 0;
      },
      &out, nullptr);
  sqlite3_close(raw);
  return out;
}

}  // namespace

TEST_CASE("the scheduler lives through a hostile corpus while a real agent's study completes",
          "[e2e][hostile]") {
  TempDir dir("hostile");
  write_text(dir.path / "trial.py", kScript);
  json study = {{"name", "calm"},
                {"objective", {{"metric", "value"}, {"direction", "minimize"}}},
                {"sampler", {{"type", "random"}}},
                {"seed", 11},
                {"budget", {{"max_trials", 24}, {"max_parallel", 2}}},
                {"trial",
                 {{"kind", "command"},
                  {"command", "/usr/bin/python3 trial.py {x}"},
                  {"workdir", dir.path.string()}}},
                {"space", {{"x", {{"type", "float"}, {"low", -1.0}, {"high", 1.0}}}}}};
  write_text(dir.path / "calm.json", study.dump(2));
  const int port = free_port();
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  const fs::path db = dir.path / "hpo.db";
  Process scheduler(scheduler_args(db, port, dir.path / "calm.json"), dir.path / "scheduler.out");
  Process agent(agent_args(port, dir.path / "work", 2, "calm-agent"), dir.path / "agent.out");
  REQUIRE(wait_until([&] { return completed(db, "calm") >= 1; }, 20s));

  zmq::context_t ctx(1);
  // Each case: frames, and what the ERROR answer must contain.
  std::vector<std::pair<std::vector<std::string>, std::string>> corpus{
      {{"hpo/2", "HELLO", body({{"agent", "x"}, {"slots", 1}})}, "unknown protocol version"},
      {{"hpo/1", "GIMME", "{}"}, "unknown message type"},
      {{"hpo/1", "HELLO"}, "expected 3 frames"},
      {{"hpo/1", "HELLO", "{}", "extra"}, "limit of 3 frames"},
      {{"hpo/1", "HELLO", "{\"agent\":" + std::string(200000, '[')}, "HELLO: body is not valid"},
      {{"hpo/1", "SUBMIT", "{\"study\": {\"a\": 1e99999}}"}, "SUBMIT: body is not valid"},
      {{"hpo/1", "HELLO", body({{"agent", "h"}, {"slots", 1000000000}})}, "field 'slots'"},
      {{"hpo/1", "HELLO", body({{"agent", "h"}, {"slots", -4}})}, "field 'slots'"},
      {{"hpo/1", "HELLO", body({{"agent", "h"}, {"slots", "many"}})}, "field 'slots'"},
      {{"hpo/1", "READY", body({{"free_slots", 1e300}})}, "field 'free_slots'"},
      {{"hpo/1", "REPORT",
        body({{"study", "calm"},
              {"trial", 0},
              {"attempt", -1},
              {"lease", "1.0.1"},
              {"step", 1},
              {"metrics", json::object()}})},
       "field 'attempt'"},
      {{"hpo/1", "FINISH", std::string(2 * p::kMaxBodyBytes, ' ')}, "FINISH: message of"},
      {{"hpo/1", "HELLO", body({{"agent", std::string(300, 'n')}, {"slots", 1}})}, "longer than"},
      {{"hpo/1", "SUBMIT", body({{"study", {{"name", "bad"}}}})}, "SUBMIT"},
      // An unknown peer's REPORT / FINISH: it must say HELLO first.
      {{"hpo/1", "FINISH",
        body({{"study", "calm"},
              {"trial", 0},
              {"attempt", 1},
              {"lease", "1.0.1"},
              {"outcome", "ok"},
              {"metrics", {{"value", -1e9}}}})},
       "say HELLO"},
      // The real agent's name from another process.
      {{"hpo/1", "HELLO", body({{"agent", "calm-agent"}, {"slots", 8}, {"pid", 1}})}, "is taken"},
  };
  std::vector<std::string> many{"hpo/1", "REPORT"};
  for (int i = 0; i < 500; ++i) many.push_back(std::string(4096, 'f'));
  corpus.push_back({many, "502 frames"});
  std::mt19937 rng(7);
  for (int i = 0; i < 20; ++i) {
    std::vector<std::string> garbage(1 + rng() % 5);
    for (auto& g : garbage) {
      g.resize(rng() % 64);
      for (auto& c : g) c = static_cast<char>(rng());
    }
    corpus.push_back({garbage, ""});
  }
  int answered = 0;
  for (const auto& [frames, expected] : corpus) {
    Peer peer(ctx, endpoint);
    peer.send(frames);
    auto a = peer.answer();
    INFO("case " << answered << " expects '" << expected << "'");
    REQUIRE(a);
    REQUIRE(std::holds_alternative<p::ErrorReply>(*a));
    CHECK_THAT(std::get<p::ErrorReply>(*a).message, Catch::Contains(expected));
    ++answered;
  }
  // A frame over ZeroMQ's own limit: the connection is closed, nothing to answer.
  {
    Peer peer(ctx, endpoint);
    peer.send({"hpo/1", "HELLO", std::string(p::kMaxFrameBytes + 1, 'z')});
    CHECK_FALSE(peer.answer(300ms));
  }
  // A hostile agent that did say HELLO: FINISH and REPORT for leases it does not hold are
  // fenced (ACK and STOP, nothing counted).
  {
    Peer rogue(ctx, endpoint);
    rogue.send(p::Hello{"rogue", "evil-host", 1, json::array(), 4242, {}});
    auto w = rogue.answer();
    REQUIRE(w);
    REQUIRE(std::holds_alternative<p::Welcome>(*w));
    for (int trial = 0; trial < 4; ++trial) {
      const std::string lease = "1." + std::to_string(trial) + ".1";
      rogue.send(p::Finish{"calm", trial, 1, lease, p::Outcome::kOk, {{"value", -1e9}}, "", ""});
      auto ack = rogue.answer();
      REQUIRE(ack);
      CHECK(std::holds_alternative<p::Ack>(*ack));
      rogue.send(p::Report{"calm", trial, 1, lease, 9, {{"value", -1e9}}});
      auto stop = rogue.answer();
      REQUIRE(stop);
      REQUIRE(std::holds_alternative<p::Decision>(*stop));
      CHECK(std::get<p::Decision>(*stop).stop);
    }
    rogue.send(p::Bye{});
  }
  // A HELLO flood under random names (slots but no READY: they take no work), then silence.
  {
    std::vector<std::unique_ptr<Peer>> flood;
    for (int i = 0; i < 200; ++i) {
      flood.push_back(std::make_unique<Peer>(ctx, endpoint));
      flood.back()->send(p::Hello{"flood-" + std::to_string(rng()), "h", 1, json::array(), i, {}});
    }
    int welcomed = 0;
    for (auto& peer : flood) {
      auto a = peer->answer();
      welcomed += a && std::holds_alternative<p::Welcome>(*a);
    }
    CHECK(welcomed == 200);
  }
  CHECK(answered == static_cast<int>(corpus.size()));
  CHECK(scheduler.running());  // the corpus was sent while the study ran

  auto code = scheduler.wait(60s);
  INFO(scheduler.output() << agent.output());
  REQUIRE(code == 0);
  agent.signal(SIGTERM);
  CHECK(agent.wait(10s).has_value());
  auto trials = stored_trials(db, "calm");
  REQUIRE(trials.size() == 24);
  CHECK(count_state(trials, TrialState::kCompleted) == 24);
  for (const auto& t : trials) {
    REQUIRE(t.value.has_value());
    CHECK(*t.value == Approx(3 * t.config["x"].get<double>()).margin(1e-9));
    CHECK(t.agent == "calm-agent");
  }
  CHECK(integrity(db) == "ok");
  CHECK_THAT(scheduler.output(), Catch::Contains("refused a message from"));
}
