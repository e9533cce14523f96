// Multi-fidelity search end to end (issue 14): `hpo run` with ASHA and Hyperband over builtin
// `curves` trials on two real agents. Trials are paused at rungs (their checkpoints uploaded to
// the scheduler), promoted ones resume from them as new attempts, possibly on the other agent,
// and every epoch a trial reports, across attempts, is exactly the curve an uninterrupted run
// gives: resuming is exact through the scheduler.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "tests/e2e/harness.h"
#include "trainer/agent/curves.h"

using namespace hpo::e2e;
using hpo::search::TrialState;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// A grid over 16 learning rates, the others fixed, in the order of their accuracy after the
// first epoch (best first, by the curves model itself). The first wave of trials holds the two
// best: the one of them that reports while its rung has fewer than 6 results is paused there,
// and promoted once the rung's top (a third of it) takes in both; so a trial resumes whatever
// the order its first reports arrive in.
json curves_study(const std::string& name, const json& scheduler, int seed) {
  std::vector<std::pair<double, double>> by_first_epoch;  // (accuracy after epoch 1, lr)
  for (int i = 0; i < 16; ++i) {
    const double lr = 1e-3 * std::pow(10.0, 2.0 * i / 15.0);
    auto params = hpo::agent::curve_params(
        json{{"lr", lr}, {"batch_size", 128}, {"width", 256}, {"dropout", 0.1}});
    REQUIRE(params);
    by_first_epoch.emplace_back(hpo::agent::curve_accuracy(*params, 1), lr);
  }
  std::sort(by_first_epoch.rbegin(), by_first_epoch.rend());
  json lrs = json::array();
  for (const auto& [accuracy, lr] : by_first_epoch) lrs.push_back(lr);
  return json{
      {"name", name},
      {"objective", {{"metric", "val_accuracy"}, {"direction", "maximize"}}},
      {"sampler", {{"type", "grid"}}},
      {"scheduler", scheduler},
      {"seed", seed},
      {"budget", {{"max_trials", 16}, {"max_parallel", 4}}},
      {"trial", {{"kind", "builtin"}, {"function", "curves"}, {"seconds", 0.05}, {"steps", 9}}},
      {"space",
       {{"lr", {{"type", "choice"}, {"values", lrs}}},
        {"batch_size", 128},
        {"width", 256},
        {"dropout", 0.1}}}};
}

// `hpo run` of the study on 2 agents x 2 slots in `dir` (with `extra` arguments); its database
// once it exited 0.
fs::path run_study(const TempDir& dir, const json& study, std::vector<std::string> extra = {}) {
  write_json(dir.path / "study.json", study);
  std::vector<std::string> args = {"run", (dir.path / "study.json").string(), "--agents", "2",
                                   "--cpu-slots", "2", "--heartbeat-ms", "200", "--verbose"};
  args.insert(args.end(), extra.begin(), extra.end());
  Process run(args, dir.path / "run.out", dir.path);
  const auto code = run.wait(120s);
  INFO(run.output());
  REQUIRE(code == 0);
  return dir.path / "hpo.db";
}

// Runs the study with `hpo run` on 2 agents x 2 slots and checks what every multi-fidelity
// run must give; returns the trials.
std::vector<hpo::results::TrialRow> run_and_check(const TempDir& dir, const json& study,
                                                   bool must_resume,
                                                   std::vector<std::string> extra = {}) {
  const std::string name = study["name"];
  const fs::path db = run_study(dir, study, std::move(extra));
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
  if (must_resume) CHECK(resumed >= 1);
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
  run_and_check(dir, curves_study("asha", asha, 5), /*must_resume=*/true);
  // The read side shows rungs.
  auto listed = run_hpo(dir, "trials --db hpo.db asha --format csv");
  REQUIRE(listed.code == 0);
  CHECK(listed.out.find("rung") != std::string::npos);
  CHECK(listed.out.find("PAUSED") == std::string::npos);
  auto studies = run_hpo(dir, "studies --db hpo.db --format csv");
  REQUIRE(studies.code == 0);
  CHECK(studies.out.find("checkpoint_bytes") != std::string::npos);
}

