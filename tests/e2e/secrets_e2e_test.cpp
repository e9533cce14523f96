// End to end (issue 12): a study's trial.env values are secrets. The trial sees them; no
// output of hpo shows them: not the scheduler's or the agents' logs (--verbose too), not the
// events in the database, not hpo show, export, studies, trials or leaderboard, not the
// files the agent writes in trial directories. The names are shown, so a user can see which
// variables a study sets.
#include <fstream>

#include "tests/e2e/harness.h"

using namespace hpo::e2e;
using hpo::search::TrialState;
using nlohmann::json;

namespace {

constexpr const char* kName = "HPO_TEST_SECRET";
constexpr const char* kValue = "s3cr3t-value";

// The trial checks the variable and exits 3 without it; it never prints the value.
const char* kCheckScript = R"PY(
import json, os, sys
if os.environ.get("HPO_TEST_SECRET") != "s3cr3t-" + "value":
    print("HPO_TEST_SECRET is missing or wrong", flush=True)
    sys.exit(3)
print("HPO_METRIC " + json.dumps({"step": 1, "loss": 0.5}), flush=True)
)PY";

json secret_study(const std::string& name, const fs::path& workdir) {
  return {{"name", name},
          {"objective", {{"metric", "loss"}, {"direction", "minimize"}}},
          {"sampler", {{"type", "random"}}},
          {"seed", 3},
          {"budget", {{"max_trials", 2}, {"max_parallel", 2}, {"max_retries", 0}}},
          {"trial",
           {{"kind", "command"},
            {"command", "/usr/bin/python3 check.py"},
            {"workdir", workdir.string()},
            {"env", {{kName, kValue}, {"HPO_TEST_PLAIN", "plain"}}}}},
          {"space", {{"x", {{"type", "float"}, {"low", 0}, {"high", 1}}}}}};
}

// Fails the test, naming `what`, when `text` holds the secret value.
void check_clean(const std::string& what, const std::string& text) {
  INFO(what << ":\n" << text);
  CHECK(text.find(kValue) == std::string::npos);
}

// Every file under `dir` (trial directories: config.json, logs), checked.
void check_files(const fs::path& dir) {
  std::size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    ++files;
    check_clean(e.path().string(), read_text(e.path()));
  }
  CHECK(files > 0);
}

// What the database holds beside the study's spec (which keeps the values: a restarted
// scheduler needs them): events, trials' errors and log tails, agents.
void check_database(const fs::path& db, const std::string& study) {
  auto store = hpo::results::Store::open(db.string(), hpo::results::OpenMode::kReadOnly);
  REQUIRE(store);
  auto events = store->events(std::nullopt);
  REQUIRE(events);
  CHECK_FALSE(events->empty());
  for (const auto& e : *events) check_clean("event " + e.kind, e.kind + " " + e.detail.dump());
  for (const auto& t : stored_trials(db, study)) {
    INFO("trial " << t.number << ": " << t.error << "\n" << t.log_tail);
    CHECK(t.state == TrialState::kCompleted);  // it saw the variable
    check_clean("trial error and log tail", t.error + t.log_tail + t.config.dump());
  }
  auto agents = store->agents();
  REQUIRE(agents);
  for (const auto& a : *agents) check_clean("agent " + a.id, a.host + a.gpus.dump() + a.drained);
}

// The read-side commands: none shows the value; export, which prints the spec, shows the
// name with "(hidden)".
void check_commands(const TempDir& dir, const fs::path& db, const std::string& study) {
  const std::string on = " --db " + db.string() + " --study " + study;
  for (const std::string& command :
       {"show 0" + on, "show 1 --format json" + on, "trials" + on, "trials --format json" + on,
        "leaderboard" + on, "leaderboard --format json" + on, "export --format csv" + on,
        "studies --db " + db.string(), "studies --format json --db " + db.string()}) {
    auto r = run_hpo(dir, command);
    INFO(command << "\n" << r.err);
    CHECK(r.code == 0);
    check_clean("hpo " + command, r.out + r.err);
  }
  auto r = run_hpo(dir, "export --format json" + on);
  REQUIRE(r.code == 0);
  check_clean("hpo export --format json", r.out + r.err);
  auto exported = json::parse(r.out);
  const json& env = exported["study"]["spec"]["trial"]["env"];
  CHECK(env == json{{kName, "(hidden)"}, {"HPO_TEST_PLAIN", "(hidden)"}});
}

}  // namespace

TEST_CASE("hpo run: trial.env values reach the trial and no output or log of hpo shows them",
          "[e2e][secrets]") {
  TempDir dir("secrets-run");
  const fs::path study_dir = dir.path / "study";
  fs::create_directories(study_dir);
  write_text(study_dir / "check.py", kCheckScript);
  write_json(dir.path / "secret.json", secret_study("secret", study_dir));
  const fs::path db = dir.path / "run.db";
  const fs::path work = dir.path / "work";
  Process run({"run", (dir.path / "secret.json").string(), "--agents", "2", "--verbose", "--db",
               db.string(), "--workdir", work.string(), "--heartbeat-ms", "200"},
              dir.path / "run.out", dir.path);
  auto code = run.wait(60s);
  INFO(run.output());
  REQUIRE(code == 0);
  check_clean("hpo run's output", run.output());
  check_database(db, "secret");
  check_files(work);
  check_commands(dir, db, "secret");
}

TEST_CASE("hpo scheduler and hpo agent --verbose, and hpo submit, do not show trial.env values",
          "[e2e][secrets]") {
  TempDir dir("secrets-cluster");
  const fs::path study_dir = dir.path / "study";
  fs::create_directories(study_dir);
  write_text(study_dir / "check.py", kCheckScript);
  const fs::path study = dir.path / "secret.json";
  write_json(study, secret_study("secret", study_dir));
  const fs::path db = dir.path / "cluster.db";
  const fs::path work = dir.path / "work";
  const int port = free_port();
  auto args = scheduler_args(db, port, dir.path / "none.json");
  args.erase(args.begin() + 5, args.begin() + 7);  // no --study: it comes by SUBMIT
  args.erase(std::find(args.begin(), args.end(), "--exit-when-done"));
  args.push_back("--verbose");
  Process scheduler(args, dir.path / "scheduler.out", dir.path);
  Process agent(agent_args(port, work, 2, "a1"), dir.path / "agent.out", dir.path);
  auto submitted = run_hpo(
      dir, "submit " + study.string() + " --connect tcp://127.0.0.1:" + std::to_string(port));
  INFO(submitted.out << submitted.err << scheduler.output() << agent.output());
  REQUIRE(submitted.code == 0);
  check_clean("hpo submit's output", submitted.out + submitted.err);
  REQUIRE(wait_until([&] { return completed(db, "secret") == 2; }, 60s));
  scheduler.signal(SIGTERM);
  agent.signal(SIGTERM);
  CHECK(scheduler.wait(20s) == 0);
  agent.wait(20s);
  check_clean("hpo scheduler --verbose", scheduler.output());
  check_clean("hpo agent --verbose", agent.output());
  check_database(db, "secret");
  check_files(work);
}
