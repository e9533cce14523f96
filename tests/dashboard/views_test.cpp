// dashboard/views.h: the answers of the JSON API, on real stores.
#include <catch2/catch.hpp>
#include <map>

#include "dashboard/views.h"
#include "results/cli_common.h"
#include "tests/dashboard/fixtures.h"

using namespace hpo;
using namespace hpo::dashboard;
using namespace hpo::dashboard::testing;
using nlohmann::json;
using search::TrialState;

namespace {

struct ViewsStudy {
  TempDir dir;
  results::Store store = open_writer(dir / "hpo.db");
  std::int64_t study = ok(store.create_study(spaced_study()));

  json get(const std::string& path, Params params = {{"name", "s"}}, int status = 200) {
    Answer a = answer(store, path, params, 1000.0);
    INFO(path << " " << a.body.dump());
    CHECK(a.status == status);
    return a.body;
  }
};

json config_of(double x, double y, const char* opt) { return {{"x", x}, {"y", y}, {"opt", opt}}; }

}  // namespace

TEST_CASE("the history holds one point per completed trial and a best-so-far line that only improves") {
  ViewsStudy v;
  const double values[] = {0.3, 0.5, 0.4, 0.9, 0.2};
  for (int n = 0; n < 5; ++n) {
    run_trial(v.store, v.study, n, config_of(0.1 * n, 0.5, "sgd"), values[n], "a", n, n + 1);
  }
  run_trial(v.store, v.study, 5, config_of(0.6, 0.5, "sgd"), 0.95, "a", 6, 7, TrialState::kPruned);
  run_trial(v.store, v.study, 6, config_of(0.7, 0.5, "sgd"), std::nullopt, "a", 7, 8);
  const json h = v.get("/api/history");
  CHECK(h["completed"] == 5);
  REQUIRE(h["points"].size() == 5);
  CHECK(h["points"][3][0] == 3);
  CHECK(h["points"][3][1] == 0.9);
  CHECK(h["downsampled"] == false);
  // Steps at 0 (0.3), 1 (0.5), 3 (0.9), then the line carried to the last trial (4).
  CHECK(h["best"] == json::parse("[[0,0.3],[1,0.5],[3,0.9],[4,0.9]]"));
}

