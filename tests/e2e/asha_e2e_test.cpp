// Multi-fidelity search end to end (issue 14): `hpo run` with ASHA and Hyperband over builtin
// `curves` trials on two real agents. Trials are paused at rungs (their checkpoints uploaded to
// the scheduler), promoted ones resume from them as new attempts, possibly on the other agent,
// and every epoch a trial reports, across attempts, is exactly the curve an uninterrupted run
// gives: resuming is exact through the scheduler.
#include <set>

#include "tests/e2e/harness.h"
#include "trainer/agent/curves.h"

using namespace hpo::e2e;
using hpo::search::TrialState;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

json curves_study(const std::string& name, const json& scheduler, int max_trials, int seed) {
  return json{
      {"name", name},
      {"objective", {{"metric", "val_accuracy"}, {"direction", "maximize"}}},
      {"sampler", {{"type", "random"}}},
      {"scheduler", scheduler},
      {"seed", seed},
      {"budget", {{"max_trials", max_trials}, {"max_parallel", 4}}},
      {"trial", {{"kind", "builtin"}, {"function", "curves"}, {"seconds", 0.05}, {"steps", 9}}},
      {"space",
       {{"lr", {{"type", "float"}, {"low", 1e-4}, {"high", 1e-1}, {"log", true}}},
        {"batch_size", {{"type", "choice"}, {"values", {32, 128, 512}}}},
        {"width", {{"type", "int"}, {"low", 16}, {"high", 512}, {"log", true}}},
        {"dropout", {{"type", "float"}, {"low", 0.0}, {"high", 0.6}}}}}};
}

// Runs the study with `hpo run` on 2 agents x 2 slots and checks what every multi-fidelity
// run must give; returns the trials.
std::vector<hpo::results::TrialRow> run_and_check(const TempDir& dir, const json& study) {
  const std::string name = study["name"];
  write_json(dir.path / "study.json", study);
  Process run({"run", (dir.path / "study.json").string(), "--agents", "2", "--cpu-slots", "2",
               "--heartbeat-ms", "200", "--verbose"},
              dir.path / "run.out", dir.path);
  const auto code = run.wait(120s);
  INFO(run.output());
  REQUIRE(code == 0);
  const fs::path db = dir.path / "hpo.db";
  auto trials = trials_of(db, name);
  REQUIRE(trials.size() == static_cast<std::size_t>(study["budget"]["max_trials"].get<int>()));
  std::size_t resumed = 0;
  for (const auto& t : trials) {
    INFO("trial " << t.number << " " << hpo::search::to_string(t.state) << " attempt "
                  << t.attempt << ": " << t.error);
    // Ended once, as ASHA ends trials: run to the end, or stopped at a rung.
    CHECK((t.state == TrialState::kCompleted || t.state == TrialState::kPruned));
    CHECK(t.failures == 0);
    CHECK(t.interruptions == 0);
    auto params = hpo::agent::curve_params(t.config);
    REQUIRE(params);
    // Every epoch it reported, over all its attempts, is the uninterrupted curve's.
    auto metrics = metrics_of(db, t.id);
    REQUIRE_FALSE(metrics.empty());
    std::set<std::int64_t> steps;
    for (const auto& m : metrics) {
      if (m.name != "val_accuracy") continue;
      INFO("step " << m.step);
      CHECK(m.value == hpo::agent::curve_accuracy(*params, m.step));
      steps.insert(m.step);
    }
    // From epoch 1 without a gap: a resumed attempt went on where its checkpoint was.
    REQUIRE_FALSE(steps.empty());
    CHECK(*steps.begin() == 1);
    CHECK(static_cast<std::size_t>(*steps.rbegin()) == steps.size());
    if (t.state == TrialState::kCompleted) {
      CHECK(*steps.rbegin() == 9);
      REQUIRE(t.value.has_value());
      CHECK(*t.value == hpo::agent::curve_accuracy(*params, 9));
    } else {
      CHECK(*steps.rbegin() < 9);
    }
    if (t.attempt >= 2) ++resumed;
  }
  // Some trials were paused and promoted: they resumed as later attempts.
  CHECK(resumed >= 1);
  CHECK(count_state(trials, TrialState::kCompleted) >= 1);
  CHECK(count_state(trials, TrialState::kPruned) >= 1);
  // Once the study is over, no checkpoint is left on disk.
  CHECK(packs_in(dir.path / "hpo.db.checkpoints") == 0);
  return trials;
}

}  // namespace

TEST_CASE("hpo run with ASHA pauses trials at rungs, resumes the promoted ones exactly from "
          "their uploaded checkpoints, and leaves no checkpoint behind",
          "[e2e][asha]") {
  TempDir dir("asha-e2e");
  const json asha = {{"type", "asha"},
                     {"resource", "epoch"},
                     {"min_resource", 1},
                     {"max_resource", 9},
                     {"reduction_factor", 3}};
  run_and_check(dir, curves_study("asha", asha, 16, 5));
  // The read side shows rungs.
  auto listed = run_hpo(dir, "trials --db hpo.db asha --format csv");
  REQUIRE(listed.code == 0);
  CHECK(listed.out.find("rung") != std::string::npos);
  CHECK(listed.out.find("PAUSED") == std::string::npos);
  auto studies = run_hpo(dir, "studies --db hpo.db --format csv");
  REQUIRE(studies.code == 0);
  CHECK(studies.out.find("checkpoint_bytes") != std::string::npos);
}

TEST_CASE("hpo run with Hyperband runs its brackets through the same pause and resume",
          "[e2e][asha]") {
  TempDir dir("hyperband-e2e");
  const json hyperband = {{"type", "hyperband"},
                          {"resource", "epoch"},
                          {"min_resource", 1},
                          {"max_resource", 9},
                          {"reduction_factor", 3}};
  auto trials = run_and_check(dir, curves_study("hb", hyperband, 16, 7));
  auto shown = run_hpo(dir, "show --db hpo.db hb 0");
  REQUIRE(shown.code == 0);
  CHECK(shown.out.find("bracket") != std::string::npos);
}
