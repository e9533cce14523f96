// End to end: a real scheduler and real agents on 127.0.0.1 running command
// trials (Python scripts): success, crash, hang, malformed metric lines, STOP.
#include <fstream>

#include "tests/e2e/harness.h"

using namespace hpo::e2e;
using hpo::search::TrialState;
using nlohmann::json;

namespace {

// One script for every behaviour the tests need, chosen by --mode.
const char* kTrialScript = R"PY(
import argparse, json, os, sys, time
p = argparse.ArgumentParser()
p.add_argument("--mode", default="ok")
p.add_argument("--x", type=float, default=1.0)
a = p.parse_args()
config = json.load(open(os.environ["HPO_TRIAL_CONFIG"]))
assert config["mode"] == a.mode, config
if a.mode == "ok":
    for step in range(1, 4):
        print("HPO_METRIC " + json.dumps({"step": step, "loss": a.x * a.x + 1.0 / step}), flush=True)
elif a.mode == "fd":
    with os.fdopen(int(os.environ["HPO_METRICS_FD"]), "w") as out:
        out.write(json.dumps({"step": 1, "loss": a.x * a.x}) + "\n")
elif a.mode == "crash":
    print("loading data", flush=True)
    raise RuntimeError("CUDA out of memory (simulated)")
elif a.mode == "hang":
    print("HPO_METRIC " + json.dumps({"step": 1, "loss": 5.0}), flush=True)
    time.sleep(60)
elif a.mode == "malformed":
    print("HPO_METRIC {\"step\": 1, \"loss\": ", flush=True)
    print("HPO_METRIC [1, 2, 3]", flush=True)
    print("HPO_METRIC " + json.dumps({"step": 2, "loss": 0.25}), flush=True)
elif a.mode == "slow":
    for step in range(1, 301):
        print("HPO_METRIC " + json.dumps({"step": step, "loss": 100.0 + a.x}), flush=True)
        time.sleep(0.05)
)PY";

json study(const std::string& name, json space, json trial_extra, json budget,
           json pruner = {{"type", "none"}}, json sampler = {{"type", "grid"}}) {
  json trial = {{"kind", "command"},
                {"command", "/usr/bin/python3 trial.py --mode {mode} --x {x}"},
                {"timeout_seconds", 0}};
  trial.update(trial_extra);
  return {{"name", name},       {"objective", {{"metric", "loss"}, {"direction", "minimize"}}},
          {"sampler", sampler}, {"pruner", pruner},
          {"seed", 3},          {"budget", budget},
          {"trial", trial},     {"space", space}};
}

fs::path write_study(const TempDir& dir, json s) {
  if (!s["trial"].contains("workdir")) s["trial"]["workdir"] = dir.path.string();
  write_text(dir.path / "trial.py", kTrialScript);
  fs::path file = dir.path / (s["name"].get<std::string>() + ".json");
  write_text(file, s.dump(2));
  return file;
}

