// Hyperband's brackets (Li et al. 2017, Table 1), how new trials are spread
// over them, and each bracket acting as an ASHA of its own.
#include <catch2/catch.hpp>
#include <map>

#include "search/trial_scheduler.h"

using namespace hpo::search;

namespace {

// (n_i, r_i) of each rung of each bracket, s = s_max first.
std::vector<std::vector<std::pair<std::int64_t, std::int64_t>>> table(const SchedulerSpec& spec) {
  std::vector<std::vector<std::pair<std::int64_t, std::int64_t>>> out;
  for (const auto& b : hyperband_brackets(spec)) {
    out.emplace_back();
    for (const auto& r : b.rungs) out.back().emplace_back(r.trials, r.resource);
  }
  return out;
}

}  // namespace

TEST_CASE("the brackets for max_resource 81 and eta 3 are the published table", "[hyperband]") {
  const SchedulerSpec spec{SchedulerType::kHyperband, 1, 81, 3};
  // Li et al. 2017, Table 1 (R = 81, η = 3): n_i and r_i per bracket s = 4..0.
  CHECK(table(spec) == decltype(table(spec)){
                           {{81, 1}, {27, 3}, {9, 9}, {3, 27}, {1, 81}},
                           {{34, 3}, {11, 9}, {3, 27}, {1, 81}},
                           {{15, 9}, {5, 27}, {1, 81}},
                           {{8, 27}, {2, 81}},
                           {{5, 81}},
                       });
  const auto brackets = hyperband_brackets(spec);
  REQUIRE(brackets.size() == 5);
  CHECK(brackets[0].s == 4);
  CHECK(brackets[0].min_resource == 1);
  CHECK(brackets[4].s == 0);
  CHECK(brackets[4].min_resource == 81);
}

TEST_CASE("brackets follow the resource range and eta", "[hyperband]") {
  // The example: rungs at 1, 3, 9, 27.
  CHECK(table({SchedulerType::kHyperband, 1, 27, 3}) ==
        decltype(table({})){{{27, 1}, {9, 3}, {3, 9}, {1, 27}},
                            {{12, 3}, {4, 9}, {1, 27}},
                            {{6, 9}, {2, 27}},
                            {{4, 27}}});
  // A range that is not a power of eta: s_max = floor(log3(20 / 2)) = 2; brackets start at
  // 2, 6 and 20 (bracket 0 runs every trial to the end) and end at 20.
  CHECK(table({SchedulerType::kHyperband, 2, 20, 3}) ==
        decltype(table({})){{{9, 2}, {3, 6}, {1, 20}}, {{5, 6}, {1, 20}}, {{3, 20}}});
  CHECK(table({SchedulerType::kHyperband, 5, 5, 3}) == decltype(table({})){{{1, 5}}});
}

TEST_CASE("new trials are spread over the brackets in the table's proportions, interleaved",
          "[hyperband]") {
  const auto brackets = hyperband_brackets({SchedulerType::kHyperband, 1, 81, 3});
  const auto cycle = hyperband_cycle(brackets);
  REQUIRE(cycle.size() == 143);  // 81 + 34 + 15 + 8 + 5
  std::map<int, int> count;
  for (int b : cycle) ++count[b];
  CHECK(count == std::map<int, int>{{0, 81}, {1, 34}, {2, 15}, {3, 8}, {4, 5}});
  // Smooth weighted round-robin: the first trials already visit several brackets.
  CHECK(std::vector<int>(cycle.begin(), cycle.begin() + 4) == std::vector<int>{0, 1, 0, 2});
  // No bracket waits long: the largest gap between two trials of bracket s=0 (weight 5)
  // is at most twice the average, 143 / 5.
  int last = -1, widest = 0;
  for (int i = 0; i < 2 * 143; ++i) {
    if (cycle[static_cast<std::size_t>(i % 143)] != 4) continue;
    if (last >= 0) widest = std::max(widest, i - last);
    last = i;
  }
  CHECK(widest <= 2 * 143 / 5);

  TrialScheduler scheduler({SchedulerType::kHyperband, 1, 81, 3}, Direction::kMaximize);
  for (std::int64_t t = 0; t < 300; ++t) {
    CHECK(scheduler.bracket_of(t) == cycle[static_cast<std::size_t>(t % 143)]);
  }
}

TEST_CASE("each bracket is an ASHA of its own from its minimum resource", "[hyperband]") {
  const SchedulerSpec spec{SchedulerType::kHyperband, 1, 27, 3};
  TrialScheduler h(spec, Direction::kMaximize);
  const auto cycle = hyperband_cycle(h.brackets());
  auto in_bracket = [&](int b, int skip) {
    for (std::size_t t = 0;; ++t) {
      if (cycle[t] == b && skip-- == 0) return static_cast<std::int64_t>(t);
    }
  };
  // Bracket s=3 decides at epoch 1; bracket s=2 not before epoch 3.
  const std::int64_t a0 = in_bracket(0, 0), a1 = in_bracket(0, 1), a2 = in_bracket(0, 2);
  const std::int64_t b0 = in_bracket(1, 0);
  CHECK(h.report(a0, 1, 0.1).action == Action::kPause);
  CHECK(h.report(b0, 1, 0.9).action == Action::kContinue);
  CHECK(h.report(b0, 2, 0.9).action == Action::kContinue);
  auto at3 = h.report(b0, 3, 0.9);
  CHECK(at3.action == Action::kPause);  // the first result at its own first rung
  CHECK(at3.rung == 0);
  CHECK(h.rung_resource(b0) == 3);
  // Results are compared only within a bracket: b0's 0.9 does not count at bracket s=3.
  CHECK(h.report(a1, 1, 0.2).action == Action::kPause);
  CHECK(h.report(a2, 1, 0.05).action == Action::kPause);
  CHECK(h.promotable() == std::vector<std::int64_t>{a1});
  // Promotions from a higher resource come first, across brackets.
  for (int i = 1; i <= 2; ++i) h.report(in_bracket(1, i), 3, 0.5);
  CHECK(h.promotable() == std::vector<std::int64_t>{b0, a1});
  // Bracket s=0 runs every trial to the end.
  const std::int64_t c0 = in_bracket(3, 0);
  for (std::int64_t e = 1; e < 27; ++e) CHECK(h.report(c0, e, 0.0).action == Action::kContinue);
  CHECK(h.report(c0, 27, 0.0).action == Action::kComplete);
}

TEST_CASE("with no scheduler every report goes on", "[scheduler]") {
  TrialScheduler none(SchedulerSpec{}, Direction::kMinimize);
  CHECK(none.report(0, 1000, 1.0).action == Action::kContinue);
  CHECK(none.promotable().empty());
  CHECK(none.brackets().empty());
}
