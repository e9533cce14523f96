// Pausing and resuming trials on the agent (agent.h, transfer.h) against a scheduler played by
// the test: a ROUTER that keeps what the agent uploads with PUT (answering PUT_ACK when the
// test lets it) and serves GET from bytes the test chooses. Over 450 lines: the cases share
// that scripted scheduler (Hub, Rig), which no other test file needs.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <deque>
#include <fstream>
#include <thread>

#include "base/pack.h"
#include "base/sha256.h"
#include "scheduler/protocol.h"
#include "tests/support/ports.h"
#include "tests/support/temp_dir.h"
#include "trainer/agent/agent.h"
#include "trainer/agent/builtin_objectives.h"
#include "trainer/agent/curves.h"
#include "trainer/agent/process_runner.h"

namespace p = hpo::scheduler::protocol;
using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

struct Hub {
  zmq::socket_t router;
  std::string agent;
  Clock::time_point last_beat{};
  std::deque<p::Message> inbox;  // what the agent sent, but heartbeats and transfers
  int heartbeats = 0;
  // Uploads: what arrived, and the PUT_ACKs held back for `ack_delay`.
  std::string uploaded;
  p::Put last_put;
  int puts = 0, acks_sent = 0, max_outstanding = 0;
  std::chrono::milliseconds ack_delay{0};
  std::string put_error;  // answers every PUT with it
  std::deque<std::pair<Clock::time_point, p::PutAck>> held;
  // Fetches: GETs are answered from `stored`.
  std::string stored;
  bool answer_gets = true;
  int gets = 0;

  Hub(zmq::context_t& ctx, const std::string& endpoint) : router(ctx, zmq::socket_type::router) {
    router.set(zmq::sockopt::linger, 0);
    router.bind(endpoint);
  }
  void on_put(const p::Put& m) {
    ++puts;
    if (m.offset == 0) uploaded.clear();
    p::PutAck ack{m.lease, 0, false, put_error};
    if (put_error.empty()) {
      REQUIRE(m.offset == static_cast<std::int64_t>(uploaded.size()));
      uploaded += m.data;
      ack.next = static_cast<std::int64_t>(uploaded.size());
      ack.done = ack.next == m.total && hpo::sha256_hex(uploaded) == m.sha256;
    }
    last_put = m;
    max_outstanding = std::max(max_outstanding, puts - acks_sent);
    held.emplace_back(Clock::now() + ack_delay, ack);
  }
  void on_get(const p::Get& m) {
    ++gets;
    if (!answer_gets) return;
    p::Chunk c{m.lease, m.offset, static_cast<std::int64_t>(stored.size()), "", ""};
    if (m.offset < static_cast<std::int64_t>(stored.size())) {
      c.data = stored.substr(static_cast<std::size_t>(m.offset), p::kMaxChunkBytes);
    }
    send(c);
  }
  void pump() {
    zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, 5ms);
    if (!agent.empty() && Clock::now() - last_beat > 30ms) {
      send(p::Heartbeat{});
      last_beat = Clock::now();
    }
    while (!held.empty() && held.front().first <= Clock::now()) {
      send(held.front().second);
      ++acks_sent;
      held.pop_front();
    }
    while (auto r = p::receive(router, true)) {
      REQUIRE(r->message);
      auto& m = *r->message;
      if (std::holds_alternative<p::Hello>(m)) agent = r->routing_id;
      if (std::holds_alternative<p::Heartbeat>(m)) ++heartbeats;
      else if (auto* put = std::get_if<p::Put>(&m)) on_put(*put);
      else if (auto* get = std::get_if<p::Get>(&m)) on_get(*get);
      else inbox.push_back(std::move(m));
    }
  }
  template <class T>
  T expect(std::chrono::milliseconds timeout = 10s) {
    auto end = Clock::now() + timeout;
    while (Clock::now() < end) {
      for (auto it = inbox.begin(); it != inbox.end(); ++it) {
        if (auto* t = std::get_if<T>(&*it)) {
          T out = *t;
          inbox.erase(it);
          return out;
        }
      }
      pump();
    }
    FAIL("the agent sent no " << typeid(T).name());
    return T{};
  }
  void send(const p::Message& m) { REQUIRE(p::send(router, m, agent)); }
  void welcome(std::optional<p::SharedCheckpoints> shared = std::nullopt) {
    expect<p::Hello>();
    send(p::Welcome{"hub", 50, 20, {}, {}, shared});  // a 1 s liveness window (see options())
    expect<p::Ready>();
  }
};