TEST_CASE("hpo run --checkpoint-shared: the agents write and read checkpoints in the shared "
          "directory instead of sending them, and resumes are as exact",
          "[e2e][asha][shared]") {
  TempDir dir("asha-shared-e2e");
  const json asha = {{"type", "asha"},
                     {"resource", "epoch"},
                     {"min_resource", 1},
                     {"max_resource", 9},
                     {"reduction_factor", 3}};
  run_and_check(dir, curves_study("asha-shared", asha, 5), /*must_resume=*/true,
                {"--checkpoint-shared"});
  const std::string out = hpo::test::read_text(dir.path / "run.out");
  INFO(out);
  CHECK(out.find("checkpoints go through the shared directory") != std::string::npos);
  CHECK(out.find("over the network") == std::string::npos);  // no fallback was needed
  CHECK(out.find("does not hold") == std::string::npos);     // every pack was adopted
  const fs::path store = dir.path / "hpo.db.checkpoints";
  CHECK(fs::exists(store / "shared-id"));
  CHECK(fs::is_empty(store / "incoming"));
  // Refused with a plain message: a shared directory that is none.
  auto refused = run_hpo(dir, "run study.json --checkpoint-shared --checkpoint-dir none");
  CHECK(refused.code == 2);
  CHECK(refused.err.find("--checkpoint-shared needs a checkpoint directory") != std::string::npos);
}

TEST_CASE("hpo run with Hyperband runs its brackets through the same pause and resume",
          "[e2e][asha]") {
  TempDir dir("hyperband-e2e");
  const json hyperband = {{"type", "hyperband"},
                          {"resource", "epoch"},
                          {"min_resource", 1},
                          {"max_resource", 9},
                          {"reduction_factor", 3}};
  // Its brackets take the trials in an order of their own: a resume is likely, not certain.
  run_and_check(dir, curves_study("hb", hyperband, 7), /*must_resume=*/false);
  auto shown = run_hpo(dir, "show --db hpo.db hb 0");
  REQUIRE(shown.code == 0);
  CHECK(shown.out.find("bracket") != std::string::npos);
}

TEST_CASE("hpo run with PBT replaces the worst members by explored copies of the best, each "
          "starting from its parent's checkpoint, with the lineage recorded",
          "[e2e][asha][pbt]") {
  TempDir dir("pbt-e2e");
  json study = curves_study("pbt",
                            {{"type", "pbt"},
                             {"resource", "epoch"},
                             {"max_resource", 9},
                             {"perturbation_interval", 3},
                             {"quantile", 0.25}},
                            3);
  study["sampler"] = {{"type", "random"}};
  study["budget"]["max_trials"] = 4;  // the population; the children of exploits come on top
  study["space"]["lr"] = {{"type", "float"}, {"low", 1e-4}, {"high", 1e-1}, {"log", true}};
  const fs::path db = run_study(dir, study);
  auto trials = trials_of(db, "pbt");
  // A population of 4 (max_parallel), each generation (steps 3 and 6) replacing its worst.
  std::size_t members = 0, children = 0;
  for (const auto& t : trials) {
    INFO("trial " << t.number << " " << hpo::search::to_string(t.state) << ": " << t.error);
    if (!t.parent) {
      ++members;
      continue;
    }
    ++children;
    const auto& parent = trials.at(static_cast<std::size_t>(*t.parent));
    REQUIRE(t.parent_step);
    // The child's curve starts as its parent's, up to the step it was copied at.
    auto inherited = metrics_of(db, t.id);
    auto from_parent = metrics_of(db, parent.id);
    std::map<std::int64_t, double> parent_at;
    for (const auto& m : from_parent) parent_at[m.step] = m.value;
    for (const auto& m : inherited) {
      if (m.step > *t.parent_step) continue;
      INFO("step " << m.step);
      CHECK(m.value == parent_at[m.step]);
    }
  }
  CHECK(members == 4);
  CHECK(children >= 2);  // at least one loser at each of the two generations
  CHECK(count_state(trials, TrialState::kCompleted) == 4);
  std::size_t replaced = 0;
  for (const auto& t : trials) {
    if (t.state == TrialState::kPruned) {
      CHECK(t.error.find("replaced by trial") != std::string::npos);
      ++replaced;
    }
  }
  CHECK(replaced == children);
  CHECK(packs_in(dir.path / "hpo.db.checkpoints") == 0);
  // The progress line counts the children too: every trial the study holds is done.
  const std::string all = std::to_string(trials.size());
  const std::string out = hpo::test::read_text(dir.path / "run.out");
  INFO(out);
  CHECK(out.find(all + "/" + all + " done") != std::string::npos);
}
