// End to end with keys: the real `hpo scheduler` as a CURVE server with allow-lists, real
// agents and `hpo submit` as CURVE clients, and strangers who try to get in (issue 12).
#include <sqlite3.h>

#include "scheduler/keys.h"
#include "scheduler/protocol.h"
#include "tests/e2e/harness.h"

using namespace hpo::e2e;
using hpo::search::TrialState;
using nlohmann::json;
namespace p = hpo::scheduler::protocol;

namespace {

std::vector<std::string> agent_names(const fs::path& db) {
  auto store = hpo::results::Store::open(db.string(), hpo::results::OpenMode::kReadOnly);
  REQUIRE(store);
  auto agents = store->agents();
  REQUIRE(agents);
  std::vector<std::string> names;
  for (const auto& a : *agents) names.push_back(a.id);
  return names;
}

std::int64_t count_rows(const fs::path& db, const std::string& sql) {
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  std::int64_t n = -1;
  sqlite3_exec(
      raw, sql.c_str(),
      [](void* out, int, char** v, char**) {
        *static_cast<std::int64_t*>(out) = std::stoll(v[0]);
        return 0;
      },
      &n, nullptr);
  sqlite3_close(raw);
  return n;
}

// A DEALER that sends a HELLO, READY and SUBMIT and reports whether anything came back.
bool stranger_gets_an_answer(const std::string& endpoint, const hpo::scheduler::Keypair* mine,
                             const std::string& server_key, const json& evil_study) {
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  if (mine) REQUIRE(hpo::scheduler::make_curve_client(s, *mine, server_key));
  s.connect(endpoint);
  p::Hello h;
  h.agent = "stranger";
  h.host = "evil";
  h.slots = 4;
  (void)p::send(s, h);
  (void)p::send(s, p::Ready{4, false});
  (void)p::send(s, p::Submit{evil_study});
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, std::chrono::milliseconds(1500));
  return (item.revents & ZMQ_POLLIN) != 0;
}

}  // namespace

TEST_CASE("strangers without keys or with unlisted keys get nothing while the real agent works",
          "[e2e][security]") {
  TempDir dir("sec-strangers");
  auto keys = make_keys(dir.path, {"a1"}, {"alice"});
  write_json(dir / "s.json", sleep_study("real", 12, 2, 0.15, 2));
  // Up until the strangers have tried: then SIGTERM (a study that ended first would take the
  // scheduler with it, and the strangers would be refused by nobody).
  json evil = sleep_study("evil", 3, 1, 0.1, 1);
  evil["trial"] = {{"kind", "command"}, {"command", "touch " + (dir / "pwned")}};
  write_json(dir / "evil.json", evil);
  const int port = free_port();
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  const fs::path db = dir / "hpo.db";
  auto sched_args = scheduler_args(db, port, dir / "s.json");
  sched_args.erase(std::find(sched_args.begin(), sched_args.end(), "--exit-when-done"));
  Process scheduler(plus_args(sched_args, keys.scheduler_args()), dir / "scheduler.out");
  Process agent(plus_args(agent_args(port, dir / "work", 2, "a1"), keys.client_args("agents/a1")),
                dir / "agent.out");
  REQUIRE(wait_until([&] { return completed(db, "real") >= 1; }, 20s));

  // Plaintext: no handshake, so no message is ever delivered.
  CHECK_FALSE(stranger_gets_an_answer(endpoint, nullptr, "", evil));
  // CURVE with a key on no list: refused by the ZAP handler.
  auto stranger = hpo::scheduler::new_keypair();
  REQUIRE(stranger);
  auto server_key = hpo::scheduler::read_public_key((keys.dir / "scheduler.key").string());
  REQUIRE(server_key);
  CHECK_FALSE(stranger_gets_an_answer(endpoint, &*stranger, *server_key, evil));
  // The same through the CLI: a clear message and a failure exit.
  auto plain = run_hpo(dir, "submit " + (dir / "evil.json") + " --connect " + endpoint);
  CHECK(plain.code != 0);
  CHECK_THAT(plain.err, Catch::Contains("requires keys"));

  // The real agent was served throughout.
  INFO(scheduler.output() << agent.output());
  REQUIRE(wait_until([&] { return completed(db, "real") == 12; }, 30s));
  scheduler.signal(SIGTERM);
  REQUIRE(scheduler.wait(20s) == 0);
  // Nothing of the strangers was recorded, and nothing of theirs ran.
  CHECK(count_rows(db, "SELECT COUNT(*) FROM studies WHERE name = 'evil'") == 0);
  CHECK(agent_names(db) == std::vector<std::string>{"a1"});
  CHECK(count_rows(db, "SELECT COUNT(*) FROM trials WHERE agent IS NOT NULL AND agent != 'a1'") ==
        0);
  CHECK_FALSE(fs::exists(dir / "pwned"));
  CHECK_THAT(scheduler.output(), Catch::Contains("refused a connection from 127.0.0.1"));
}

