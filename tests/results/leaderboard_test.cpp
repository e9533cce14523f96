// Store::leaderboard and parse_filter.
#include <catch2/catch.hpp>

#include "tests/results/fixtures.h"

using namespace hpo::results;
using namespace hpo::results::testing;
using nlohmann::json;

namespace {

std::vector<std::int64_t> numbers(const std::vector<LeaderboardEntry>& entries) {
  std::vector<std::int64_t> out;
  for (const auto& e : entries) out.push_back(e.trial.number);
  return out;
}

// Five completed trials with nested configs, one failed and one running.
struct Board {
  TempDir dir;
  Store store = open_writer(dir / "hpo.db");
  std::int64_t study = 0;

  explicit Board(Direction direction) {
    study = ok(store.create_study(study_row("s", direction)));
    const double values[] = {0.5, 0.9, 0.7, 0.9, 0.1};
    const char* optimizers[] = {"sgd", "adam", "sgd", "adam", "sgd"};
    for (int n = 0; n < 5; ++n) {
      json config = {{"lr", n == 4 ? 0.01 : 0.1},
                     {"batch_size", 64 * (n % 2 + 1)},
                     {"nesterov", n % 2 == 0},
                     {"optimizer", {{"type", optimizers[n]}}},
                     {"net", {{"dense", json::array({{{"units", 128 * (n + 1)}}})}}}};
      auto id = completed_trial(store, study, n, config, values[n]);
      ok(store.record_metric(id, 1, "val_loss", 1.0 - values[n] + 0.3, 1.0));
      ok(store.record_metric(id, 2, "val_loss", 1.0 - values[n], 1.0));
    }
    auto failed = ok(store.add_trial(study, 5, json{{"lr", 9.0}}, "h", 1.0));
    ok(store.start_trial(failed, 1, "L", "a", "", 1.0));
    ok(store.finish_trial(failed, TrialState::kFailed, 99.0, "diverged", "nan", 2.0));
    auto running = ok(store.add_trial(study, 6, json{{"lr", 9.0}}, "h", 1.0));
    ok(store.start_trial(running, 1, "L", "a", "", 1.0));
    ok(store.record_metric(running, 1, "val_accuracy", 5.0, 1.0));
  }
};

LeaderboardQuery where(std::initializer_list<const char*> filters) {
  LeaderboardQuery q;
  for (const char* f : filters) q.where.push_back(ok(parse_filter(f)));
  return q;
}

}  // namespace

TEST_CASE("a maximizing study ranks its completed trials best first, ties by number") {
  Board b(Direction::kMaximize);
  auto top = ok(b.store.leaderboard(b.study, {}));
  CHECK(numbers(top) == std::vector<std::int64_t>{1, 3, 2, 0, 4});
  CHECK(top[0].rank == 1);
  CHECK(top[0].score == 0.9);
  CHECK(top[4].rank == 5);
  CHECK(top[0].trial.config["optimizer"]["type"] == "adam");
}

TEST_CASE("a minimizing study ranks the lowest value first") {
  Board b(Direction::kMinimize);
  LeaderboardQuery q;
  q.top = 2;
  CHECK(numbers(ok(b.store.leaderboard(b.study, q))) == std::vector<std::int64_t>{4, 0});
  q.direction = Direction::kMaximize;  // an explicit direction wins
  CHECK(numbers(ok(b.store.leaderboard(b.study, q))) == std::vector<std::int64_t>{1, 3});
}

TEST_CASE("top limits the board and 0 shows every ranked trial") {
  Board b(Direction::kMaximize);
  LeaderboardQuery q;
  q.top = 3;
  CHECK(ok(b.store.leaderboard(b.study, q)).size() == 3);
  q.top = 0;
  CHECK(ok(b.store.leaderboard(b.study, q)).size() == 5);
}