struct AgentUnderTest {
  std::atomic<bool> stop{false};
  hpo::agent::Agent agent;
  std::thread thread;
  AgentUnderTest(zmq::context_t& ctx, const std::string& endpoint, const std::string& workdir)
      : agent(ctx, options(endpoint, workdir), runner(workdir)),
        thread([this] { (void)agent.run(stop); }) {}
  ~AgentUnderTest() {
    stop = true;
    thread.join();
  }
  static hpo::agent::AgentOptions options(const std::string& endpoint, const std::string& dir) {
    hpo::agent::AgentOptions o;
    o.endpoint = endpoint;
    o.name = "pausing-agent";
    // A 1 s liveness window: the scripted scheduler answers only while a test waits on it,
    // and under a sanitizer on a loaded machine 250 ms of its silence made the agent
    // reconnect mid-transfer (a FINISH then never came, the fresh-machine run of issue 14).
    o.heartbeat_ms = 50;
    o.liveness = 20;
    o.shutdown_grace_s = 0;
    o.workdir = dir;
    return o;
  }
  static std::unique_ptr<hpo::agent::TrialRunner> runner(const std::string& workdir) {
    hpo::agent::ProcessRunnerOptions po;
    po.workdir = workdir;
    po.kill_grace_s = 2;
    return std::make_unique<hpo::agent::KindRunner>(
        std::make_unique<hpo::agent::BuiltinRunner>(),
        std::make_unique<hpo::agent::ProcessRunner>(po));
  }
};

const json kCurvesConfig = {{"lr", 0.003}, {"batch_size", 128}, {"width", 128}, {"dropout", 0.2}};
const json kCurvesSpec = {{"kind", "builtin"}, {"function", "curves"}, {"seconds", 0.3},
                          {"steps", 6}};

p::Assign assign(std::int64_t attempt, const json& spec, const json& config = kCurvesConfig) {
  p::Assign a{"s", 7, attempt, "L" + std::to_string(attempt), config, spec};
  a.pausable = true;
  return a;
}

// The bytes `uploaded` unpacked into `dir`.
void unpack(const std::string& uploaded, const hpo::test::TempDir& tmp, const std::string& dir) {
  const auto pack = tmp / (dir + ".pack");
  std::ofstream(pack, std::ios::binary) << uploaded;
  REQUIRE(hpo::unpack_directory(pack, tmp / dir));
}

// A hub, and an agent that it WELCOMEd.
struct Rig {
  zmq::context_t ctx{1};
  const std::string endpoint = hpo::test::local_endpoint();
  Hub hub{ctx, endpoint};
  hpo::test::TempDir tmp;
  AgentUnderTest agent{ctx, endpoint, tmp / "work"};
  explicit Rig(const std::string& tag) : tmp(tag) { hub.welcome(); }
  // WELCOMEd with the shared checkpoint directory tmp/shared, whose shared-id holds `held`.
  Rig(const std::string& tag, const std::string& held) : tmp(tag) {
    std::filesystem::create_directories(shared() / "incoming");
    std::ofstream(shared() / "shared-id") << held << "\n";
    hub.welcome(p::SharedCheckpoints{shared().string(), kToken});
  }
  std::filesystem::path shared() const { return tmp / "shared"; }
  static inline const std::string kToken = std::string(32, 'c');
};

}  // namespace