TEST_CASE("a history of more than 5,000 completed trials keeps each bucket's best and worst") {
  ViewsStudy v;
  auto tx = ok(v.store.begin());
  const int n = 12'000;
  for (int i = 0; i < n; ++i) {
    std::string tag = std::to_string(i);
    auto id = ok(v.store.add_trial(v.study, i, json{{"x", 0.5}}, std::string("h").append(tag), i));
    ok(v.store.start_trial(id, 1, "L", "a", "", i));
    // The best trial is 7,345; every value differs.
    const double value = i == 7'345 ? 2.0 : std::sin(i) * 0.5 + 0.5;
    ok(v.store.finish_trial(id, TrialState::kCompleted, value, "", "", i + 1));
  }
  ok(tx.commit());
  const json h = v.get("/api/history");
  CHECK(h["completed"] == n);
  CHECK(h["downsampled"] == true);
  CHECK(h["points"].size() <= 4'000);
  CHECK(h["points"].size() >= 2'000);
  bool best_kept = false;
  double last_number = -1;
  for (const auto& p : h["points"]) {
    best_kept = best_kept || (p[0] == 7'345 && p[1] == 2.0);
    CHECK(p[0].get<double>() > last_number);  // still in trial order
    last_number = p[0].get<double>();
  }
  CHECK(best_kept);
  CHECK(h["best"].back() == json::parse("[11999, 2.0]"));
}

TEST_CASE("the leaderboard answer holds the rows hpo leaderboard prints, with top and where") {
  ViewsStudy v;
  for (int n = 0; n < 6; ++n) {
    run_trial(v.store, v.study, n, config_of(0.1 * n, 0.2, n % 2 ? "adam" : "sgd"), 0.1 * n, "a",
              n, n + 1);
  }
  const json all = v.get("/api/leaderboard");
  auto row = ok(v.store.find_study("s"));
  auto frame = ok(results::cli_detail::leaderboard_frame(v.store, *row, {}, false));
  CHECK(all["rows"] == json(frame.frame.to_json()));
  CHECK(all["ranked"] == 6);
  CHECK(all["total"] == 6);
  CHECK(all["score"] == "val_accuracy");
  CHECK(all["rows"][0]["trial"] == 5);
  CHECK(all["columns"][0] == "rank");

  const json some = v.get("/api/leaderboard", {{"name", "s"}, {"where", "opt=adam"}, {"top", "2"}});
  REQUIRE(some["rows"].size() == 2);
  CHECK(some["rows"][0]["trial"] == 5);
  CHECK(some["rows"][1]["trial"] == 3);
  CHECK(v.get("/api/leaderboard", {{"name", "s"}, {"where", "nonsense"}}, 400)["error"]
            .get<std::string>()
            .find("where") != std::string::npos);
}

TEST_CASE("the timeline lays each agent's runs on slots that never overlap, running ones to now") {
  ViewsStudy v;
  // Agent a runs two at a time, b one; trial 4 still runs.
  run_trial(v.store, v.study, 0, config_of(0, 0, "sgd"), 0.1, "a", 0, 10);
  run_trial(v.store, v.study, 1, config_of(0, 0, "sgd"), 0.2, "a", 1, 5);
  run_trial(v.store, v.study, 2, config_of(0, 0, "sgd"), 0.3, "a", 5, 9);
  run_trial(v.store, v.study, 3, config_of(0, 0, "sgd"), 0.4, "b", 2, 8, TrialState::kPruned);
  run_trial(v.store, v.study, 4, config_of(0, 0, "sgd"), std::nullopt, "a", 10, 11);
  const json t = v.get("/api/timeline");
  CHECK(t["lanes"] == json::parse(R"(["a/0", "a/1", "b/0"])"));
  REQUIRE(t["bars"].size() == 5);
  std::map<int, std::vector<std::pair<double, double>>> lanes;
  for (const auto& bar : t["bars"]) {
    lanes[bar["lane"].get<int>()].emplace_back(bar["start"].get<double>(), bar["end"].get<double>());
    if (bar["number"] == 4) {
      CHECK(bar["state"] == "RUNNING");
      CHECK(bar["end"] == 1000.0);  // now
    }
    if (bar["number"] == 3) CHECK(bar["state"] == "PRUNED");
  }
  for (auto& [lane, bars] : lanes) {
    std::sort(bars.begin(), bars.end());
    for (std::size_t i = 1; i < bars.size(); ++i) CHECK(bars[i].first >= bars[i - 1].second);
  }
  CHECK(lanes[2].size() == 1);  // b's one run
}

TEST_CASE("curves show the running trials first, then the best, then the pruned, each with its steps") {
  ViewsStudy v;
  for (int n = 0; n < 4; ++n) run_trial(v.store, v.study, n, config_of(0, 0, "sgd"), 0.1 * n, "a", n, n + 1);
  run_trial(v.store, v.study, 4, config_of(0, 0, "sgd"), 0.05, "a", 5, 6, TrialState::kPruned);
  run_trial(v.store, v.study, 5, config_of(0, 0, "sgd"), std::nullopt, "a", 6, 7);
  const json c = v.get("/api/curves", {{"name", "s"}, {"limit", "5"}});
  CHECK(c["metric"] == "val_accuracy");
  CHECK(c["metrics"] == json::parse(R"(["val_accuracy", "val_loss"])"));
  std::vector<std::pair<int, std::string>> order;
  for (const auto& t : c["trials"]) {
    order.emplace_back(t["number"].get<int>(), t["state"].get<std::string>());
    CHECK(t["points"].size() == 2);
  }
  // limit 5: one running, the best three completed, the pruned one last.
  CHECK(order == std::vector<std::pair<int, std::string>>{
                     {5, "RUNNING"}, {3, "COMPLETED"}, {2, "COMPLETED"}, {1, "COMPLETED"}, {4, "PRUNED"}});
  const json loss = v.get("/api/curves", {{"name", "s"}, {"metric", "val_loss"}});
  CHECK(loss["trials"][0]["points"][0] == json::parse("[2, 0.5]"));  // the running trial: 1 - 0.5
}

TEST_CASE("parallel coordinates and slices read the parameters of the completed trials") {
  ViewsStudy v;
  for (int n = 0; n < 4; ++n) {
    run_trial(v.store, v.study, n, config_of(0.25 * n, 0.001 * std::pow(10, n), n % 2 ? "adam" : "sgd"),
              0.1 * n, "a", n, n + 1);
  }
  const json p = v.get("/api/parallel");
  REQUIRE(p["params"].size() == 3);
  CHECK(p["params"][0]["name"] == "opt");  // first seen in the stored (sorted) config
  CHECK(p["params"][0]["kind"] == "category");
  CHECK(p["params"][0]["categories"] == json::parse(R"(["adam", "sgd"])"));
  CHECK(p["params"][2]["name"] == "y");
  CHECK(p["params"][2]["log"] == true);   // 0.001 .. 1: three decades
  CHECK(p["params"][1]["log"] == false);  // x: 0 .. 0.75
  REQUIRE(p["rows"].size() == 4);
  CHECK(p["rows"][0] == json::parse(R"(["adam", 0.75, 1.0, 0.30000000000000004, 3])"));

  const json s = v.get("/api/slice");
  CHECK(s["x"] == "x");
  CHECK(s["y"] == "y");
  CHECK(s["points"].size() == 4);
  const json only_x = v.get("/api/slice", {{"name", "s"}, {"x", "opt"}, {"y", ""}});
  CHECK(only_x["y"].is_null());
  CHECK(only_x["points"][0][0] == "adam");
  CHECK(v.get("/api/slice", {{"name", "s"}, {"x", "nope"}}, 400)["error"].get<std::string>().find(
            "'nope'") != std::string::npos);
}

TEST_CASE("importance puts the one parameter the objective depends on first") {
  ViewsStudy v;
  for (int n = 0; n < 60; ++n) {
    const double x = (n * 37 % 60) / 60.0, y = (n * 13 % 60) / 60.0;
    run_trial(v.store, v.study, n, config_of(x, y, n % 2 ? "adam" : "sgd"), 10 * x, "a", n, n + 1);
  }
  const json i = v.get("/api/importance");
  REQUIRE(i["parameters"].size() >= 1);
  CHECK(i["parameters"][0]["name"] == "x");
  CHECK(i["parameters"][0]["importance"].get<double>() > 0.9);
  CHECK(i["trials_used"] == 60);
  CHECK(i["method"].get<std::string>().find("fANOVA") != std::string::npos);

  ViewsStudy empty;
  CHECK(empty.get("/api/importance")["note"].get<std::string>().find("2") != std::string::npos);
}

TEST_CASE("a trial's answer holds its config, metrics, state history, log and PBT lineage") {
  ViewsStudy v;
  auto parent = run_trial(v.store, v.study, 0, config_of(0.1, 0.2, "sgd"), 0.4, "a", 0, 1);
  auto child = ok(v.store.add_trial(v.study, 1, config_of(0.1, 0.3, "sgd"), "h1", 2));
  ok(v.store.inherit(child, parent, 0, 2));
  ok(v.store.start_trial(child, 1, "L1", "b", "", 3));
  ok(v.store.finish_trial(child, TrialState::kFailed, std::nullopt, "diverged", "loss is nan", 4));
  const json t = v.get("/api/trial", {{"name", "s"}, {"number", "1"}});
  CHECK(t["state"] == "FAILED");
  CHECK(t["error"] == "diverged");
  CHECK(t["log_tail"] == "loss is nan");
  CHECK(t["params"]["y"] == 0.3);
  CHECK(t["config"]["opt"] == "sgd");
  CHECK(t["lineage"] == json::parse(R"([{"number": 0, "parent_step": 2}])"));
  CHECK(t["metrics"]["val_accuracy"].size() == 2);  // inherited from the parent
  std::vector<std::string> kinds;
  for (const auto& e : t["events"]) kinds.push_back(e["kind"]);
  REQUIRE(kinds.size() >= 2);
  CHECK(kinds[kinds.size() - 2] == "assigned");
  CHECK(kinds.back() == "failed");
}

TEST_CASE("unknown studies, trials and paths and bad parameters are answers that name them") {
  ViewsStudy v;
  CHECK(v.get("/api/history", {{"name", "t"}}, 404)["error"] == "no study 't' (studies: s)");
  CHECK(v.get("/api/history", {}, 400)["error"].get<std::string>().find("'name'") != std::string::npos);
  CHECK(v.get("/api/trial", {{"name", "s"}, {"number", "7"}}, 404)["error"] ==
        "study 's' has no trial 7");
  CHECK(v.get("/api/trial", {{"name", "s"}, {"number", "x1"}}, 400)["error"]
            .get<std::string>()
            .find("'number'") != std::string::npos);
  CHECK(v.get("/api/curves", {{"name", "s"}, {"limit", "0"}}, 400)["error"]
            .get<std::string>()
            .find("'limit'") != std::string::npos);
  CHECK(v.get("/api/drop", {}, 404)["error"].get<std::string>().find("/api/drop") != std::string::npos);
  CHECK(v.get("/api/studies", {})["studies"][0]["name"] == "s");
}

TEST_CASE("a study's summary counts its trials by state and gives an ETA from its budget") {
  ViewsStudy v;
  for (int n = 0; n < 5; ++n) run_trial(v.store, v.study, n, config_of(0, 0, "sgd"), 0.1 * n, "a", 1000, 1000);
  run_trial(v.store, v.study, 5, config_of(0, 0, "sgd"), std::nullopt, "a", 1000, 1000);
  // Created at 1000 (fixtures), now 1000 + 100: 5 done in 100 s of a 20-trial budget.
  Answer a = answer(v.store, "/api/study", {{"name", "s"}}, 1100.0);
  REQUIRE(a.status == 200);
  CHECK(a.body["counts"] == json::parse(R"({"COMPLETED": 5, "RUNNING": 1})"));
  CHECK(a.body["best"] == 0.4);
  CHECK(a.body["best_trial"] == 4);
  CHECK(a.body["sampler"] == "tpe");
  CHECK(a.body["eta_s"].get<double>() == Approx(300.0));  // 15 more at 20 s each
  CHECK(a.body["metrics"] == json::parse(R"(["val_accuracy", "val_loss"])"));
  CHECK(a.body["params"].size() == 3);
}

TEST_CASE("the canonical key sorts parameters by name and encodes values like encodeURIComponent") {
  CHECK(canonical_key("/api/curves", {{"name", "a b/c"}, {"metric", "loss"}}) ==
        "api/curves?metric=loss&name=a%20b%2Fc");
  CHECK(canonical_key("/api/leaderboard", {{"where", "x=2"}, {"name", "s"}, {"where", "a=1"}}) ==
        "api/leaderboard?name=s&where=x%3D2&where=a%3D1");
  CHECK(canonical_key("/api/studies", {}) == "api/studies");
  CHECK(canonical_key("/api/trial", {{"name", "é-_.!~*'()"}}) == "api/trial?name=%C3%A9-_.!~*'()");
}

TEST_CASE("a study's trials are read once per mark and read again once the mark changes") {
  ViewsStudy v;
  run_trial(v.store, v.study, 0, config_of(0, 0, "sgd"), 0.1, "a", 0, 1);
  BriefsCache cache;
  auto first = ok(cache.get(v.store, v.study, 1));
  CHECK(first->size() == 1);
  run_trial(v.store, v.study, 1, config_of(0, 0, "sgd"), 0.2, "a", 1, 2);
  CHECK(ok(cache.get(v.store, v.study, 1)) == first);  // the same read, shared
  CHECK(ok(cache.get(v.store, v.study, 2))->size() == 2);
  // Through answer(): the history follows the mark it is given.
  CHECK(answer(v.store, "/api/history", {{"name", "s"}}, 0, &cache, 2).body["completed"] == 2);
}