TEST_CASE("where filters match strings, numbers, booleans, nested paths and list items") {
  Board b(Direction::kMaximize);
  CHECK(numbers(ok(b.store.leaderboard(b.study, where({"optimizer.type=adam"})))) ==
        std::vector<std::int64_t>{1, 3});
  CHECK(numbers(ok(b.store.leaderboard(b.study, where({"lr=0.01"})))) ==
        std::vector<std::int64_t>{4});
  CHECK(numbers(ok(b.store.leaderboard(b.study, where({"batch_size=128.0"})))) ==
        std::vector<std::int64_t>{1, 3});
  CHECK(numbers(ok(b.store.leaderboard(b.study, where({"nesterov=true", "lr=0.1"})))) ==
        std::vector<std::int64_t>{2, 0});
  CHECK(numbers(ok(b.store.leaderboard(b.study, where({"net.dense[0].units=384"})))) ==
        std::vector<std::int64_t>{2});
  CHECK(ok(b.store.leaderboard(b.study, where({"optimizer.type=rmsprop"}))).empty());
  CHECK(ok(b.store.leaderboard(b.study, where({"missing.param=1"}))).empty());
  // A number is not the string that spells it.
  CHECK(ok(b.store.leaderboard(b.study, where({"optimizer.type=1"}))).empty());
}

TEST_CASE("another metric ranks by its best or its last reported value") {
  Board b(Direction::kMaximize);
  LeaderboardQuery q;
  q.metric = "val_loss";
  q.direction = Direction::kMinimize;
  auto best = ok(b.store.leaderboard(b.study, q));
  CHECK(numbers(best) == std::vector<std::int64_t>{1, 3, 2, 0, 4});
  CHECK(best[0].score == Approx(0.1));
  q.aggregate = Aggregate::kLast;
  q.direction = Direction::kMaximize;
  auto last = ok(b.store.leaderboard(b.study, q));
  CHECK(numbers(last) == std::vector<std::int64_t>{4, 0, 2, 1, 3});
  CHECK(last[0].score == Approx(0.9));
  q.aggregate = Aggregate::kBest;  // best of val_loss when maximizing: the largest
  CHECK(ok(b.store.leaderboard(b.study, q))[0].score == Approx(1.2));
}

TEST_CASE("the states to rank can include running and failed trials") {
  Board b(Direction::kMaximize);
  LeaderboardQuery q;
  q.states = {TrialState::kCompleted, TrialState::kFailed};
  CHECK(ok(b.store.leaderboard(b.study, q))[0].trial.number == 5);
  q.metric = "val_accuracy";
  q.states = {TrialState::kRunning};
  auto running = ok(b.store.leaderboard(b.study, q));
  REQUIRE(running.size() == 1);
  CHECK(running[0].trial.number == 6);
  q.states.clear();
  CHECK_FALSE(b.store.leaderboard(b.study, q));
}

TEST_CASE("a leaderboard of an unknown study is an error") {
  Board b(Direction::kMaximize);
  auto r = b.store.leaderboard(b.study + 7, {});
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("no study"));
}

TEST_CASE("a filter reads param=value, JSON when it can and a bare word otherwise") {
  auto f = ok(parse_filter("solver.lr=1e-3"));
  CHECK(f.path == "solver.lr");
  CHECK(f.value == 0.001);
  CHECK(ok(parse_filter("optimizer.type=adam")).value == "adam");
  CHECK(ok(parse_filter("name=\"128\"")).value == "128");
  CHECK(ok(parse_filter("flag=false")).value == false);
  CHECK(ok(parse_filter("a=b=c")).value == "b=c");
  CHECK(ok(parse_filter("net.conv[1].filters=32")).path == "net.conv[1].filters");
  for (const char* bad : {"noequals", "=3", "a..b=1", "a.=1", "a[x]=1", "a[=1", "a[]=1"}) {
    INFO(bad);
    CHECK_FALSE(parse_filter(bad));
  }
}

TEST_CASE("a path with SQL in it is only ever a value") {
  Board b(Direction::kMaximize);
  auto q = where({"x') OR 1=1 --=1"});
  CHECK(ok(b.store.leaderboard(b.study, q)).empty());
  CHECK(ok(b.store.list_studies()).size() == 1);
}