TEST_CASE("a paused curves trial uploads its checkpoint and resumes where it stopped",
          "[agent][pause]") {
  Rig rig("agent-pause-curves");
  auto& hub = rig.hub;
  auto& tmp = rig.tmp;

  hub.send(assign(1, kCurvesSpec));
  for (int step = 1; step <= 3; ++step) CHECK(hub.expect<p::Report>().step == step);
  hub.send(p::Decision{7, 1, "L1", false, true});
  auto paused = hub.expect<p::Finish>();
  CHECK(paused.outcome == p::Outcome::kPaused);
  REQUIRE(paused.checkpoint);
  CHECK(paused.checkpoint->bytes == static_cast<std::int64_t>(hub.uploaded.size()));
  CHECK(paused.checkpoint->sha256 == hpo::sha256_hex(hub.uploaded));
  CHECK(hub.max_outstanding <= p::kTransferCredit);
  unpack(hub.uploaded, tmp, "got");
  CHECK(hpo::agent::read_curve_state(tmp / "got").value() == 3);
  hub.send(p::Ack{7, 1, "L1"});

  // Attempt 2 resumes from it (on this agent: any agent would do).
  hub.stored = hub.uploaded;
  auto resumed = assign(2, kCurvesSpec);
  resumed.resume = paused.checkpoint;
  hub.send(resumed);
  auto params = hpo::agent::curve_params(kCurvesConfig).value();
  for (int step = 4; step <= 6; ++step) {
    auto r = hub.expect<p::Report>();
    CHECK(r.lease == "L2");
    CHECK(r.step == step);
    CHECK(r.metrics.at("val_accuracy") == hpo::agent::curve_accuracy(params, step));
  }
  auto done = hub.expect<p::Finish>();
  CHECK(done.outcome == p::Outcome::kOk);
  CHECK(done.metrics.at("val_accuracy") == hpo::agent::curve_accuracy(params, 6));
  CHECK(hub.gets >= 1);
}

TEST_CASE("a resume whose checkpoint does not match its digest fails to start, naming why",
          "[agent][pause]") {
  Rig rig("agent-pause-digest");
  auto& hub = rig.hub;
  hub.stored = std::string(1000, 'x');
  auto resumed = assign(2, kCurvesSpec);
  resumed.resume = p::CheckpointRef{1000, std::string(64, '0')};
  hub.send(resumed);
  auto f = hub.expect<p::Finish>();
  CHECK(f.outcome == p::Outcome::kInterrupted);
  CHECK(f.start_failed);
  CHECK(f.error.find("lease L2") != std::string::npos);
  CHECK(f.error.find("SHA-256 mismatch") != std::string::npos);
  hub.send(p::Ack{7, 2, "L2"});
  // The slot is free again: the next trial runs.
  hub.send(assign(3, json{{"kind", "builtin"}, {"function", "branin"}}, json::object()));
  CHECK(hub.expect<p::Finish>().outcome == p::Outcome::kOk);
}

TEST_CASE("a refused upload ends the trial paused without a checkpoint", "[agent][pause]") {
  Rig rig("agent-pause-refused");
  auto& hub = rig.hub;
  hub.put_error = "checkpoint store full";
  hub.send(assign(1, kCurvesSpec));
  hub.expect<p::Report>();
  hub.send(p::Decision{7, 1, "L1", false, true});
  auto f = hub.expect<p::Finish>();
  CHECK(f.outcome == p::Outcome::kPaused);
  CHECK_FALSE(f.checkpoint);
  CHECK(hub.puts >= 1);
}

