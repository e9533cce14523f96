// The shipped experiments/cluster/slurm-agents.sbatch, unchanged, on a real one-node Slurm
// (slurm.h) against a running CURVE scheduler: its agents join under the job id, finish a
// study, and `scancel` makes them leave cleanly with their running trials requeued.
// Root only (`ctest -R slurm`); without root or slurm-wlm/munge it reports itself skipped.
#include "tests/cluster/slurm.h"

#include <catch2/catch.hpp>
#include <functional>
#include <nlohmann/json.hpp>

#include "tests/e2e/harness.h"
#include "tests/support/skip.h"

namespace hpo::cluster {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using search::TrialState;
using namespace std::chrono_literals;

// A command trial: reports loss = x, then becomes `sleep seconds` (one process, like a
// training script: a shell waiting for its child may outlive the child's SIGTERM and report
// success), and exits 0.
constexpr const char* kTrialScript = R"SH(echo "HPO_METRIC {\"step\": 1, \"loss\": $1}"
exec sleep "$2"
)SH";

json command_study(const std::string& name, const fs::path& script, int trials, double seconds) {
  return {{"name", name},
          {"objective", {{"metric", "loss"}, {"direction", "minimize"}}},
          {"sampler", {{"type", "random"}}},
          {"seed", 7},
          {"budget", {{"max_trials", trials}, {"max_parallel", 1}}},
          {"trial",
           {{"kind", "command"},
            {"command", "/bin/sh " + script.string() + " {x} " + std::to_string(seconds)}}},
          {"space", {{"x", {{"type", "float"}, {"low", 0}, {"high", 1}}}}}};
}

// `hpo agents --all --format json`, by agent name.
std::map<std::string, json> agents_json(const fs::path& db) {
  auto r = test::run_hpo("agents --all --format json --db " + db.string());
  INFO(r.err);
  REQUIRE(r.code == 0);
  std::map<std::string, json> out;
  for (auto& row : json::parse(r.out)) out[row["agent"].get<std::string>()] = row;
  return out;
}

std::string state_of(const fs::path& db, const std::string& agent) {
  auto store = results::Store::open(db.string(), results::OpenMode::kReadOnly);
  if (!store) return "";
  auto rows = store->agents();
  if (!rows) return "";
  for (const auto& a : *rows) {
    if (a.id == agent) return a.state;
  }
  return "";
}

// The kinds of the events of `study`'s trial `trial_id` (its row id), sorted by name.
std::vector<std::string> trial_events(const fs::path& db, const std::string& study,
                                      std::int64_t trial_id) {
  auto store = results::Store::open(db.string(), results::OpenMode::kReadOnly);
  REQUIRE(store);
  auto row = store->find_study(study);
  REQUIRE(row);
  REQUIRE(*row);
  auto events = store->events((*row)->id);
  REQUIRE(events);
  std::vector<std::string> kinds;
  for (const auto& e : *events) {
    if (e.trial == trial_id) kinds.push_back(e.kind);
  }
  std::sort(kinds.begin(), kinds.end());  // events() order is not part of its contract
  return kinds;
}

TEST_CASE(
    "the shipped slurm-agents.sbatch on a one-node slurm: agents join as <node>-<job id>, "
    "finish a study, and scancel makes them leave with their trials requeued",
    "[cluster][slurm]") {
  if (auto why = OneNodeSlurm::missing_prerequisite(); !why.empty()) HPO_SKIP(why);
  test::TempDir dir("slurm");
  OneNodeSlurm slurm(dir.path);
  if (auto why = slurm.start(30s); !why.empty()) {
    HPO_SKIP("the one-node Slurm did not start: " << why);
  }
  auto keys = e2e::make_keys(dir.path, {"agent"}, {"alice"});
  const fs::path db = dir.path / "hpo.db";
  const fs::path script = dir.path / "trial.sh";
  test::write_text(script, kTrialScript);
  e2e::write_json(dir.path / "quick.json", command_study("quick", script, 4, 0.1));
  e2e::write_json(dir.path / "long.json", command_study("long", script, 2, 120));
  const int port = test::free_port();
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  test::Process scheduler(e2e::plus_args({"scheduler", "--db", db.string(), "--bind", endpoint,
                                          "--study", (dir.path / "quick.json").string(),
                                          "--heartbeat-ms", "200", "--liveness", "5", "--verbose"},
                                         keys.scheduler_args()),
                          dir.path / "scheduler.log");

  // The template as shipped; the command line overrides what a one-node cluster without
  // GPUs cannot give (4 nodes, 4 GPUs and 16 CPUs each, 4 hours).
  const std::string env = "HPO='" + test::hpo_binary() + "' HPO_SCHEDULER=" + endpoint +
                          " HPO_KEY='" + (keys.dir / "agents/agent.secret").string() +
                          "' HPO_SCHEDULER_KEY='" + (keys.dir / "scheduler.key").string() +
                          "' HPO_WORKDIR='" + dir / "work" + "'";
  auto submitted = slurm.client(
      env + " sbatch --parsable --nodes=1 --gpus-per-node=0 --cpus-per-task=1 --time=5 " +
      "--output='" + dir / "agents-%j.out" + "' '" + HPO_SOURCE_DIR +
      "/experiments/cluster/slurm-agents.sbatch'");
  INFO(submitted.out);
  REQUIRE(submitted.code == 0);
  const std::string job = submitted.out.substr(0, submitted.out.find_first_of(";\n"));
  const std::string agent = slurm.node() + "-" + job;
  auto logs = [&] {
    return "--- scheduler.log\n" + scheduler.log() + "--- agents-" + job + ".out\n" +
           test::read_text(dir.path / ("agents-" + job + ".out")) + slurm.log_tails();
  };
  // Waits for `done`; fails the test with every log when it does not come in time.
  auto require_within = [&](const char* what, const std::function<bool()>& done,
                            std::chrono::milliseconds limit) {
    if (!test::wait_until(done, limit)) FAIL(what << "\n" << logs());
  };

  // The study runs on the job's agent, every trial once.
  require_within(
      "the quick study completes", [&] { return e2e::completed(db, "quick") == 4; }, 60s);
  auto trials = e2e::stored_trials(db, "quick");
  REQUIRE(trials.size() == 4);
  for (const auto& t : trials) {
    CHECK(t.state == TrialState::kCompleted);
    CHECK(t.agent == agent);
    CHECK(t.attempt == 1);
  }
  auto rows = agents_json(db);
  REQUIRE(rows.count(agent) == 1);
  CHECK(rows[agent]["state"] == "live");
  CHECK(slurm.job_state(job) == "RUNNING");

  // A study of long trials, submitted to the running scheduler; one trial is running.
  const auto& alice = keys.client_args("submitters/alice");
  auto added = test::run_hpo("submit " + (dir / "long.json") + " --connect " + endpoint + " " +
                             alice[0] + " " + alice[1] + " " + alice[2] + " " + alice[3]);
  INFO(added.out << added.err);
  REQUIRE(added.code == 0);
  require_within(
      "a long trial runs",
      [&] { return e2e::count_state(e2e::trials_of(db, "long"), TrialState::kRunning) == 1; }, 20s);

  // scancel: Slurm sends SIGTERM to every process of the job, the trial's too. The agent
  // says BYE (left, not lost) and the trial goes back to the queue, not charged.
  auto cancelled = slurm.client("scancel " + job);
  INFO(cancelled.out);
  REQUIRE(cancelled.code == 0);
  require_within(
      "the job is cancelled", [&] { return slurm.job_state(job) == "CANCELLED"; }, 40s);
  require_within(
      "the agent leaves", [&] { return state_of(db, agent) != "live"; }, 20s);
  INFO(logs());
  CHECK(agents_json(db)[agent]["state"] == "left");
  auto long_trials = e2e::stored_trials(db, "long");
  REQUIRE(long_trials.size() == 1);
  const auto& t = long_trials.front();
  CHECK(t.state == TrialState::kQueued);
  CHECK(t.attempt == 1);
  CHECK(t.interruptions == 1);
  CHECK(t.failures == 0);
  CHECK(trial_events(db, "long", t.id) ==
        std::vector<std::string>{"assigned", "interrupted", "requeued"});
  CHECK(e2e::count_state(e2e::stored_trials(db, "quick"), TrialState::kCompleted) == 4);
  CHECK_FALSE(scheduler.wait(0ms).has_value());  // still serving
}

}  // namespace
}  // namespace hpo::cluster