const hpo::results::TrialRow* find_by_mode(const std::vector<hpo::results::TrialRow>& trials,
                                           const std::string& mode) {
  for (const auto& t : trials) {
    if (t.config.value("mode", "") == mode) return &t;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("a command-trial search with a Python script completes its budget", "[e2e][agent]") {
  TempDir dir("cmd-search");
  json space = {{"mode", {{"type", "choice"}, {"values", {"ok", "fd"}}}},
                {"x", {{"type", "float"}, {"low", -2.0}, {"high", 2.0}}}};
  // "workdir": "." is the study file's directory, wherever the scheduler and agents run.
  auto file = write_study(
      dir, study("cmd-search", space, {{"workdir", "."}}, {{"max_trials", 6}, {"max_parallel", 2}},
                 {{"type", "none"}}, {{"type", "random"}}));
  int port = free_port();
  fs::path db = dir.path / "hpo.db";
  Process scheduler(scheduler_args(db, port, file), dir.path / "scheduler.out");
  Process agent(agent_args(port, dir.path / "work", 2, "a1"), dir.path / "agent.out");
  auto code = scheduler.wait(60s);
  INFO(scheduler.output() << agent.output());
  REQUIRE(code == 0);
  auto trials = trials_of(db, "cmd-search");
  REQUIRE(trials.size() == 6);
  CHECK(count_state(trials, TrialState::kCompleted) == 6);
  for (const auto& t : trials) {
    double x = t.config["x"].get<double>();
    bool fd = t.config["mode"] == "fd";
    REQUIRE(t.value.has_value());
    // The objective is the last "loss" the trial reported (marker lines or HPO_METRICS_FD).
    CHECK(*t.value == Approx(fd ? x * x : x * x + 1.0 / 3).margin(1e-9));
    auto metrics = metrics_of(db, t.id);
    CHECK(metrics.size() >= (fd ? 1u : 3u));
    CHECK(fs::exists(dir.path / "work" / "cmd-search" /
                     ("trial-" + std::to_string(t.number) + "-attempt-1") / "log.txt"));
  }
}

TEST_CASE("crashing, hanging and malformed trials end as failed, timed out and counted",
          "[e2e][agent]") {
  TempDir dir("cmd-faults");
  json space = {{"mode", {{"type", "choice"}, {"values", {"crash", "hang", "malformed"}}}},
                {"x", 1.0}};
  auto file = write_study(dir, study("cmd-faults", space, {{"timeout_seconds", 1.5}},
                                     {{"max_trials", 3}, {"max_parallel", 3}, {"max_retries", 0}}));
  int port = free_port();
  fs::path db = dir.path / "hpo.db";
  Process scheduler(scheduler_args(db, port, file), dir.path / "scheduler.out");
  Process agent(agent_args(port, dir.path / "work", 3, "a1"), dir.path / "agent.out");
  auto code = scheduler.wait(60s);
  INFO(scheduler.output() << agent.output());
  REQUIRE(code == 0);
  auto trials = trials_of(db, "cmd-faults");
  REQUIRE(trials.size() == 3);

  const auto* crash = find_by_mode(trials, "crash");
  REQUIRE(crash);
  CHECK(crash->state == TrialState::kFailed);
  CHECK(crash->error.find("exited with status 1") != std::string::npos);
  CHECK(crash->error.find("RuntimeError: CUDA out of memory (simulated)") != std::string::npos);
  CHECK(crash->log_tail.find("Traceback") != std::string::npos);
  CHECK(crash->log_tail.find("loading data") != std::string::npos);

  const auto* hang = find_by_mode(trials, "hang");
  REQUIRE(hang);
  CHECK(hang->state == TrialState::kFailed);
  CHECK(hang->error.find("timed out after 1.5 s") != std::string::npos);
  REQUIRE(hang->started);
  REQUIRE(hang->finished);
  CHECK(*hang->finished - *hang->started < 1.5 + 0.5 + 1.5);  // timeout + kill grace + slack

  const auto* malformed = find_by_mode(trials, "malformed");
  REQUIRE(malformed);
  CHECK(malformed->state == TrialState::kCompleted);
  REQUIRE(malformed->value);
  CHECK(*malformed->value == 0.25);
  std::string log =
      read_text(dir.path / "work" / "cmd-faults" /
                ("trial-" + std::to_string(malformed->number) + "-attempt-1") / "log.txt");
  CHECK(log.find("warning: malformed HPO_METRIC line ignored (not valid JSON)") !=
        std::string::npos);
  CHECK(log.find("warning: malformed HPO_METRIC line ignored (not a JSON object)") !=
        std::string::npos);
}

TEST_CASE("the pruner's STOP reaches a running trial within a second", "[e2e][agent]") {
  TempDir dir("cmd-stop");
  // Grid order: "ok" completes first; "slow" reports a worse loss every 50 ms for 15 s.
  json space = {{"mode", {{"type", "choice"}, {"values", {"ok", "slow"}}}}, {"x", 1.0}};
  auto file = write_study(
      dir, study("cmd-stop", space, json::object(), {{"max_trials", 2}, {"max_parallel", 1}},
                 {{"type", "median"}, {"warmup_steps", 1}, {"min_trials", 1}}));
  int port = free_port();
  fs::path db = dir.path / "hpo.db";
  Process scheduler(scheduler_args(db, port, file), dir.path / "scheduler.out");
  Process agent(agent_args(port, dir.path / "work", 1, "a1"), dir.path / "agent.out");
  auto code = scheduler.wait(30s);
  INFO(scheduler.output() << agent.output());
  REQUIRE(code == 0);
  auto trials = trials_of(db, "cmd-stop");
  const auto* slow = find_by_mode(trials, "slow");
  REQUIRE(slow);
  CHECK(slow->state == TrialState::kPruned);
  // warmup_steps 1: the median rule judges the report of step 2 first, and the
  // scheduler answers it with STOP at once. A metric row holds the time the
  // scheduler took it in, on the clock the trial's end is recorded with. Step 2's
  // row may be rewritten by the final metrics (stored at the last step), so the
  // span is taken from step 1, one 50 ms sleep of the script earlier.
  std::optional<double> step1;
  std::int64_t last_step = 0;
  for (const auto& m : metrics_of(db, slow->id)) {
    last_step = std::max(last_step, m.step);
    if (m.step == 1 && m.name == "loss") step1 = m.time;
  }
  REQUIRE(step1);
  REQUIRE(slow->finished);
  const double span = *slow->finished - *step1;
  INFO("from step 1 to the end: " << span << " s; last step " << last_step);
  CHECK(span < 0.05 + 1.0);
  CHECK(last_step <= 2 + 20);  // at most a second's worth of 50 ms steps after it
}

TEST_CASE("a trial whose agent is SIGKILLed dies with it and completes on another agent",
          "[e2e][agent]") {
  TempDir dir("cmd-agent-kill");
  write_text(dir.path / "trial.py", kTrialScript);
  // Attempt 1 writes its pid and sleeps; attempt 2 finishes at once.
  write_text(dir.path / "kill.py", R"PY(
import json, os, time
if os.environ["HPO_TRIAL_ATTEMPT"] == "1":
    open("pid-1.tmp", "w").write(str(os.getpid()))
    os.rename("pid-1.tmp", "pid-1")
    time.sleep(60)
print("HPO_METRIC " + json.dumps({"step": 1, "loss": 0.5}), flush=True)
)PY");
  json s =
      study("cmd-agent-kill", {{"mode", "ok"}, {"x", 1.0}},
            {{"command", "/usr/bin/python3 kill.py"}}, {{"max_trials", 1}, {"max_parallel", 1}});
  s["trial"]["workdir"] = dir.path.string();
  fs::path file = dir.path / "study.json";
  write_text(file, s.dump());
  int port = free_port();
  fs::path db = dir.path / "hpo.db";
  Process scheduler(scheduler_args(db, port, file), dir.path / "scheduler.out");
  auto first = std::make_unique<Process>(agent_args(port, dir.path / "work1", 1, "first"),
                                         dir.path / "first.out");
  REQUIRE(wait_until([&] { return fs::exists(dir.path / "pid-1"); }, 20s));
  pid_t trial_pid = std::stoi(read_text(dir.path / "pid-1"));
  first->signal(SIGKILL);
  first->wait(5s);
  // PR_SET_PDEATHSIG: the trial goes with its agent (it may linger as a zombie
  // until init reaps it; it no longer runs).
  auto running = [&] {
    std::ifstream stat("/proc/" + std::to_string(trial_pid) + "/stat");
    std::string pid, comm, state;
    return static_cast<bool>(stat >> pid >> comm >> state) && state != "Z";
  };
  CHECK(wait_until([&] { return !running(); }, 2s));
  Process second(agent_args(port, dir.path / "work2", 1, "second"), dir.path / "second.out");
  auto code = scheduler.wait(30s);
  INFO(scheduler.output() << first->output() << second.output());
  REQUIRE(code == 0);
  auto trials = trials_of(db, "cmd-agent-kill");
  REQUIRE(trials.size() == 1);
  CHECK(trials[0].state == TrialState::kCompleted);
  CHECK(trials[0].attempt == 2);
  CHECK(trials[0].agent == "second");
  CHECK(trials[0].value == 0.5);
}

TEST_CASE("hpo run stopped with SIGINT resumes to the same budget", "[e2e][agent][run]") {
  TempDir dir("run-resume");
  write_text(dir.path / "trial.py", R"PY(
import json, time
time.sleep(0.4)
print("HPO_METRIC " + json.dumps({"step": 1, "loss": 1.0}), flush=True)
)PY");
  json s =
      study("run-resume", {{"mode", "ok"}, {"x", {{"type", "float"}, {"low", 0.0}, {"high", 1.0}}}},
            {{"command", "/usr/bin/python3 trial.py"}}, {{"max_trials", 8}, {"max_parallel", 2}},
            {{"type", "none"}}, {{"type", "random"}});
  s["trial"]["workdir"] = dir.path.string();
  fs::path file = dir.path / "study.json";
  write_text(file, s.dump());
  fs::path db = dir.path / "hpo.db";
  std::vector<std::string> args = {"run",
                                   file.string(),
                                   "--db",
                                   db.string(),
                                   "--agents",
                                   "2",
                                   "--heartbeat-ms",
                                   "200",
                                   "--shutdown-grace-seconds",
                                   "2"};
  {
    Process run(args, dir.path / "run1.out", dir.path);
    REQUIRE(wait_until(
        [&] { return count_state(trials_of(db, "run-resume"), TrialState::kCompleted) >= 2; },
        30s));
    run.signal(SIGINT);
    auto code = run.wait(15s);
    INFO(run.output());
    REQUIRE(code.has_value());
    CHECK(*code == 0);
  }
  auto after_stop = trials_of(db, "run-resume");
  CHECK(count_state(after_stop, TrialState::kCompleted) < 8);
  CHECK(count_state(after_stop, TrialState::kRunning) == 0);
  Process again(args, dir.path / "run2.out", dir.path);
  auto code = again.wait(60s);
  INFO(again.output());
  REQUIRE(code == 0);
  auto trials = trials_of(db, "run-resume");
  CHECK(count_state(trials, TrialState::kCompleted) == 8);
  CHECK(again.output().find("run-resume") != std::string::npos);  // the leaderboard
}

TEST_CASE("hpo run from another directory hands a command trial absolute paths",
          "[e2e][agent][run]") {
  // The study and its script live in study/; hpo run starts in elsewhere/, so its
  // default --workdir (hpo-work) and --db (hpo.db) are relative to elsewhere/ while
  // the command runs in study/ (its "workdir": "."). A relative path handed to the
  // trial would point into study/ and not be found.
  TempDir dir("run-elsewhere");
  const fs::path study_dir = dir.path / "study";
  const fs::path elsewhere = dir.path / "elsewhere";
  fs::create_directories(study_dir);
  fs::create_directories(elsewhere);
  write_text(study_dir / "paths.py", R"PY(
import json, os, sys
for name in ("HPO_TRIAL_CONFIG", "HPO_TRIAL_DIR"):
    if not os.path.isabs(os.environ[name]):
        sys.exit("%s is relative: %s" % (name, os.environ[name]))
if sys.argv[1] != os.environ["HPO_TRIAL_CONFIG"] or sys.argv[2] != os.environ["HPO_TRIAL_DIR"]:
    sys.exit("placeholders differ from the environment: %s" % sys.argv[1:])
config = json.load(open(os.environ["HPO_TRIAL_CONFIG"]))
print("HPO_METRIC " + json.dumps({"step": 1, "loss": (config["x"] - 1.0) ** 2}), flush=True)
)PY");
  json s = study("run-elsewhere", {{"x", {{"type", "float"}, {"low", -2.0}, {"high", 2.0}}}},
                 {{"command", "/usr/bin/python3 paths.py {hpo.config_file} {hpo.trial_dir}"},
                  {"workdir", "."}},
                 {{"max_trials", 4}, {"max_parallel", 2}, {"max_retries", 0}}, {{"type", "none"}},
                 {{"type", "random"}});
  write_text(study_dir / "study.json", s.dump(2));
  Process run(
      {"run", (study_dir / "study.json").string(), "--agents", "2", "--heartbeat-ms", "200"},
      dir.path / "run.out", elsewhere);
  auto code = run.wait(60s);
  INFO(run.output());
  REQUIRE(code == 0);
  auto trials = trials_of(elsewhere / "hpo.db", "run-elsewhere");
  REQUIRE(trials.size() == 4);
  for (const auto& t : trials) {
    INFO("trial " << t.number << ": " << t.error);
    CHECK(t.state == TrialState::kCompleted);
    const double x = t.config["x"].get<double>();
    REQUIRE(t.value.has_value());
    CHECK(*t.value == Approx((x - 1.0) * (x - 1.0)).margin(1e-12));
    // The trial directory is where the agent's --workdir says, under elsewhere/.
    CHECK(fs::exists(elsewhere / "hpo-work" / "run-elsewhere" /
                     ("trial-" + std::to_string(t.number) + "-attempt-1") / "config.json"));
  }
}

TEST_CASE(
    "an agent told to stop lets trials end within its grace, then interrupts them and says BYE",
    "[e2e][agent]") {
  TempDir dir("agent-sigterm");
  write_text(dir.path / "trial.py", R"PY(
import json, os, time
open("started-%s" % os.environ["HPO_TRIAL_ATTEMPT"], "w").close()
time.sleep(60 if os.environ["HPO_TRIAL_ATTEMPT"] == "1" else 0)
print("HPO_METRIC " + json.dumps({"step": 1, "loss": 2.0}), flush=True)
)PY");
  json s =
      study("agent-sigterm", {{"mode", "ok"}, {"x", 1.0}},
            {{"command", "/usr/bin/python3 trial.py"}}, {{"max_trials", 1}, {"max_parallel", 1}});
  s["trial"]["workdir"] = dir.path.string();
  fs::path file = dir.path / "study.json";
  write_text(file, s.dump());
  int port = free_port();
  fs::path db = dir.path / "hpo.db";
  Process scheduler(scheduler_args(db, port, file), dir.path / "scheduler.out");
  Process first(agent_args(port, dir.path / "work", 1, "first"), dir.path / "first.out");
  REQUIRE(wait_until([&] { return fs::exists(dir.path / "started-1"); }, 20s));
  auto begin = std::chrono::steady_clock::now();
  first.signal(SIGTERM);  // shutdown grace 1 s, then SIGTERM to the trial (kill grace 0.5 s)
  auto code = first.wait(10s);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  INFO(first.output());
  REQUIRE(code == 0);
  CHECK(took >= 1.0);
  CHECK(took < 1.0 + 0.5 + 1.5);
  // The scheduler heard INTERRUPTED (not a lost agent) and requeued the trial.
  CHECK(scheduler.output().find("lost") == std::string::npos);
  Process second(agent_args(port, dir.path / "work", 1, "second"), dir.path / "second.out");
  REQUIRE(scheduler.wait(30s) == 0);
  auto trials = trials_of(db, "agent-sigterm");
  REQUIRE(trials.size() == 1);
  CHECK(trials[0].state == TrialState::kCompleted);
  CHECK(trials[0].attempt == 2);
}
