// Synchronous PBT: who pauses, when a generation completes, who resumes, which
// exploits the daemon carries out, and that rebuild() from the store gives the
// live state at every point.
#include "search/pbt.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <set>

using namespace hpo::search;
using nlohmann::json;

namespace {

SchedulerSpec pbt_spec(std::int64_t population, std::int64_t interval, std::int64_t max,
                       std::uint64_t seed = 7) {
  SchedulerSpec s;
  s.type = SchedulerType::kPbt;
  s.max_resource = max;
  s.perturbation_interval = interval;
  s.population = population;
  s.seed = seed;
  return s;
}

// A daemon's view: the live scheduler, and what it would have written to the store.
struct Study {
  explicit Study(SchedulerSpec s, Direction d = Direction::kMinimize)
      : spec(s), direction(d), live(s, d) {}
  SchedulerSpec spec;
  Direction direction;
  TrialScheduler live;
  std::vector<Observation> observations{};
  std::map<std::int64_t, Lineage> lineage{};
  std::int64_t trials = 0;  // trial numbers handed out

  Decision report(std::int64_t t, std::int64_t step, double value) {
    observations.push_back({t, step, value});
    trials = std::max(trials, t + 1);
    auto d = live.report(t, step, value);
    check_rebuild();
    return d;
  }
  void resume(std::int64_t t) {
    live.set_status(t, TrialStatus::kRunning);
    check_rebuild();
  }
  void end(std::int64_t t) {
    live.set_status(t, TrialStatus::kEnded);
    check_rebuild();
  }
  // Carries out the first pending exploit; returns the child.
  std::int64_t exploit() {
    const Exploit e = live.exploits().at(0);
    const std::int64_t child = trials++;
    lineage[child] = {e.parent, e.step};
    CHECK(live.adopt(child, e.parent, e.step));
    CHECK(live.status(e.loser) == TrialStatus::kEnded);
    check_rebuild();
    return child;
  }
  std::map<std::int64_t, TrialStatus> store_status() const {
    std::map<std::int64_t, TrialStatus> out;
    for (std::int64_t t = 0; t < trials; ++t) out[t] = live.status(t);
    return out;
  }
  void check_rebuild() const {
    auto rebuilt = TrialScheduler::rebuild(spec, direction, observations, store_status(), lineage);
    CHECK(rebuilt.promotable() == live.promotable());
    CHECK(rebuilt.exploits() == live.exploits());
    for (std::int64_t t = 0; t < trials; ++t) {
      CHECK(rebuilt.status(t) == live.status(t));
      CHECK(rebuilt.rung_resource(t) == live.rung_resource(t));
    }
  }
};

const double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

TEST_CASE("a population of 4 runs 3 generations: pause, rank, exploit, adopt, resume", "[pbt]") {
  Study s{pbt_spec(4, 2, 8)};
  // Generation 1 (step 2). Step 1 is between generations: go on.
  for (std::int64_t t = 0; t < 4; ++t) CHECK(s.report(t, 1, 1.0).action == Action::kContinue);
  CHECK(s.report(0, 2, 0.5).action == Action::kPause);
  CHECK(s.report(1, 2, 0.2).action == Action::kPause);
  auto d = s.report(2, 2, 0.9);
  CHECK(d.action == Action::kPause);
  CHECK(d.rung == 0);
  CHECK(s.live.promotable().empty());  // trial 3 still runs: the generation is open
  CHECK(s.live.exploits().empty());
  CHECK(s.report(3, 2, 0.4).action == Action::kPause);
  // Ranked 1 (0.2), 3, 0, 2 (0.9): m = ⌈0.25·4⌉ = 1, so 2 is replaced by a copy of 1.
  CHECK(s.live.exploits() == std::vector<Exploit>{{2, 1, 2}});
  CHECK(s.live.promotable() == std::vector<std::int64_t>{0, 1, 3});
  CHECK(s.exploit() == 4);
  CHECK(s.live.exploits().empty());
  CHECK(s.live.status(4) == TrialStatus::kRunning);
  CHECK(s.live.rung_resource(4) == 2);  // the parent's results up to step 2 are its own
  for (std::int64_t t : {0, 1, 3}) s.resume(t);
  CHECK(s.live.promotable().empty());

  // Generation 2 (step 4): the child diverged (NaN is worst).
  for (std::int64_t t : {0, 1, 3, 4}) CHECK(s.report(t, 3, 1.0).action == Action::kContinue);
  CHECK(s.report(4, 4, kNaN).action == Action::kPause);
  CHECK(s.report(0, 4, 0.3).action == Action::kPause);
  CHECK(s.report(1, 4, 0.35).action == Action::kPause);
  CHECK(s.live.exploits().empty());
  CHECK(s.report(3, 4, 0.1).action == Action::kPause);
  CHECK(s.live.exploits() == std::vector<Exploit>{{4, 3, 4}});
  CHECK(s.live.promotable() == std::vector<std::int64_t>{0, 1, 3});
  CHECK(s.exploit() == 5);
  for (std::int64_t t : {0, 1, 3}) s.resume(t);

  // Generation 3 (step 6): trial 0 fails on the way and drops out.
  for (std::int64_t t : {0, 1, 3, 5}) CHECK(s.report(t, 5, 1.0).action == Action::kContinue);
  CHECK(s.report(1, 6, 0.2).action == Action::kPause);
  CHECK(s.report(3, 6, 0.3).action == Action::kPause);
  CHECK(s.report(5, 6, 0.25).action == Action::kPause);
  CHECK(s.live.promotable().empty());  // trial 0 has not ended yet
  s.end(0);
  // Ranked 1, 5, 3 (n = 3, m = 1): 3 is replaced by a copy of 1.
  CHECK(s.live.exploits() == std::vector<Exploit>{{3, 1, 6}});
  CHECK(s.live.promotable() == std::vector<std::int64_t>{1, 5});
  CHECK(s.exploit() == 6);
  for (std::int64_t t : {1, 5}) s.resume(t);

  // No generation at or past max_resource: the members run to the end.
  for (std::int64_t t : {1, 5, 6}) CHECK(s.report(t, 7, 1.0).action == Action::kContinue);
  for (std::int64_t t : {1, 5, 6}) CHECK(s.report(t, 8, 1.0).action == Action::kComplete);
  CHECK(s.live.promotable().empty());
  CHECK(s.live.exploits().empty());
  for (std::int64_t t = 0; t < 7; ++t) CHECK(s.live.status(t) == TrialStatus::kEnded);
}

TEST_CASE("a generation waits until the whole population has been sampled", "[pbt]") {
  // Two slots for a population of 3: trials 0 and 1 pause before trial 2 starts.
  Study s{pbt_spec(3, 2, 6)};
  CHECK(s.report(0, 2, 0.1).action == Action::kPause);
  CHECK(s.report(1, 2, 0.2).action == Action::kPause);
  CHECK(s.live.promotable().empty());
  CHECK(s.live.exploits().empty());
  CHECK(s.report(2, 1, 0.3).action == Action::kContinue);
  CHECK(s.report(2, 2, 0.3).action == Action::kPause);
  CHECK(s.live.exploits() == std::vector<Exploit>{{2, 0, 2}});
  CHECK(s.live.promotable() == std::vector<std::int64_t>{0, 1});
}

TEST_CASE("a sampled member that fails before its first report does not block", "[pbt]") {
  Study s{pbt_spec(3, 2, 6, 1), Direction::kMaximize};
  CHECK(s.report(0, 2, 0.1).action == Action::kPause);
  CHECK(s.report(1, 2, 0.2).action == Action::kPause);
  s.trials = 3;
  s.end(2);
  // Maximize: 1 is the best, 0 the worst; n = 2 gives m = 1.
  CHECK(s.live.exploits() == std::vector<Exploit>{{0, 1, 2}});
  CHECK(s.live.promotable() == std::vector<std::int64_t>{1});
}

TEST_CASE("the same seed gives the same exploits; parents come from the top quantile", "[pbt]") {
  auto plan = [](std::uint64_t seed) {
    TrialScheduler p(pbt_spec(8, 3, 9, seed), Direction::kMinimize);
    for (std::int64_t t = 0; t < 8; ++t) {
      REQUIRE(p.report(t, 3, static_cast<double>((t * 5) % 8)).action == Action::kPause);
    }
    return p.exploits();
  };
  // Values 0,5,2,7,4,1,6,3 for trials 0..7: best 0 (0), 5 (1); worst 3 (7), 6 (6).
  std::set<std::int64_t> parents;
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    const auto a = plan(seed);
    CHECK(a == plan(seed));
    REQUIRE(a.size() == 2);
    CHECK(a[0].loser == 3);
    CHECK(a[1].loser == 6);
    for (const auto& e : a) {
      CHECK((e.parent == 0 || e.parent == 5));
      CHECK(e.step == 3);
      parents.insert(e.parent);
    }
  }
  CHECK(parents.size() == 2);  // the draw is not a constant
}

