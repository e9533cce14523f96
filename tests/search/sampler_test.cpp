// The samplers are pure: the same space, options, seed, history and number
// give the same config; grid walks a fixed order and reports exhaustion.
#include <set>

#include "search/config.h"
#include "tests/search/helpers.h"

using nlohmann::json;
using namespace hpo::search;
using namespace hpo::search::test;

namespace {

json mixed_space() {
  return json::parse(R"({
      "lr": {"type": "float", "low": 1e-4, "high": 1, "log": true},
      "units": {"type": "int", "low": 8, "high": 64},
      "act": {"type": "choice", "values": ["relu", "tanh"]},
      "opt": {"type": "choice", "options": [{"type": "sgd", "m": {"type": "float", "low": 0, "high": 1}},
                                           {"type": "adam"}]},
      "conv": {"type": "blocks", "min": 0, "max": 3, "block": {"f": {"type": "int", "low": 4, "high": 32}}}})");
}

// A history of finished trials, valued by a made-up objective.
History run(Sampler& sampler, int trials) {
  History h;
  for (int i = 0; i < trials; ++i) {
    json c = ask(sampler, h);
    h.push_back(completed(i, c, c["units"].get<double>() / 64 + (c["act"] == "relu" ? 0 : 1)));
  }
  return h;
}

}  // namespace

TEST_CASE("every sampler gives the same configs for the same seed and history") {
  Space space = space_of(mixed_space());
  for (const char* type : {"random", "grid", "sobol", "halton", "tpe", "evolution", "cmaes"}) {
    INFO(type);
    json options = {{"type", type}};
    if (std::string(type) == "tpe") options["startup_trials"] = 5;
    if (std::string(type) == "evolution")
      options = {{"type", type}, {"population", 5}, {"sample_size", 2}};
    auto a = sampler_of(space, options, 11);
    auto b = sampler_of(space, options, 11);
    History ha = run(*a, 25), hb = run(*b, 25);
    for (int i = 0; i < 25; ++i) CHECK(ha[i].config == hb[i].config);
    // Asking again with the same history gives the same config (resume).
    auto c = sampler_of(space, options, 11);
    History prefix(ha.begin(), ha.begin() + 20);
    CHECK(ask(*c, prefix) == ha[20].config);
  }
}

TEST_CASE("a different seed gives different configs") {
  Space space = space_of(mixed_space());
  for (const char* type : {"random", "sobol", "tpe", "evolution", "cmaes"}) {
    INFO(type);
    auto a = sampler_of(space, json{{"type", type}}, 1);
    auto b = sampler_of(space, json{{"type", type}}, 2);
    CHECK(ask(*a, {}) != ask(*b, {}));
  }
}

TEST_CASE("grid walks every combination in a fixed order and then reports exhaustion") {
  Space space = space_of(json::parse(R"({"a": {"type": "choice", "values": ["x", "y"]},
                                        "b": {"type": "float", "low": 0, "high": 1},
                                        "n": {"type": "int", "low": 1, "high": 2}})"));
  auto grid = sampler_of(space, json{{"type", "grid"}, {"points", 3}});
  History h;
  std::set<std::string> seen;
  while (true) {
    auto c = grid->ask(h, static_cast<std::int64_t>(h.size()));
    REQUIRE(c);
    if (!*c) break;
    seen.insert(config_hash(**c));
    h.push_back(
        TrialRecord{static_cast<std::int64_t>(h.size()), TrialState::kRunning, **c, {}, {}});
    REQUIRE(h.size() <= 12);
  }
  CHECK(h.size() == 12);  // 2 x 3 x 2
  CHECK(seen.size() == 12);
  CHECK(h[0].config == json::parse(R"({"a": "x", "b": 0.0, "n": 1})"));
  CHECK(h[1].config == json::parse(R"({"a": "x", "b": 0.0, "n": 2})"));
  CHECK(h[2].config == json::parse(R"({"a": "x", "b": 0.5, "n": 1})"));
  CHECK(h[11].config == json::parse(R"({"a": "y", "b": 1.0, "n": 2})"));
}

TEST_CASE("grid skips points the history holds and covers conditional branches") {
  Space space = space_of(json::parse(R"({"opt": {"type": "choice", "options": [
      {"type": "sgd", "nesterov": {"type": "choice", "values": [true, false]}}, {"type": "adam"}]}})"));
  auto grid = sampler_of(space, json{{"type", "grid"}});
  History h{completed(0, json::parse(R"({"opt": {"type": "sgd", "nesterov": false}})"), 1.0)};
  std::set<std::string> got;
  for (int i = 0; i < 2; ++i) {
    json c = ask(*grid, h);
    got.insert(canonical(c));
    h.push_back(completed(i + 1, c, 1.0));
  }
  CHECK(got == std::set<std::string>{R"({"opt":{"nesterov":true,"type":"sgd"}})",
                                     R"({"opt":{"type":"adam"}})"});
  auto done = grid->ask(h, 3);
  REQUIRE(done);
  CHECK(!*done);
}

TEST_CASE("grid takes per-parameter point counts") {
  Space space = space_of(json::parse(R"({"a": {"type": "float", "low": 0, "high": 1},
                                        "b": {"type": "float", "low": 1, "high": 100, "log": true}})"));
  auto grid = sampler_of(
      space, json::parse(R"({"type": "grid", "points": 2, "parameter_points": {"b": 3}})"));
  History h;
  while (true) {
    auto c = grid->ask(h, 0);
    REQUIRE(c);
    if (!*c) break;
    h.push_back(completed(static_cast<std::int64_t>(h.size()), **c, 0));
  }
  REQUIRE(h.size() == 6);
  CHECK(h[1].config["b"].get<double>() == Approx(10.0));
}

TEST_CASE("the quasi-random sampler covers the unit square more evenly than random") {
  Space space = space_of(json::parse(R"({"x": {"type": "float", "low": 0, "high": 1},
                                        "y": {"type": "float", "low": 0, "high": 1}})"));
  // Count empty cells of an 8x8 grid after 64 points.
  auto empty_cells = [&](const char* type) {
    auto s = sampler_of(space, json{{"type", type}}, 5);
    std::set<int> cells;
    for (int i = 0; i < 64; ++i) {
      auto c = s->ask({}, i);
      cells.insert(static_cast<int>((**c)["x"].get<double>() * 8) * 8 +
                   static_cast<int>((**c)["y"].get<double>() * 8));
    }
    return 64 - static_cast<int>(cells.size());
  };
  CHECK(empty_cells("sobol") < 15);
  CHECK(empty_cells("halton") < 15);
  CHECK(empty_cells("sobol") < empty_cells("random"));
}

TEST_CASE("a bad sampler object is an error value") {
  Space space = space_of(mixed_space());
  auto s = make_sampler(space, json{{"type", "evolution"}, {"population", 3}, {"sample_size", 4}},
                        0, Direction::kMinimize);
  REQUIRE(!s);
  CHECK(s.error().message == "sampler.sample_size: must be <= population (got 4 > 3)");
}
