// End to end, the real hpo binary: how a trial's life goes on across a scheduler's SIGTERM
// (handed over, not thrown away) and across an agent that cannot start trials (drained, the
// trials run elsewhere) (issue 11).
#include <signal.h>

#include <fstream>

#include "tests/e2e/harness.h"

using namespace hpo::e2e;
using hpo::search::TrialState;
using nlohmann::json;

namespace {

json command_study(const std::string& name, const fs::path& dir, const std::string& command,
                   int max_trials, int max_parallel) {
  return {{"name", name},
          {"objective", {{"metric", "loss"}, {"direction", "minimize"}}},
          {"sampler", {{"type", "random"}}},
          {"seed", 3},
          {"budget", {{"max_trials", max_trials}, {"max_parallel", max_parallel}}},
          {"trial", {{"kind", "command"}, {"command", command}, {"workdir", dir.string()}}},
          {"space", {{"x", {{"type", "float"}, {"low", 0.0}, {"high", 1.0}}}}}};
}

std::vector<hpo::results::EventRow> trial_events(const fs::path& db, std::int64_t trial,
                                                 const std::string& kind) {
  auto store = hpo::results::Store::open(db.string(), hpo::results::OpenMode::kReadOnly);
  REQUIRE(store);
  auto all = store->events(std::nullopt);
  REQUIRE(all);
  std::vector<hpo::results::EventRow> out;
  for (auto& e : *all) {
    if (e.trial == trial && e.kind == kind) out.push_back(e);
  }
  return out;
}

}  // namespace

TEST_CASE(
    "a trial running when the scheduler gets SIGTERM completes on its first attempt after "
    "a restart",
    "[e2e][agent][lifecycle]") {
  TempDir dir("handover");
  // The trial runs until the test says go (at most 60 s), so it is running across the restart.
  write_text(dir.path / "trial.py", R"PY(
import json, os, time
open("started-%s" % os.environ["HPO_TRIAL_ATTEMPT"], "w").close()
for _ in range(600):
    if os.path.exists("go"):
        break
    time.sleep(0.1)
print("HPO_METRIC " + json.dumps({"step": 1, "loss": 0.25}), flush=True)
)PY");
  fs::path file = dir.path / "study.json";
  write_json(file, command_study("handover", dir.path, "/usr/bin/python3 trial.py", 1, 1));
  int port = free_port();
  fs::path db = dir.path / "hpo.db";
  auto args = scheduler_args(db, port, file);
  args.insert(args.end(), {"--shutdown-grace-seconds", "0.2", "--recovery-seconds", "15"});
  Process agent(agent_args(port, dir.path / "work", 1, "a"), dir.path / "agent.out");
  {
    Process scheduler(args, dir.path / "scheduler1.out");
    REQUIRE(wait_until([&] { return fs::exists(dir.path / "started-1"); }, 20s));
    scheduler.signal(SIGTERM);
    auto code = scheduler.wait(10s);
    INFO(scheduler.output());
    REQUIRE(code == 0);
    CHECK(scheduler.output().find("for the next scheduler to re-adopt") != std::string::npos);
  }
  auto handed = stored_trials(db, "handover");
  REQUIRE(handed.size() == 1);
  CHECK(handed[0].state == TrialState::kRunning);  // handed over, not INTERRUPTED

  Process scheduler(args, dir.path / "scheduler2.out");
  REQUIRE(wait_until([&] { return scheduler.output().find("re-adopted 1") != std::string::npos; },
                     20s));
  write_text(dir.path / "go", "");
  auto code = scheduler.wait(30s);
  INFO(scheduler.output() << agent.output());
  REQUIRE(code == 0);
  auto trials = stored_trials(db, "handover");
  REQUIRE(trials.size() == 1);
  CHECK(trials[0].state == TrialState::kCompleted);
  CHECK(trials[0].attempt == 1);
  CHECK(trials[0].value == 0.25);
  CHECK(trials[0].interruptions == 0);
  CHECK(trial_events(db, trials[0].id, "requeued").empty());
  CHECK_FALSE(fs::exists(dir.path / "started-2"));
}