TEST_CASE("an agent key cannot SUBMIT and a submitter key cannot HELLO", "[e2e][security]") {
  TempDir dir("sec-roles");
  auto keys = make_keys(dir.path, {"a1"}, {"alice"});
  write_json(dir / "s.json", sleep_study("real", 4, 1, 0.1, 1));
  json other = sleep_study("other", 2, 1, 0.1, 1);
  write_json(dir / "other.json", other);
  const int port = free_port();
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  const fs::path db = dir / "hpo.db";
  auto sched_args = scheduler_args(db, port, dir / "s.json");
  sched_args.erase(std::find(sched_args.begin(), sched_args.end(), "--exit-when-done"));
  Process scheduler(plus_args(sched_args, keys.scheduler_args()), dir / "scheduler.out");

  auto join = [&](const std::string& args) {
    return run_hpo(dir, "submit " + (dir / "other.json") + " --connect " + endpoint +
                            " " + args);
  };
  const auto& a1 = keys.client_args("agents/a1");
  auto as_agent = join(a1[0] + " " + a1[1] + " " + a1[2] + " " + a1[3]);
  CHECK(as_agent.code == 2);
  CHECK_THAT(as_agent.err, Catch::Contains("not on the scheduler's submitter list"));
  CHECK(count_rows(db, "SELECT COUNT(*) FROM studies WHERE name = 'other'") == 0);

  // A submitter key as an agent: told so, and it exits rather than retry forever.
  Process impostor(
      plus_args(agent_args(port, dir / "work", 1, "impostor"), keys.client_args("submitters/alice")),
      dir / "impostor.out");
  auto impostor_code = impostor.wait(15s);
  INFO(impostor.output());
  REQUIRE(impostor_code.has_value());
  CHECK(*impostor_code != 0);
  CHECK_THAT(impostor.output(), Catch::Contains("not on the scheduler's agent list"));
  CHECK(agent_names(db).empty());

  // The submitter key does what it is for.
  const auto& alice = keys.client_args("submitters/alice");
  auto ok = join(alice[0] + " " + alice[1] + " " + alice[2] + " " + alice[3]);
  INFO(ok.err);
  CHECK(ok.code == 0);
  CHECK(count_rows(db, "SELECT COUNT(*) FROM studies WHERE name = 'other'") == 1);
  scheduler.signal(SIGTERM);
  CHECK(scheduler.wait(20s) == 0);
}

TEST_CASE("an agent given the wrong scheduler key refuses to connect and says why",
          "[e2e][security]") {
  TempDir dir("sec-wrong-server");
  auto keys = make_keys(dir.path, {"a1"}, {});
  write_json(dir / "s.json", sleep_study("real", 2, 1, 0.1, 1));
  const int port = free_port();
  const fs::path db = dir / "hpo.db";
  auto sched_args = scheduler_args(db, port, dir / "s.json");
  Process scheduler(plus_args(sched_args, keys.scheduler_args()), dir / "scheduler.out");
  // The agent pins its own public key as if it were the scheduler's.
  Process agent(plus_args(agent_args(port, dir / "work", 1, "a1"),
                     {"--key", (keys.dir / "agents/a1.secret").string(), "--scheduler-key",
                      (keys.dir / "agents/a1.key").string()}),
                dir / "agent.out");
  auto code = agent.wait(20s);
  INFO(agent.output());
  REQUIRE(code.has_value());
  CHECK(*code != 0);
  CHECK_THAT(agent.output(), Catch::Contains("--scheduler-key"));
  CHECK(agent_names(db).empty());
  // A plaintext agent against a CURVE scheduler is told it needs keys.
  Process plain(agent_args(port, dir / "work", 1, "plain"), dir / "plain.out");
  auto plain_code = plain.wait(20s);
  INFO(plain.output());
  REQUIRE(plain_code.has_value());
  CHECK(*plain_code != 0);
  CHECK_THAT(plain.output(), Catch::Contains("requires keys"));
  // Said once per failure, not as a "send HELLO: pipe full" at every beat while it waits.
  CHECK_THAT(plain.output(), !Catch::Contains("pipe full"));
  CHECK_THAT(agent.output(), !Catch::Contains("pipe full"));
  scheduler.signal(SIGTERM);
  CHECK(scheduler.wait(20s) == 0);
}