TEST_CASE("a command trial saves on SIGTERM, its checkpoint travels in credit, and it resumes",
          "[agent][pause]") {
  Rig rig("agent-pause-command");
  auto& hub = rig.hub;
  auto& tmp = rig.tmp;
  // 1.5 MB saved on SIGTERM: six PUTs, four at most unacknowledged.
  std::ofstream(tmp / "trial.sh") << R"(
env | grep '^HPO_\(PAUSE\|CHECKPOINT_DIR\|RESUME_FROM\)=' | sort > "$HPO_TRIAL_DIR/env.txt"
echo "$1" > "$HPO_TRIAL_DIR/placeholder.txt"
if [ -n "$HPO_RESUME_FROM" ]; then
  n=$(cat "$HPO_RESUME_FROM/n")
  echo "HPO_METRIC {\"step\": $((n + 1)), \"v\": $(wc -c < "$HPO_RESUME_FROM/blob")}"
  exit 0
fi
trap 'head -c 1500000 /dev/urandom > "$HPO_CHECKPOINT_DIR/blob"; echo 1 > "$HPO_CHECKPOINT_DIR/n"; exit 0' TERM
echo 'HPO_METRIC {"step": 1, "v": 1}'
while true; do sleep 0.05; done
)";
  const json spec = {{"kind", "command"},
                     {"command", "sh " + tmp / "trial.sh" + " {hpo.checkpoint_dir}"}};
  hub.ack_delay = 300ms;
  hub.send(assign(1, spec, json::object()));
  CHECK(hub.expect<p::Report>().step == 1);
  const auto dir1 = tmp.path / "work" / "s" / "trial-7-attempt-1";
  const std::string checkpoint1 = (dir1 / "checkpoint").string();
  CHECK(hpo::test::read_text(dir1 / "env.txt") ==
        "HPO_CHECKPOINT_DIR=" + checkpoint1 + "\nHPO_PAUSE=1\n");
  CHECK(hpo::test::read_text(dir1 / "placeholder.txt") == checkpoint1 + "\n");
  hub.send(p::Decision{7, 1, "L1", false, true});
  const int beats = hub.heartbeats;
  auto paused = hub.expect<p::Finish>();
  CHECK(paused.outcome == p::Outcome::kPaused);
  REQUIRE(paused.checkpoint);
  CHECK(paused.checkpoint->sha256 == hpo::sha256_hex(hub.uploaded));
  CHECK(hub.puts == 6);
  CHECK(hub.max_outstanding == p::kTransferCredit);
  CHECK(hub.heartbeats > beats);  // the agent went on beating while acks were held back
  hub.send(p::Ack{7, 1, "L1"});

  hub.stored = hub.uploaded;
  auto resumed = assign(2, spec, json::object());
  resumed.pausable = false;
  resumed.resume = paused.checkpoint;
  hub.send(resumed);
  auto r = hub.expect<p::Report>();
  CHECK(r.step == 2);
  CHECK(r.metrics.at("v") == 1500000);
  CHECK(hub.expect<p::Finish>().outcome == p::Outcome::kOk);
  const auto dir2 = tmp.path / "work" / "s" / "trial-7-attempt-2";
  CHECK(hpo::test::read_text(dir2 / "env.txt") == "HPO_CHECKPOINT_DIR=" + (dir2 / "checkpoint").string() +
                                           "\nHPO_RESUME_FROM=" + (dir2 / "resume").string() +
                                           "\n");
}

TEST_CASE("an upload cut by a scheduler restart starts again at 0 with the trial re-announced",
          "[agent][pause]") {
  zmq::context_t ctx(1);
  const std::string endpoint = hpo::test::local_endpoint();
  auto first = std::make_unique<Hub>(ctx, endpoint);
  hpo::test::TempDir tmp("agent-pause-restart");
  AgentUnderTest a(ctx, endpoint, tmp / "work");
  first->welcome();
  first->ack_delay = 1h;  // this scheduler never answers the upload
  first->send(assign(1, kCurvesSpec));
  first->expect<p::Report>();
  first->send(p::Decision{7, 1, "L1", false, true});
  while (first->puts == 0) first->pump();
  first.reset();
  std::this_thread::sleep_for(1500ms);  // past the agent's liveness window (20 x 50 ms)

  Hub second(ctx, endpoint);
  auto hello = second.expect<p::Hello>();
  REQUIRE(hello.running.size() == 1);
  CHECK(hello.running[0].lease == "L1");
  CHECK_FALSE(hello.running[0].finished);  // no FINISH yet: it is still the agent's trial
  second.send(p::Welcome{"second", 50, 20, {"L1"}, {}});
  auto f = second.expect<p::Finish>();
  CHECK(f.outcome == p::Outcome::kPaused);
  REQUIRE(f.checkpoint);
  CHECK(second.last_put.offset == 0);  // the whole pack again, in one chunk
  CHECK(f.checkpoint->sha256 == hpo::sha256_hex(second.uploaded));
}