TEST_CASE("an agent that cannot start trials is drained and the study completes on a healthy one",
          "[e2e][agent][lifecycle]") {
  TempDir dir("start-failed");
  write_text(dir.path / "trial.py", R"PY(
import json, os
config = json.load(open(os.environ["HPO_TRIAL_CONFIG"]))
print("HPO_METRIC " + json.dumps({"step": 1, "loss": config["x"]}), flush=True)
)PY");
  fs::path file = dir.path / "study.json";
  write_json(file, command_study("start-failed", dir.path, "/usr/bin/python3 trial.py", 4, 2));
  // Its --workdir is a file: no trial directory can be made under it.
  write_text(dir.path / "not-a-dir", "");
  int port = free_port();
  fs::path db = dir.path / "hpo.db";
  Process scheduler(scheduler_args(db, port, file), dir.path / "scheduler.out");
  Process bad(agent_args(port, dir.path / "not-a-dir", 2, "bad"), dir.path / "bad.out");
  REQUIRE(wait_until(
      [&] { return scheduler.output().find("agent bad drained") != std::string::npos; }, 20s));
  CHECK(count_state(trials_of(db, "start-failed"), TrialState::kFailed) == 0);
  Process good(agent_args(port, dir.path / "work", 2, "good"), dir.path / "good.out");
  auto code = scheduler.wait(30s);
  INFO(scheduler.output() << bad.output() << good.output());
  REQUIRE(code == 0);
  CHECK(scheduler.output().find("agent bad drained: 3 trials failed to start: ") !=
        std::string::npos);
  CHECK(scheduler.output().find("Not a directory") != std::string::npos);
  auto trials = stored_trials(db, "start-failed");
  REQUIRE(trials.size() == 4);
  for (const auto& t : trials) {
    INFO("trial " << t.number << ": " << t.error);
    CHECK(t.state == TrialState::kCompleted);
    CHECK(t.agent == "good");
    CHECK(t.failures == 0);
  }
  auto store = hpo::results::Store::open(db.string(), hpo::results::OpenMode::kReadOnly);
  REQUIRE(store);
  auto agents = store->agents();
  REQUIRE(agents);
  for (const auto& a : *agents) {
    CHECK(a.drained.empty() == (a.id == "good"));
  }
}

TEST_CASE(
    "when SIGTERM reaches an agent and its trial together (a batch system ending the job), "
    "the trial is requeued, not charged, and the agent leaves",
    "[e2e][agent][lifecycle]") {
  TempDir dir("job-ends");
  // Slurm's scancel signals every process of the job: the trial dies of the same SIGTERM
  // that stops its agent, before the agent's shutdown grace is over.
  write_text(dir.path / "trial.sh",
             "echo $$ > trial.pid\necho 'HPO_METRIC {\"step\": 1, \"loss\": 1}'\nexec sleep 60\n");
  fs::path file = dir.path / "study.json";
  write_json(file, command_study("job", dir.path, "/bin/sh trial.sh", 2, 1));
  const int port = free_port();
  const fs::path db = dir.path / "hpo.db";
  Process scheduler(scheduler_args(db, port, file), dir.path / "scheduler.out");
  Process agent(agent_args(port, dir.path / "work", 1, "a"), dir.path / "agent.out");
  REQUIRE(wait_until(
      [&] {
        return fs::exists(dir.path / "trial.pid") &&
               count_state(trials_of(db, "job"), TrialState::kRunning) == 1;
      },
      20s));
  const pid_t trial_pid = std::stoi(read_text(dir.path / "trial.pid"));
  agent.signal(SIGTERM);
  ::kill(trial_pid, SIGTERM);
  auto code = agent.wait(10s);
  INFO(agent.output() << scheduler.output());
  REQUIRE(code == 0);
  REQUIRE(
      wait_until([&] { return count_state(trials_of(db, "job"), TrialState::kQueued) == 1; }, 10s));
  auto trials = stored_trials(db, "job");
  REQUIRE(trials.size() == 1);
  CHECK(trials[0].attempt == 1);
  CHECK(trials[0].interruptions == 1);
  CHECK(trials[0].failures == 0);
  CHECK(trial_events(db, trials[0].id, "interrupted").size() == 1);
  CHECK(trial_events(db, trials[0].id, "failed").empty());
  CHECK_THAT(scheduler.output(), Catch::Contains("agent a left"));
}