TEST_CASE("after SIGHUP a removed key cannot act and its running trials are requeued",
          "[e2e][security]") {
  TempDir dir("sec-revoke");
  auto keys = make_keys(dir.path, {"a1", "a2"}, {});
  write_json(dir / "s.json", sleep_study("long", 6, 2, 1.5, 3));
  const int port = free_port();
  const fs::path db = dir / "hpo.db";
  Process scheduler(plus_args(scheduler_args(db, port, dir / "s.json"), keys.scheduler_args()),
                    dir / "scheduler.out");
  Process a2(plus_args(agent_args(port, dir / "work2", 1, "a2"), keys.client_args("agents/a2")),
             dir / "a2.out");
  // a2 alone first, so that it surely holds a trial when its key goes.
  REQUIRE(wait_until(
      [&] {
        for (const auto& t : trials_of(db, "long")) {
          if (t.state == TrialState::kRunning && t.agent == "a2") return true;
        }
        return false;
      },
      20s));
  Process a1(plus_args(agent_args(port, dir / "work1", 1, "a1"), keys.client_args("agents/a1")),
             dir / "a1.out");
  fs::remove(keys.dir / "agents/a2.key");
  scheduler.signal(SIGHUP);

  auto a2_code = a2.wait(20s);
  INFO(scheduler.output() << a2.output() << a1.output());
  REQUIRE(a2_code.has_value());
  CHECK(*a2_code != 0);
  CHECK_THAT(a2.output(), Catch::Contains("removed from the scheduler's agent list"));
  CHECK_THAT(scheduler.output(), Catch::Contains("agent a2 revoked"));
  REQUIRE(scheduler.wait(60s) == 0);
  auto trials = stored_trials(db, "long");
  CHECK(count_state(trials, TrialState::kCompleted) == 6);
  // The trial a2 held ran again, on a1, under a new attempt.
  bool requeued = false;
  for (const auto& t : trials) {
    CHECK(t.agent == "a1");
    if (t.attempt >= 2) requeued = true;
  }
  CHECK(requeued);
  CHECK(count_rows(db, "SELECT COUNT(*) FROM events WHERE kind = 'agent_revoked'") == 1);
}

TEST_CASE("a plaintext scheduler reachable from other machines needs --insecure and warns",
          "[e2e][security]") {
  TempDir dir("sec-bind");
  write_json(dir / "s.json", sleep_study("s", 1, 1, 0.1, 1));
  const std::string bind = "tcp://0.0.0.0:" + std::to_string(free_port());
  auto refused = run_hpo(dir, "scheduler --db " + (dir / "a.db") + " --bind " + bind);
  CHECK(refused.code != 0);
  CHECK_THAT(refused.err, Catch::Contains("refusing to listen on '" + bind + "' without keys"));
  CHECK_FALSE(fs::exists(dir / "a.db-wal"));

  Process open({"scheduler", "--db", (dir / "b.db"), "--bind", bind, "--insecure"},
               dir / "open.out");
  REQUIRE(wait_until([&] { return open.output().find("listening") != std::string::npos; }, 10s));
  CHECK_THAT(open.output(), Catch::Contains("WARNING: --insecure"));
  open.signal(SIGTERM);
  CHECK(open.wait(20s) == 0);
}

TEST_CASE("hpo run keeps its ephemeral keys from its trials", "[e2e][security][run]") {
  TempDir dir("sec-run");
  write_text(dir / "trial.py",
             "import json, os\n"
             "leak = 1 if any('HPO_RUN_KEYS' in k for k in os.environ) else 0\n"
             "print('HPO_METRIC ' + json.dumps({'step': 1, 'value': leak}), flush=True)\n");
  json study = sleep_study("env", 3, 1, 0.1, 1);
  study["trial"] = {{"kind", "command"},
                    {"command", "/usr/bin/python3 trial.py"},
                    {"workdir", dir.path.string()}};
  write_json(dir / "env.json", study);
  auto r = run_hpo(dir, "run " + (dir / "env.json") + " --agents 1 --db " +
                            (dir / "r.db") + " 2>&1");
  INFO(r.out);
  REQUIRE(r.code == 0);
  auto trials = stored_trials(dir / "r.db", "env");
  REQUIRE(trials.size() == 3);
  for (const auto& t : trials) {
    REQUIRE(t.value.has_value());
    CHECK(*t.value == 0);
  }
}
