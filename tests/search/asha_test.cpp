// ASHA's decisions on hand-worked examples (η = 3, rungs 1, 3, 9, max 27), and
// the same decisions from a scheduler rebuilt from the recorded reports alone.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "search/trial_scheduler.h"

using namespace hpo::search;

namespace {

using Trials = std::vector<std::int64_t>;

Asha ladder(Direction direction = Direction::kMaximize) {
  return Asha({1, 3, 9}, 27, 3, direction);
}

Action act(Asha& a, std::int64_t trial, std::int64_t epoch, double value) {
  return a.report(trial, epoch, value).action;
}

}  // namespace

TEST_CASE(
    "a trial goes on only in its rung's top third, and a paused one is promoted as the "
    "rung fills",
    "[asha]") {
  Asha a = ladder();
  // With n results a rung's top is the best floor(n / 3): the first two always wait.
  CHECK(act(a, 0, 1, 0.5) == Action::kPause);
  CHECK(act(a, 1, 1, 0.7) == Action::kPause);
  CHECK(a.promotable().empty());
  CHECK(act(a, 2, 1, 0.6) == Action::kPause);
  CHECK(a.promotable() == Trials{1});      // 0.7 is the top 1 of 3
  a.set_status(1, TrialStatus::kRunning);  // a slot resumed it
  CHECK(a.promotable().empty());
  CHECK(act(a, 3, 1, 0.9) == Action::kContinue);  // top 1 of 4
  CHECK(act(a, 4, 1, 0.1) == Action::kPause);
  CHECK(act(a, 5, 1, 0.8) == Action::kContinue);  // top 2 of 6: 0.9, 0.8
  CHECK(act(a, 6, 1, 0.2) == Action::kPause);
  CHECK(act(a, 7, 1, 0.3) == Action::kPause);
  CHECK(act(a, 8, 1, 0.4) == Action::kPause);  // top 3 of 9: 0.9, 0.8, 0.7 (trial 1, running)
  CHECK(a.promotable().empty());
  CHECK(act(a, 9, 1, 0.75) == Action::kContinue);  // top 3 of 10: 0.9, 0.8, 0.75
  // Between rungs nothing is decided.
  auto between = a.report(3, 2, 0.85);
  CHECK(between.action == Action::kContinue);
  CHECK(between.rung == -1);
  // Rung 1 (3 epochs) fills the same way.
  CHECK(act(a, 1, 3, 0.72) == Action::kPause);
  CHECK(act(a, 3, 3, 0.91) == Action::kPause);
  auto d = a.report(5, 3, 0.85);
  CHECK(d.action == Action::kPause);
  CHECK(d.rung == 1);
  CHECK(a.promotable() == Trials{3});
  // Eight poor trials fill rung 0 to 18 results: its top 6 now reach down to 0.6 and 0.5.
  for (std::int64_t t = 10; t < 18; ++t) CHECK(act(a, t, 1, 0.01) == Action::kPause);
  // Higher rungs first, then the better result first; trial 1 waits at rung 1, not rung 0.
  CHECK(a.promotable() == Trials{3, 2, 0});
  CHECK(a.rung_of(1) == 1);
  CHECK(a.rung_of(2) == 0);
  CHECK(a.rung_of(99) == -1);
}

TEST_CASE("a trial that reaches max_resource completes whatever its rank", "[asha]") {
  Asha a = ladder();
  CHECK(act(a, 0, 9, 0.9) == Action::kPause);  // crossing rungs 1, 3, 9 at once: judged at 9
  CHECK(a.rung_of(0) == 2);
  a.set_status(0, TrialStatus::kRunning);
  auto done = a.report(0, 27, 0.1);
  CHECK(done.action == Action::kComplete);
  CHECK(a.status(0) == TrialStatus::kEnded);
  CHECK(act(a, 1, 30, 0.1) == Action::kComplete);  // beyond the end too
}

TEST_CASE("a trial's first report at or beyond a rung is its result there", "[asha]") {
  Asha a = ladder();
  for (std::int64_t t = 0; t < 2; ++t) CHECK(act(a, t, 3, 0.5) == Action::kPause);
  // Trial 2 skips epoch 3: its report at 4 is its result at rungs 1 and 3 (0 and 1).
  auto d = a.report(2, 4, 0.9);
  CHECK(d.rung == 1);
  CHECK(d.action == Action::kContinue);
  // A resumed trial that reports a rung's epoch again changes nothing there.
  a.set_status(0, TrialStatus::kRunning);
  auto again = a.report(0, 3, 0.99);
  CHECK(again.rung == -1);
  CHECK(again.action == Action::kContinue);
  CHECK(a.promotable().empty());
}