TEST_CASE("an agent that stops gives up an upload after its grace: FINISH paused, no checkpoint",
          "[agent][pause]") {
  Rig rig("agent-pause-stop");
  auto& hub = rig.hub;
  hub.ack_delay = 1h;
  hub.send(assign(1, kCurvesSpec));
  hub.expect<p::Report>();
  hub.send(p::Decision{7, 1, "L1", false, true});
  while (hub.puts == 0) hub.pump();
  rig.agent.stop = true;  // shutdown_grace_s = 0
  auto f = hub.expect<p::Finish>();
  CHECK(f.outcome == p::Outcome::kPaused);
  CHECK_FALSE(f.checkpoint);
  CHECK(f.error == "agent is stopping");
  hub.send(p::Ack{7, 1, "L1"});
  hub.expect<p::Bye>();
}

TEST_CASE("a trial whose pause ends after the agent's grace is not uploaded: the agent exits",
          "[agent][pause]") {
  Rig rig("agent-pause-late");
  auto& hub = rig.hub;
  hub.ack_delay = 1h;
  // It takes its time to save: the agent's stop (no grace) comes first.
  std::ofstream(rig.tmp / "slow.sh") << R"(
trap 'sleep 0.3; echo 1 > "$HPO_CHECKPOINT_DIR/n"; exit 0' TERM
echo 'HPO_METRIC {"step": 1, "v": 1}'
while true; do sleep 0.05; done
)";
  hub.send(assign(1, json{{"kind", "command"}, {"command", "sh " + rig.tmp / "slow.sh"}},
                  json::object()));
  hub.expect<p::Report>();
  hub.send(p::Decision{7, 1, "L1", false, true});
  std::this_thread::sleep_for(100ms);  // the SIGTERM is on its way
  rig.agent.stop = true;
  auto f = hub.expect<p::Finish>();
  CHECK(f.outcome == p::Outcome::kPaused);
  CHECK_FALSE(f.checkpoint);
  hub.send(p::Ack{7, 1, "L1"});
  hub.expect<p::Bye>();
}

TEST_CASE("a trial stopped or paused while its checkpoint is fetched ends without starting",
          "[agent][pause]") {
  Rig rig("agent-pause-fetching");
  auto& hub = rig.hub;
  hub.answer_gets = false;
  const p::CheckpointRef ref{1000, std::string(64, 'a')};
  auto resumed = assign(2, kCurvesSpec);
  resumed.resume = ref;
  hub.send(resumed);
  while (hub.gets == 0) hub.pump();
  hub.send(p::Decision{7, 2, "L2", false, true});
  auto paused = hub.expect<p::Finish>();
  CHECK(paused.outcome == p::Outcome::kPaused);
  CHECK(paused.checkpoint == ref);  // it is where it was: the scheduler resumes it from there
  hub.send(p::Ack{7, 2, "L2"});

  resumed = assign(3, kCurvesSpec);
  resumed.resume = ref;
  hub.send(resumed);
  while (hub.gets == 1) hub.pump();
  hub.send(p::Decision{7, 3, "L3", true, false});
  auto stopped = hub.expect<p::Finish>();
  CHECK(stopped.outcome == p::Outcome::kPruned);
  CHECK_FALSE(stopped.checkpoint);
  hub.send(p::Ack{7, 3, "L3"});
  hub.answer_gets = true;  // nothing asks any more: no report of a trial that never started
  hub.pump();
  CHECK(hub.inbox.empty());
}

TEST_CASE("an upload whose pack cannot be read any more ends paused without a checkpoint",
          "[agent][pause]") {
  Rig rig("agent-pause-unreadable");
  auto& hub = rig.hub;
  std::ofstream(rig.tmp / "big.sh") << R"(
trap 'head -c 1500000 /dev/zero > "$HPO_CHECKPOINT_DIR/blob"; exit 0' TERM
echo 'HPO_METRIC {"step": 1, "v": 1}'
while true; do sleep 0.05; done
)";
  hub.ack_delay = 300ms;
  hub.send(assign(1, json{{"kind", "command"}, {"command", "sh " + rig.tmp / "big.sh"}},
                  json::object()));
  hub.expect<p::Report>();
  hub.send(p::Decision{7, 1, "L1", false, true});
  while (hub.puts == 0) hub.pump();
  // Cut short under the agent (a full disk, an operator): the next chunks cannot be read.
  std::filesystem::resize_file(rig.tmp.path / "work/s/trial-7-attempt-1/checkpoint.pack", 10);
  auto f = hub.expect<p::Finish>();
  CHECK(f.outcome == p::Outcome::kPaused);
  CHECK_FALSE(f.checkpoint);
  CHECK(hub.puts == p::kTransferCredit);
}

