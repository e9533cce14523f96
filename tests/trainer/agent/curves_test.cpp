// The curves builtin objective (trainer/agent/curves.h): deterministic curves
// that cross and flatten, a final accuracy that spreads over the space, and a
// trial resumed from its checkpoint at epoch k that continues the same curve.
#include "trainer/agent/curves.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.h"
#include "trainer/agent/builtin_objectives.h"

using namespace hpo::agent;
using nlohmann::json;

namespace {

CurveParams params_of(const json& config) {
  auto p = curve_params(config);
  REQUIRE(p);
  return *p;
}

std::vector<double> curve(const CurveParams& p, int epochs) {
  std::vector<double> out;
  for (int e = 1; e <= epochs; ++e) out.push_back(curve_accuracy(p, e));
  return out;
}

// A config drawn from experiments/curves.json's space.
json random_config(std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0, 1);
  static constexpr int kBatches[] = {32, 64, 128, 256, 512};
  return {{"lr", std::pow(10.0, -4 + 3 * u(rng))},
          {"batch_size", kBatches[rng() % 5]},
          {"width", static_cast<int>(std::lround(16 * std::pow(32.0, u(rng))))},
          {"dropout", 0.6 * u(rng)}};
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

protocol::Assign curves_assign(const json& config, const json& spec_extra) {
  json spec = {{"kind", "builtin"}, {"function", "curves"}, {"seconds", 0}, {"steps", 27}};
  spec.update(spec_extra);
  return protocol::Assign{"s", 1, 1, "1.1.1", config, spec};
}

// Runs one trial to its FINISH; returns the reported values by epoch (0 = none).
struct Run {
  std::vector<std::pair<std::int64_t, double>> reports;
  protocol::Finish finish;
};
Run run_trial(BuiltinRunner& runner, const protocol::Assign& assign,
              std::int64_t stop_after = INT64_MAX) {
  REQUIRE(runner.start(assign, {}));
  Run run;
  for (int i = 0; i < 100000; ++i) {
    for (auto& event : runner.poll()) {
      if (auto* r = std::get_if<protocol::Report>(&event)) {
        run.reports.emplace_back(r->step, r->metrics.at("val_accuracy"));
        if (static_cast<std::int64_t>(run.reports.size()) == stop_after) {
          runner.stop(assign.lease, StopReason::kInterrupted);
        }
      } else {
        run.finish = std::get<protocol::Finish>(event);
        return run;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  FAIL("the trial never finished");
  return run;
}

const json kFast = {{"lr", 0.03}, {"batch_size", 128}, {"width", 256}, {"dropout", 0.2}};
const json kSlow = {{"lr", 0.001}, {"batch_size", 128}, {"width", 256}, {"dropout", 0.4}};

}  // namespace

TEST_CASE("a curve is a function of the config and the epoch only", "[curves]") {
  const auto a = curve(params_of(kFast), 27);
  CHECK(a == curve(params_of(kFast), 27));
  // 128 and 128.0 are the same config; other keys are not inputs.
  json same = kFast;
  same["batch_size"] = 128.0;
  same["optimizer"] = "sgd";
  CHECK(a == curve(params_of(same), 27));
  json other = kFast;
  other["dropout"] = 0.21;
  CHECK(a != curve(params_of(other), 27));
  // The noise is there: the curve is not the smooth model.
  const CurveShape s = curve_shape(params_of(kFast));
  const double smooth = s.plateau - s.gap * std::exp(-26 / s.tau);
  CHECK(a[26] != smooth);
  CHECK(std::abs(a[26] - smooth) < 0.02);
}

TEST_CASE("a fast start that plateaus low crosses a slow start that ends high", "[curves]") {
  const auto fast = curve(params_of(kFast), 27), slow = curve(params_of(kSlow), 27);
  INFO("fast " << fast[0] << " .. " << fast[26] << ", slow " << slow[0] << " .. " << slow[26]);
  CHECK(fast[0] > slow[0] + 0.1);
  CHECK(slow[26] > fast[26] + 0.01);
  // Over random configs, many pairs swap places between epoch 1 and epoch 27 by more than
  // the noise: the ranking after one epoch is a hint, not the answer.
  std::mt19937_64 rng(1);
  std::vector<std::pair<double, double>> ends;
  for (int i = 0; i < 200; ++i) {
    auto p = params_of(random_config(rng));
    ends.emplace_back(curve_accuracy(p, 1), curve_accuracy(p, 27));
  }
  int crossings = 0, pairs = 0;
  for (std::size_t i = 0; i < ends.size(); ++i) {
    for (std::size_t j = i + 1; j < ends.size(); ++j, ++pairs) {
      auto [a1, a27] = ends[i];
      auto [b1, b27] = ends[j];
      if ((a1 - b1 > 0.02 && b27 - a27 > 0.02) || (b1 - a1 > 0.02 && a27 - b27 > 0.02)) ++crossings;
    }
  }
  INFO(crossings << " of " << pairs << " pairs cross");
  CHECK(crossings > pairs / 20);
  CHECK(crossings < pairs / 2);
}

TEST_CASE("most curves flatten into a plateau before the last epochs", "[curves]") {
  std::mt19937_64 rng(2);
  double early = 0, late = 0;
  int flat = 0;  // gain less than the noise (0.003) over epochs 18 -> 27
  for (int i = 0; i < 200; ++i) {
    const CurveShape s = curve_shape(params_of(random_config(rng)));
    early += s.gap * (1 - std::exp(-2 / s.tau));  // epochs 1 -> 3
    const double gain = s.gap * (std::exp(-17 / s.tau) - std::exp(-26 / s.tau));
    late += gain;
    flat += gain < 0.003;
  }
  INFO("mean gain over epochs 1-3: " << early / 200 << ", 18-27: " << late / 200 << "; " << flat
                                     << " of 200 flat over 18-27");
  CHECK(late < early / 3);
  CHECK(flat > 100);
}

TEST_CASE("final accuracies spread so that the 95th percentile is a real target", "[curves]") {
  std::mt19937_64 rng(3);
  std::vector<double> finals, firsts;
  for (int i = 0; i < 4000; ++i) {
    auto p = params_of(random_config(rng));
    finals.push_back(curve_accuracy(p, 27));
    firsts.push_back(curve_accuracy(p, 1));
  }
  const double p5 = quantile(finals, 0.05), p50 = quantile(finals, 0.5),
               p95 = quantile(finals, 0.95), top = quantile(finals, 1.0);
  INFO("final accuracy: p5 " << p5 << ", median " << p50 << ", p95 " << p95 << ", max " << top);
  CHECK(p95 - p5 > 0.05);
  CHECK(p95 - p50 > 0.01);
  CHECK(top - p95 > 0.002);  // reaching p95 is hard, not a coin flip among equals
  // After one epoch the same space spreads much wider: low fidelity is cheap but noisy.
  CHECK(quantile(firsts, 0.95) - quantile(firsts, 0.05) > p95 - p5);
}

TEST_CASE("a bad curves input names its config key", "[curves]") {
  auto p = curve_params(json{{"lr", "fast"}});
  REQUIRE(!p);
  CHECK(p.error().message == "config.lr: must be a finite number > 0 (got \"fast\")");
  CHECK(curve_params(json{{"dropout", -0.1}}).error().message ==
        "config.dropout: must be a finite number >= 0 (got -0.1)");
  CHECK(curve_params(json{{"dropout", 0}}));
  CHECK(curve_params(json::object()));  // every input has a default
}

TEST_CASE("a curves trial reports val_accuracy each epoch and finishes with the last", "[curves]") {
  BuiltinRunner runner;
  auto run = run_trial(runner, curves_assign(kSlow, json::object()));
  REQUIRE(run.reports.size() == 27);
  const auto expected = curve(params_of(kSlow), 27);
  for (int e = 1; e <= 27; ++e) {
    CHECK(run.reports[e - 1].first == e);
    CHECK(run.reports[e - 1].second == expected[e - 1]);
  }
  CHECK(run.finish.outcome == protocol::Outcome::kOk);
  CHECK(run.finish.metrics.at("val_accuracy") == expected[26]);
}

TEST_CASE("a curves trial resumed from its checkpoint at epoch k continues the same curve",
          "[curves]") {
  hpo::test::TempDir dir;
  const std::string ckpt = dir / "ckpt";
  BuiltinRunner runner;
  const auto whole = run_trial(runner, curves_assign(kFast, json::object()));
  REQUIRE(whole.reports.size() == 27);

  // The first attempt ends after k epochs ...
  const std::int64_t k = GENERATE(1, 9, 26);
  auto first = run_trial(runner, curves_assign(kFast, {{"checkpoint_dir", ckpt}, {"steps", k}}));
  REQUIRE(first.reports.size() == static_cast<std::size_t>(k));
  auto saved = read_curve_state(ckpt);
  REQUIRE(saved);
  CHECK(*saved == k);
  // ... the next one resumes at epoch k + 1, and both together equal the uninterrupted run.
  auto second = run_trial(runner, curves_assign(kFast, {{"resume_from", ckpt}}));
  CHECK(second.finish.outcome == protocol::Outcome::kOk);
  auto joined = first.reports;
  joined.insert(joined.end(), second.reports.begin(), second.reports.end());
  CHECK(joined == whole.reports);
  CHECK(second.finish.metrics == whole.finish.metrics);
}

TEST_CASE("a curves trial paused while it sleeps resumes after its last saved epoch", "[curves]") {
  hpo::test::TempDir dir;
  const std::string ckpt = dir / "ckpt";
  BuiltinRunner runner;
  const auto whole = run_trial(runner, curves_assign(kSlow, json::object()));
  // 5 ms per epoch: the stop lands after some epoch, whichever (3 or a few more).
  auto first =
      run_trial(runner, curves_assign(kSlow, {{"seconds", 0.005}, {"checkpoint_dir", ckpt}}), 3);
  CHECK(first.finish.outcome == protocol::Outcome::kInterrupted);
  CHECK(first.reports.size() < 27);
  auto saved = read_curve_state(ckpt);
  REQUIRE(saved);
  CHECK(*saved == static_cast<std::int64_t>(first.reports.size()));
  auto second = run_trial(runner, curves_assign(kSlow, {{"resume_from", ckpt}}));
  auto joined = first.reports;
  joined.insert(joined.end(), second.reports.begin(), second.reports.end());
  CHECK(joined == whole.reports);
}

TEST_CASE("a curves trial cannot resume from a directory without a checkpoint", "[curves]") {
  hpo::test::TempDir dir;
  BuiltinRunner runner;
  auto s = runner.start(curves_assign(kFast, {{"resume_from", dir.path.string()}}), {});
  REQUIRE(!s);
  CHECK(s.error().message.starts_with(dir.path.string() + "/state: cannot read"));
  std::ofstream(dir.path.string() + "/state") << "{\"epoch\": -3}";
  CHECK(read_curve_state(dir.path.string()).error().message ==
        dir.path.string() +
            "/state: not a curves checkpoint (expected {\"epoch\": K} with K >= 0)");
}
