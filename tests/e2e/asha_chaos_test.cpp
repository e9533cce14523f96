// Chaos under ASHA (issue 14): the chaos driver's SIGKILLs of the scheduler and the agents
// while trials are paused, uploaded, promoted and resumed. A command trial saves its step
// after each epoch in $HPO_CHECKPOINT_DIR and resumes from $HPO_RESUME_FROM; its value at
// each step is a function of its config and the step. Afterwards: the exact budget, each
// trial COMPLETED or PRUNED once (none left PAUSED, QUEUED or FAILED), every step a trial
// reported over its attempts equal to that function and without a gap (a resumed run went on
// from its checkpoint, or started afresh, never from a wrong one), no checkpoint left on
// disk, and a sound SQLite file. HPO_CHAOS_SEED picks the schedule, as for the other chaos test.
#include <cstdlib>
#include <set>

#include "tests/e2e/chaos_driver.h"
#include "tests/e2e/harness.h"

using namespace hpo::e2e;
using hpo::search::TrialState;
using nlohmann::json;
namespace chaos = hpo::e2e::chaos;

namespace {

constexpr int kBudget = 24;
constexpr int kSteps = 9;

const char* kTrialScript = R"PY(
import json, os, signal, sys, time
x, y, steps, pause = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
ckpt = os.environ["HPO_CHECKPOINT_DIR"]
start = 1
if os.environ.get("HPO_RESUME_FROM"):
    with open(os.path.join(os.environ["HPO_RESUME_FROM"], "state")) as f:
        start = json.load(f)["step"] + 1
# A pause (SIGTERM with HPO_PAUSE=1) finds the state of the last step already saved.
if os.environ.get("HPO_PAUSE") == "1":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
for step in range(start, steps + 1):
    time.sleep(pause)
    tmp = os.path.join(ckpt, "state.tmp")
    with open(tmp, "w") as f:
        json.dump({"step": step}, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(ckpt, "state"))
    print("HPO_METRIC " + json.dumps({"step": step, "value": x * x + y + 100.0 / step}), flush=True)
)PY";

double expected(const json& config, std::int64_t step) {
  const auto x = config.at("x").get<std::int64_t>();
  const auto y = config.at("y").get<std::int64_t>();
  return static_cast<double>(x * x + y) + 100.0 / static_cast<double>(step);
}

}  // namespace

TEST_CASE("chaos under ASHA: SIGKILLed scheduler and agents while trials pause, upload and "
          "resume: each trial ends once, every step is its own, no checkpoint is left",
          "[e2e][chaos][asha]") {
  const char* env = std::getenv("HPO_CHAOS_SEED");
  const std::uint32_t seed =
      env && *env ? static_cast<std::uint32_t>(std::strtoul(env, nullptr, 10)) : 1u;
  TempDir dir("asha-chaos");
  write_text(dir.path / "asha_trial.py", kTrialScript);
  json study = {
      {"name", "asha-chaos"},
      {"objective", {{"metric", "value"}, {"direction", "minimize"}}},
      {"sampler", {{"type", "random"}}},
      {"scheduler",
       {{"type", "asha"},
        {"resource", "epoch"},
        {"min_resource", 1},
        {"max_resource", kSteps},
        {"reduction_factor", 3}}},
      {"seed", seed},
      {"budget", {{"max_trials", kBudget}, {"max_parallel", chaos::kParallel}, {"max_retries", 0}}},
      {"trial",
       {{"kind", "command"},
        {"command", "/usr/bin/python3 " + (dir / "asha_trial.py") + " {x} {y} " +
                        std::to_string(kSteps) + " 0.15"},
        {"workdir", "."},
        {"timeout_seconds", 60}}},
      {"space",
       {{"x", {{"type", "int"}, {"low", -30}, {"high", 30}}},
        {"y", {{"type", "int"}, {"low", 0}, {"high", 999}}}}}};
  write_json(dir.path / "asha.json", study);

  const auto events = chaos::schedule(seed);
  chaos::Cluster cluster(dir, dir.path / "asha.json", "asha-chaos", dir / "asha_trial.py");
  // Six of the schedule's events, 1.5 s apart: trials are pausing and resuming all the while.
  for (std::size_t k = 0; k < 6 && k < events.size() && !cluster.finished(); ++k) {
    cluster.run_for(1.5);
    cluster.play(events[k]);
  }
  cluster.all_restarted();
  cluster.finish(90);
  const chaos::Summary& s = cluster.summary();
  std::string notes;
  for (const auto& n : s.notes) notes += n + "\n";
  INFO("seed " << seed << "; notes:\n"
               << notes << "scheduler log tail:\n"
               << [&] {
                    auto log = read_text(dir.path / "scheduler.log");
                    return log.size() > 4000 ? log.substr(log.size() - 4000) : log;
                  }());
  CHECK(s.finished);
  CHECK(s.scheduler_crashes == 0);
  CHECK(s.agent_crashes == 0);
  CHECK(s.scheduler_kills >= 2);
  CHECK(s.agent_kills >= 2);

  const auto trials = trials_of(cluster.db(), "asha-chaos");
  REQUIRE(trials.size() == static_cast<std::size_t>(kBudget));
  std::size_t resumed = 0;
  for (const auto& t : trials) {
    INFO("trial " << t.number << " " << hpo::search::to_string(t.state) << " attempt "
                  << t.attempt << ": " << t.error);
    CHECK((t.state == TrialState::kCompleted || t.state == TrialState::kPruned));
    std::set<std::int64_t> steps;
    for (const auto& m : metrics_of(cluster.db(), t.id)) {
      INFO("step " << m.step);
      CHECK(m.value == expected(t.config, m.step));
      steps.insert(m.step);
    }
    REQUIRE_FALSE(steps.empty());
    CHECK(*steps.begin() == 1);
    CHECK(static_cast<std::size_t>(*steps.rbegin()) == steps.size());
    if (t.state == TrialState::kCompleted) {
      CHECK(*steps.rbegin() == kSteps);
      REQUIRE(t.value.has_value());
      CHECK(*t.value == expected(t.config, kSteps));
    }
    if (t.attempt >= 2) ++resumed;
  }
  CHECK(resumed >= 1);
  CHECK(count_state(trials, TrialState::kCompleted) >= 1);
  CHECK(packs_in(fs::path(cluster.db().string() + ".checkpoints")) == 0);
  CHECK(chaos::integrity_check(cluster.db()) == "ok");
  CHECK(s.orphans == 0);
}