TEST_CASE("with a shared checkpoint directory a paused trial's pack goes to incoming/ and its "
          "resume reads it there: no PUT, no GET",
          "[agent][pause][shared]") {
  Rig rig("agent-pause-shared", Rig::kToken);
  auto& hub = rig.hub;
  hub.send(assign(1, kCurvesSpec));
  for (int step = 1; step <= 3; ++step) CHECK(hub.expect<p::Report>().step == step);
  hub.send(p::Decision{7, 1, "L1", false, true});
  auto paused = hub.expect<p::Finish>();
  CHECK(paused.outcome == p::Outcome::kPaused);
  REQUIRE(paused.checkpoint);
  CHECK(paused.checkpoint->shared);
  CHECK(hub.puts == 0);
  const auto incoming =
      rig.shared() / "incoming" / p::shared_pack_name(paused.checkpoint->sha256, "L1");
  REQUIRE(std::filesystem::exists(incoming));
  CHECK(std::filesystem::file_size(incoming) ==
        static_cast<std::uintmax_t>(paused.checkpoint->bytes));
  CHECK(hpo::sha256_file(incoming).value() == paused.checkpoint->sha256);
  REQUIRE(hpo::unpack_directory(incoming, rig.tmp / "got"));
  CHECK(hpo::agent::read_curve_state(rig.tmp / "got").value() == 3);
  hub.send(p::Ack{7, 1, "L1"});

  // The scheduler moves it into its store; attempt 2 names it there.
  const std::string stored = "1/7.1." + paused.checkpoint->sha256 + ".pack";
  std::filesystem::create_directories(rig.shared() / "1");
  std::filesystem::rename(incoming, rig.shared() / stored);
  auto resumed = assign(2, kCurvesSpec);
  resumed.resume = p::CheckpointRef{paused.checkpoint->bytes, paused.checkpoint->sha256, false,
                                    stored};
  hub.send(resumed);
  auto params = hpo::agent::curve_params(kCurvesConfig).value();
  for (int step = 4; step <= 6; ++step) {
    auto r = hub.expect<p::Report>();
    CHECK(r.step == step);
    CHECK(r.metrics.at("val_accuracy") == hpo::agent::curve_accuracy(params, step));
  }
  CHECK(hub.expect<p::Finish>().outcome == p::Outcome::kOk);
  CHECK(hub.gets == 0);
  hub.send(p::Ack{7, 2, "L2"});

  // A resume whose pack is not where the ASSIGN says: fetched over the network instead.
  std::ifstream in(rig.shared() / stored, std::ios::binary);
  hub.stored.assign(std::istreambuf_iterator<char>(in), {});
  auto moved = assign(3, kCurvesSpec);
  moved.resume = p::CheckpointRef{paused.checkpoint->bytes, paused.checkpoint->sha256, false,
                                  "1/gone.pack"};
  hub.send(moved);
  CHECK(hub.expect<p::Report>().step == 4);
  CHECK(hub.gets >= 1);
}

TEST_CASE("an agent whose shared-id holds another token sends checkpoints over the network",
          "[agent][pause][shared]") {
  Rig rig("agent-pause-not-shared", std::string(32, 'd'));
  auto& hub = rig.hub;
  hub.send(assign(1, kCurvesSpec));
  for (int step = 1; step <= 2; ++step) CHECK(hub.expect<p::Report>().step == step);
  hub.send(p::Decision{7, 1, "L1", false, true});
  auto paused = hub.expect<p::Finish>();
  REQUIRE(paused.checkpoint);
  CHECK_FALSE(paused.checkpoint->shared);
  CHECK(hub.puts >= 1);
  CHECK(paused.checkpoint->sha256 == hpo::sha256_hex(hub.uploaded));
  CHECK(std::filesystem::is_empty(rig.shared() / "incoming"));
}