TEST_CASE("a quantile never replaces more than half of the population", "[pbt]") {
  auto spec = pbt_spec(5, 1, 4);
  spec.quantile = 0.5;
  TrialScheduler p(spec, Direction::kMinimize);
  for (std::int64_t t = 0; t < 5; ++t) p.report(t, 1, static_cast<double>(t));
  const auto e = p.exploits();  // ⌈0.5·5⌉ = 3, capped at ⌊5/2⌋ = 2
  REQUIRE(e.size() == 2);
  CHECK(e[0].loser == 4);
  CHECK(e[1].loser == 3);
  CHECK(p.promotable() == std::vector<std::int64_t>{0, 1, 2});
}

TEST_CASE("a lone member is never replaced and resumes", "[pbt]") {
  TrialScheduler p(pbt_spec(1, 2, 6), Direction::kMinimize);
  CHECK(p.report(0, 2, 1.0).action == Action::kPause);
  CHECK(p.exploits().empty());
  CHECK(p.promotable() == std::vector<std::int64_t>{0});
}

TEST_CASE("a restart between resumes keeps the others promotable and the exploit pending",
          "[pbt]") {
  // Each step below is checked against a rebuild from the store (Study does it): here only
  // the resumed trial shows that generation 1 completed.
  Study s{pbt_spec(4, 2, 8)};
  for (std::int64_t t = 0; t < 4; ++t) s.report(t, 2, static_cast<double>(t));
  CHECK(s.live.exploits() == std::vector<Exploit>{{3, 0, 2}});
  s.resume(0);  // running again, before the exploit is carried out
  CHECK(s.live.promotable() == std::vector<std::int64_t>{1, 2});
  CHECK(s.report(0, 3, 0.5).action == Action::kContinue);
  s.end(0);  // it reported after its pause, then failed
  CHECK(s.live.promotable() == std::vector<std::int64_t>{1, 2});
  CHECK(s.live.exploits() == std::vector<Exploit>{{3, 0, 2}});
  CHECK(s.exploit() == 4);
}

TEST_CASE("a copy of a pbt scheduler is independent of the original", "[pbt]") {
  TrialScheduler a(pbt_spec(2, 2, 6), Direction::kMinimize);
  a.report(0, 2, 1.0);
  TrialScheduler b = a;
  b.report(1, 2, 2.0);
  CHECK(b.exploits() == std::vector<Exploit>{{1, 0, 2}});
  CHECK(a.exploits().empty());  // trial 1 reported to the copy only
  a = b;
  CHECK(a.exploits() == b.exploits());
  CHECK(a.rung_of(1) == 0);
  CHECK(a.rung_resource(1) == 2);
}
