// The chaos test (issue 11): a command-trial search on the real `hpo` binary
// (scheduler, 3 agents x 2 slots, a SQLite file) while a seeded driver
// SIGKILLs the scheduler and the agents and restarts them, with scheduler
// outages longer than the liveness window and agents killed while their
// trials run. Afterwards the exact budget is COMPLETED once per trial with the
// value of its own config, the file passes integrity_check, no trial process
// is left, and after the last restart the study runs at full parallelism.
//
// Each trial is a Python script whose value is x*x + y of its config, checked
// against the config file it is given, reported over 6 steps of 0.2 s so that
// kills land mid-trial. Its command line carries the script's path, which is
// how the test finds trial processes in /proc (a SIGKILLed agent's children
// are nobody's to wait for).
//
// HPO_CHAOS_SEED picks the schedule (default 1; printed with the summary, so
// a failing run can be repeated); HPO_CHAOS_LOGS=DIR copies the logs and the
// database there. Run it alone with `ctest -R chaos`.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "tests/e2e/chaos_driver.h"
#include "tests/e2e/harness.h"

using namespace hpo::e2e;
using hpo::search::TrialState;
using nlohmann::json;
namespace chaos = hpo::e2e::chaos;

namespace {

using chaos::kParallel;
constexpr int kBudget = 60;
constexpr int kSteps = 6;
constexpr double kStepSeconds = 0.2;
// Trials still to run after the last kill: enough for every slot, twice over.
constexpr int kReserve = 3 * kParallel;

const char* kTrialScript = R"PY(
import json, os, sys, time
# argv[5:7], the trial's number and attempt, are for the test's look at /proc.
x, y, steps, pause = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
config = json.load(open(os.environ["HPO_TRIAL_CONFIG"]))
if config["x"] != x or config["y"] != y:
    sys.exit("config %r is not the command line's x=%d y=%d" % (config, x, y))
for step in range(1, steps + 1):
    time.sleep(pause)
    print("HPO_METRIC " + json.dumps({"step": step, "value": x * x + y + steps - step}), flush=True)
)PY";

// The value a trial reports at `step` (the objective is the last one, x*x + y).
double expected(const json& config, int step) {
  const auto x = config.at("x").get<std::int64_t>();
  const auto y = config.at("y").get<std::int64_t>();
  return static_cast<double>(x * x + y + kSteps - step);
}

std::uint32_t seed_from_env() {
  const char* s = std::getenv("HPO_CHAOS_SEED");
  return s && *s ? static_cast<std::uint32_t>(std::strtoul(s, nullptr, 10)) : 1u;
}

void keep_logs(const TempDir& dir) {
  const char* to = std::getenv("HPO_CHAOS_LOGS");
  if (!to || !*to) return;
  std::error_code ec;
  fs::create_directories(to, ec);
  for (const auto& entry : fs::directory_iterator(dir.path, ec)) {
    const auto ext = entry.path().extension();
    if (ext == ".log" || entry.path().filename().string().rfind("chaos.db", 0) == 0) {
      fs::copy_file(entry.path(), fs::path(to) / entry.path().filename(),
                    fs::copy_options::overwrite_existing, ec);
    }
  }
}

}  // namespace