TEST_CASE("ties go to the lower trial number, and a NaN result is never promoted", "[asha]") {
  Asha a = ladder();
  for (std::int64_t t : {4, 2, 7}) CHECK(act(a, t, 1, 0.5) == Action::kPause);
  CHECK(a.promotable() == Trials{2});
  Asha b = ladder();
  for (std::int64_t t = 0; t < 3; ++t) CHECK(act(b, t, 1, NAN) == Action::kPause);
  CHECK(b.promotable().empty());
  CHECK(act(b, 3, 1, NAN) == Action::kPause);
  CHECK(act(b, 4, 1, -1e9) == Action::kContinue);  // top 1 of 5: any number beats NaN
}

TEST_CASE("the direction decides which results are the top", "[asha]") {
  for (auto direction : {Direction::kMinimize, Direction::kMaximize}) {
    Asha a = ladder(direction);
    for (std::int64_t t = 0; t < 3; ++t) act(a, t, 1, std::vector<double>{0.3, 0.1, 0.2}[t]);
    CHECK(a.promotable() == Trials{direction == Direction::kMinimize ? 1 : 0});
    // Trial 3's 0.05 is the best when minimizing (it goes on) and the worst otherwise.
    CHECK(act(a, 3, 1, 0.05) ==
          (direction == Direction::kMinimize ? Action::kContinue : Action::kPause));
  }
}

TEST_CASE("an ended trial is never promoted, and without rungs every trial runs to the end",
          "[asha]") {
  Asha a = ladder();
  for (std::int64_t t = 0; t < 3; ++t)
    CHECK(act(a, t, 1, 2.0 - static_cast<double>(t)) == Action::kPause);
  CHECK(a.promotable() == Trials{0});
  a.set_status(0, TrialStatus::kEnded);  // failed while paused, or the study was cancelled
  CHECK(a.promotable().empty());
  Asha flat({}, 27, 3, Direction::kMaximize);
  CHECK(act(flat, 0, 1, 0.1) == Action::kContinue);
  CHECK(act(flat, 0, 27, 0.1) == Action::kComplete);
}

TEST_CASE("a scheduler rebuilt from the recorded reports gives the same decisions",
          "[asha][hyperband]") {
  const auto type = GENERATE(SchedulerType::kAsha, SchedulerType::kHyperband);
  const SchedulerSpec spec{type, 1, 27, 3};
  const Direction direction = GENERATE(Direction::kMinimize, Direction::kMaximize);
  TrialScheduler live(spec, direction);
  std::vector<Observation> observations;
  std::map<std::int64_t, TrialStatus> status;
  std::map<std::int64_t, std::int64_t> epoch;  // each trial's last reported epoch
  std::vector<std::int64_t> slots;             // running trials, 4 slots
  std::mt19937_64 rng(17);
  std::int64_t next_trial = 0;
  int checks = 0, pauses = 0, promotions = 0;
  for (int event = 0; event < 1500; ++event) {
    while (slots.size() < 4) {  // a free slot resumes a promotable trial before a new one
      auto ready = live.promotable();
      std::int64_t t = ready.empty() ? next_trial++ : ready.front();
      if (!ready.empty()) ++promotions;
      live.set_status(t, TrialStatus::kRunning);
      status[t] = TrialStatus::kRunning;
      slots.push_back(t);
    }
    const std::size_t slot = rng() % slots.size();
    const std::int64_t t = slots[slot];
    const std::int64_t e = ++epoch[t];
    // A noisy curve per trial of a scattered quality; a few values tie (rounded), some are NaN.
    const double quality = static_cast<double>((t * 7919) % 101) / 101;
    double value = std::round(100 * (quality + 0.02 * static_cast<double>(e) +
                                     0.05 * static_cast<double>(rng() % 3))) /
                   100;
    if (rng() % 50 == 0) value = NAN;

    if (event % 5 == 0) {  // restart here: the rebuilt scheduler must agree from now on
      TrialScheduler rebuilt = TrialScheduler::rebuild(spec, direction, observations, status);
      REQUIRE(rebuilt.promotable() == live.promotable());
      for (const auto& [trial, s] : status) {
        REQUIRE(rebuilt.status(trial) == s);
        REQUIRE(rebuilt.rung_of(trial) == live.rung_of(trial));
      }
      auto a = rebuilt.report(t, e, value);
      auto b = TrialScheduler(live).report(t, e, value);
      REQUIRE(a.action == b.action);
      REQUIRE(a.rung == b.rung);
      ++checks;
    }
    observations.push_back({t, e, value});
    const Decision d = live.report(t, e, value);
    if (d.action != Action::kContinue) {
      status[t] = d.action == Action::kPause ? TrialStatus::kPaused : TrialStatus::kEnded;
      pauses += d.action == Action::kPause;
      slots.erase(slots.begin() + static_cast<std::ptrdiff_t>(slot));
    }
  }
  INFO(checks << " checks, " << pauses << " pauses, " << promotions << " promotions");
  CHECK(checks == 300);
  CHECK(pauses > 50);
  CHECK(promotions > 10);
}