TEST_CASE(
    "chaos: SIGKILLed scheduler and agents, outages past the liveness window: the budget "
    "completes once per trial with its own value, no trial process or slot is left",
    "[e2e][chaos]") {
  const auto started = std::chrono::steady_clock::now();
  const std::uint32_t seed = seed_from_env();
  TempDir dir("chaos");
  write_text(dir.path / "chaos_trial.py", kTrialScript);
  json study = {
      {"name", "chaos"},
      {"objective", {{"metric", "value"}, {"direction", "minimize"}}},
      {"sampler", {{"type", "random"}}},
      {"seed", seed},
      // Interruptions are not failures; any failed attempt is a bug here.
      {"budget", {{"max_trials", kBudget}, {"max_parallel", kParallel}, {"max_retries", 0}}},
      {"trial",
       {{"kind", "command"},
        {"command", "/usr/bin/python3 " + (dir / "chaos_trial.py") + " {x} {y} " +
                        std::to_string(kSteps) + " " + std::to_string(kStepSeconds) +
                        " {hpo.trial} {hpo.attempt}"},
        {"workdir", "."},
        {"timeout_seconds", 60}}},
      {"space",
       {{"x", {{"type", "int"}, {"low", -30}, {"high", 30}}},
        {"y", {{"type", "int"}, {"low", 0}, {"high", 999}}}}}};
  write_json(dir.path / "chaos.json", study);

  const auto events = chaos::schedule(seed);
  chaos::Cluster cluster(dir, dir.path / "chaos.json", "chaos", dir / "chaos_trial.py");
  // Event k waits for its share of the budget, so kills spread over the whole
  // search on a fast machine and a slow one alike.
  for (std::size_t k = 0; k < events.size() && !cluster.finished(); ++k) {
    const auto due = static_cast<std::int64_t>((k + 1) * (kBudget - kReserve) / events.size());
    if (!cluster.run_until_completed(due, 60)) {
      cluster.summary().notes.push_back("event " + std::to_string(k) + " never came due");
      break;
    }
    cluster.play(events[k]);
  }
  cluster.all_restarted();
  cluster.finish(60);
  keep_logs(dir);
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  const chaos::Summary& s = cluster.summary();
  const auto tally = chaos::tally_events(cluster.db(), "chaos");
  std::int64_t retried_attempts = 0;
  const auto trials = trials_of(cluster.db(), "chaos");
  for (const auto& t : trials) retried_attempts += std::max<std::int64_t>(0, t.attempt - 1);
  std::printf(
      "chaos seed %u: %.1f s; kills: %d scheduler, %d agent; restarts %d; trial processes held "
      "by killed agents %zu, running at scheduler kills %zu; interrupted %lld (scheduler "
      "restart %lld, agent lost %lld, agent reconnected %lld, not re-announced %lld, other %lld); "
      "requeued %lld (after an agent %lld, recovery window closed %lld, retry %lld, other %lld); "
      "re-adopted %lld; attempts beyond the first %lld; peak parallelism %d, after the last "
      "restart %d of %d\n",
      seed, wall, s.scheduler_kills, s.agent_kills, s.restarts, s.held_by_killed_agents,
      s.running_at_scheduler_kills, static_cast<long long>(tally.interrupted),
      static_cast<long long>(tally.interrupted_by_restart),
      static_cast<long long>(tally.interrupted_agent_lost),
      static_cast<long long>(tally.interrupted_reconnected),
      static_cast<long long>(tally.interrupted_not_announced),
      static_cast<long long>(tally.interrupted_other), static_cast<long long>(tally.requeued),
      static_cast<long long>(tally.requeued_after_agent),
      static_cast<long long>(tally.requeued_after_restart),
      static_cast<long long>(tally.requeued_after_retry),
      static_cast<long long>(tally.requeued_other), static_cast<long long>(tally.readopted),
      static_cast<long long>(retried_attempts), s.peak, s.peak_after_last_restart, kParallel);
  // Every requeue has a kill behind it, or it is counted as work thrown away.
  const auto causes =
      chaos::explain_requeues(tally, s.kills, [&](std::int64_t number, std::int64_t attempt) {
        return fs::exists(
            dir.path / "work" / "chaos" /
            ("trial-" + std::to_string(number) + "-attempt-" + std::to_string(attempt)));
      });
  std::printf(
      "chaos seed %u: requeued attempts: %d running on a killed agent, %d leased to a killed "
      "agent but not running there, %d whose ASSIGN died with the scheduler, %zu none of "
      "these\n",
      seed, causes.held, causes.killed, causes.unsent, causes.unexplained.size());
  for (const auto& u : causes.unexplained) std::printf("chaos requeued: %s\n", u.c_str());
  for (const auto& n : s.notes) std::printf("chaos note: %s\n", n.c_str());
  for (const auto& u : tally.unexplained) std::printf("chaos unexplained: %s\n", u.c_str());
  std::fflush(stdout);

  INFO("seed " << seed << " (HPO_CHAOS_SEED); scheduler log tail:\n"
               << [&] {
                    auto log = read_text(dir.path / "scheduler.log");
                    return log.size() > 4000 ? log.substr(log.size() - 4000) : log;
                  }());
  std::string notes;
  for (const auto& n : s.notes) notes += n + "\n";
  INFO(notes);
  CHECK(s.notes.empty());
  CHECK(s.finished);
  CHECK(s.scheduler_crashes == 0);
  CHECK(s.agent_crashes == 0);
  CHECK(s.scheduler_kills >= 5);
  CHECK(s.agent_kills >= 7);

  // Exactly the budget, each COMPLETED once, with the value of its own config.
  REQUIRE(trials.size() == static_cast<std::size_t>(kBudget));
  CHECK(count_state(trials, TrialState::kCompleted) == static_cast<std::size_t>(kBudget));
  for (const auto& t : trials) {
    INFO("trial " << t.number << " attempt " << t.attempt << " config " << t.config.dump());
    REQUIRE(t.value.has_value());
    CHECK(*t.value == expected(t.config, kSteps));
    CHECK(tally.completed.count(t.number) == 1);
    if (tally.completed.count(t.number)) CHECK(tally.completed.at(t.number) == 1);
    // The current attempt's reports: each step once, each its own config's.
    auto metrics = metrics_of(cluster.db(), t.id);
    CHECK(metrics.size() == static_cast<std::size_t>(kSteps));
    for (const auto& m : metrics) {
      INFO("step " << m.step << " " << m.name);
      CHECK(m.value == expected(t.config, static_cast<int>(m.step)));
    }
  }
  CHECK(tally.completed.size() == static_cast<std::size_t>(kBudget));
  CHECK(chaos::integrity_check(cluster.db()) == "ok");

  // Nothing left running: every agent's trial died with it or ended.
  CHECK(s.orphans == 0);
  CHECK(wait_until([&] { return chaos::trial_processes(cluster.marker()).empty(); }, 3s));

  // No slot leaked: after the last restart every slot ran a trial at once.
  CHECK(s.peak_after_last_restart == kParallel);

  // Every interruption and requeue has a reason the events name.
  CHECK(tally.interrupted_other == 0);
  CHECK(tally.requeued_other == 0);
  CHECK(tally.requeued_after_retry == 0);
  // ... and no work is thrown away but what a killed agent held: a requeue of
  // a trial its agent still runs (e.g. a repeated HELLO undoing a re-adoption)
  // lands here.
  std::string thrown_away;
  for (const auto& u : causes.unexplained) thrown_away += u + "\n";
  INFO("requeued though no killed agent held them:\n" << thrown_away);
  CHECK(causes.unexplained.empty());
}
