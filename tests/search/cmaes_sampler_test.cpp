// CMA-ES: a pure replay of the history (same history, same config, also after
// a resume), inside the space, converging where random search does not, with
// choices and conditional parameters left to TPE.
#include <cmath>
#include <map>

#include "search/internal.h"
#include "tests/search/helpers.h"

using nlohmann::json;
using namespace hpo::search;
using namespace hpo::search::test;

namespace {

json sphere_space(int dims, bool log_int = false) {
  json space = json::object();
  for (int i = 0; i < dims; ++i) {
    space["x" + std::to_string(i)] = {{"type", "float"}, {"low", -5}, {"high", 5}};
  }
  if (log_int) space["k"] = {{"type", "int"}, {"low", 1}, {"high", 1000}, {"log", true}};
  return space;
}

// The squared distance to a shifted optimum, normalised by the range (10).
double sphere(const json& c, int dims) {
  double sum = 0;
  for (int i = 0; i < dims; ++i) {
    const double d = (c["x" + std::to_string(i)].get<double>() - (1.5 - 0.7 * i)) / 10;
    sum += d * d;
  }
  return sum;
}

// Runs `trials` asks on the sphere, telling each result at once; returns the history.
History run_sphere(Sampler& sampler, int dims, int trials) {
  History h;
  for (int i = 0; i < trials; ++i) {
    json c = ask(sampler, h);
    h.push_back(completed(i, c, sphere(c, dims)));
  }
  return h;
}

double best_of(const History& h) {
  double best = INFINITY;
  for (const auto& t : h) {
    if (t.value) best = std::min(best, *t.value);
  }
  return best;
}

std::string option_error(const json& options) {
  Space space = space_of(sphere_space(2));
  auto s = make_sampler(space, options, 1, Direction::kMinimize);
  return s ? std::string() : s.error().message;
}

}  // namespace

TEST_CASE("cmaes gives the same config for the same history and seed, and after a resume") {
  Space space = space_of(sphere_space(3, true));
  auto cma = sampler_of(space, json{{"type", "cmaes"}}, 7);
  History h;
  for (int i = 0; i < 60; ++i) {
    json c = ask(*cma, h);
    // A resumed study: a new sampler rebuilt from the same history asks the same.
    if (i % 9 == 0) CHECK(ask(*sampler_of(space, json{{"type", "cmaes"}}, 7), h) == c);
    CHECK(ask(*cma, h) == c);
    h.push_back(completed(i, c, sphere(c, 3) + c["k"].get<double>() / 1000));
  }
  CHECK(ask(*sampler_of(space, json{{"type", "cmaes"}}, 7), h) == ask(*cma, h));
  CHECK(ask(*sampler_of(space, json{{"type", "cmaes"}}, 8), h) != ask(*cma, h));
}

TEST_CASE("cmaes configs stay inside the space: log floats and ints with a step") {
  Space space = space_of(json::parse(R"({
      "lr": {"type": "float", "low": 1e-5, "high": 0.1, "log": true},
      "units": {"type": "int", "low": 16, "high": 512, "step": 16},
      "layers": {"type": "int", "low": 1, "high": 64, "log": true},
      "drop": {"type": "float", "low": 0, "high": 0.5, "step": 0.1}})"));
  auto cma = sampler_of(space, json{{"type", "cmaes"}, {"sigma0", 0.5}}, 3);
  History h;
  for (int i = 0; i < 200; ++i) {
    json c = ask(*cma, h);
    const double lr = c["lr"].get<double>();
    const std::int64_t units = c["units"].get<std::int64_t>(),
                       layers = c["layers"].get<std::int64_t>();
    const double drop = c["drop"].get<double>();
    REQUIRE(lr >= 1e-5);
    REQUIRE(lr <= 0.1);
    REQUIRE(units >= 16);
    REQUIRE(units <= 512);
    REQUIRE(units % 16 == 0);
    REQUIRE(layers >= 1);
    REQUIRE(layers <= 64);
    REQUIRE(drop >= 0);
    REQUIRE(drop <= 0.5 + 1e-12);
    REQUIRE(std::fabs(drop * 10 - std::round(drop * 10)) < 1e-9);
    // Pushes every parameter against a bound, where draws fall outside the cube most.
    h.push_back(completed(i, c, std::log(lr) - units - layers + drop));
  }
}

TEST_CASE("cmaes converges on a shifted 5-d sphere where random search does not") {
  Space space = space_of(sphere_space(5));
  auto cma = sampler_of(space, json{{"type", "cmaes"}}, 11);
  auto random = sampler_of(space, json{{"type", "random"}}, 11);
  const double cma_best = best_of(run_sphere(*cma, 5, 300));
  const double random_best = best_of(run_sphere(*random, 5, 300));
  CHECK(cma_best < 1e-4);
  CHECK(random_best > 1e-3);
}

TEST_CASE("cmaes leaves choices and conditional parameters to TPE, which learns the category") {
  Space space = space_of(json::parse(R"({
      "x": {"type": "float", "low": 0, "high": 1},
      "y": {"type": "float", "low": 0, "high": 1},
      "act": {"type": "choice", "values": ["relu", "tanh", "gelu"]},
      "slope": {"type": "float", "low": 0, "high": 1, "when": {"act": "relu"}}})"));
  auto cma = sampler_of(space, json{{"type", "cmaes"}}, 5);
  History h;
  std::map<std::string, int> late;
  int slopes = 0;
  for (int i = 0; i < 150; ++i) {
    json c = ask(*cma, h);
    const std::string act = c["act"].get<std::string>();
    REQUIRE(c.contains("slope") == (act == "relu"));
    if (c.contains("slope")) {
      const double s = c["slope"].get<double>();
      REQUIRE((s >= 0 && s <= 1));
      ++slopes;
    }
    if (i >= 100) ++late[act];
    const double x = c["x"].get<double>() - 0.3, y = c["y"].get<double>() - 0.6;
    h.push_back(completed(i, c, x * x + y * y + (act == "gelu" ? 0.0 : 0.5)));
  }
  CHECK(slopes > 0);
  CHECK(late["gelu"] > late["relu"]);
  CHECK(late["gelu"] > late["tanh"]);
  CHECK(late["gelu"] >= 25);
}

TEST_CASE("bad cmaes options fail with an error that names the option") {
  CHECK(option_error(json{{"type", "cmaes"}, {"popsize", 1}}) ==
        "sampler.popsize: must be 0 (automatic) or >= 2 (got 1)");
  CHECK(option_error(json{{"type", "cmaes"}, {"popsize", -3}}).starts_with("sampler.popsize: "));
  CHECK(option_error(json{{"type", "cmaes"}, {"popsize", 2.5}}).starts_with("sampler.popsize: "));
  CHECK(option_error(json{{"type", "cmaes"}, {"sigma0", 0}}) ==
        "sampler.sigma0: must be in (0, 1]");
  CHECK(option_error(json{{"type", "cmaes"}, {"sigma0", 1.5}}) ==
        "sampler.sigma0: must be in (0, 1]");
  CHECK(option_error(json{{"type", "cmaes"}, {"sigma0", "wide"}}).starts_with("sampler.sigma0: "));
  CHECK(option_error(json{{"type", "cmaes"}, {"startup_trials", -1}})
            .starts_with("sampler.startup_trials: "));
  CHECK(option_error(json{{"type", "cmaes"}, {"sigma", 0.2}})
            .starts_with("sampler.sigma: unknown key for the cmaes sampler"));
  CHECK(option_error(json{{"type", "cmaes"}, {"popsize", 6}, {"sigma0", 0.3}}).empty());
}

TEST_CASE("cmaes: pending and failed trials do not break it and do not enter an update") {
  Space space = space_of(sphere_space(3));
  auto cma = sampler_of(space, json{{"type", "cmaes"}, {"popsize", 4}}, 2);
  History h = run_sphere(*cma, 3, 21);
  // Trials 21..26 are running, queued, failed or pruned: only their configs differ.
  History a = h, b = h;
  const TrialState states[] = {TrialState::kRunning, TrialState::kQueued,  TrialState::kFailed,
                               TrialState::kPruned,  TrialState::kRunning, TrialState::kRunning};
  for (int i = 0; i < 6; ++i) {
    const std::optional<double> value =
        states[i] == TrialState::kPruned ? std::optional<double>(-100.0) : std::nullopt;
    json near = h[0].config, far = h[0].config;
    for (auto& [k, v] : far.items()) v = i % 2 ? 5.0 : -5.0;
    a.push_back(TrialRecord{21 + i, states[i], near, value, {}});
    b.push_back(TrialRecord{21 + i, states[i], far, value, {}});
  }
  json from_a = ask(*sampler_of(space, json{{"type", "cmaes"}, {"popsize", 4}}, 2), a);
  CHECK(ask(*sampler_of(space, json{{"type", "cmaes"}, {"popsize", 4}}, 2), b) == from_a);
  CHECK(ask(*cma, a) == from_a);
  CHECK(ask(*cma, b) == from_a);
  // When a pending trial finishes, it does enter the replay.
  a[21].state = TrialState::kCompleted;
  a[21].value = -1.0;
  a.push_back(completed(27, a[0].config, 1.0));
  a.push_back(completed(28, a[0].config, 1.0));
  a.push_back(completed(29, a[0].config, 1.0));
  json after = ask(*sampler_of(space, json{{"type", "cmaes"}, {"popsize", 4}}, 2), a);
  CHECK(ask(*cma, a) == after);
}

TEST_CASE("a cmaes ask at 10,000 finished trials replays from its cache as a cold sampler would") {
  constexpr int kDims = 8;
  Space space = space_of(sphere_space(kDims));
  auto random = sampler_of(space, json{{"type", "random"}}, 4);
  History h;
  for (int i = 0; i < 9990; ++i) {
    json c = ask(*random, h);
    h.push_back(completed(i, c, sphere(c, kDims)));
  }
  auto warm = sampler_of(space, json{{"type", "cmaes"}}, 9);
  json first = ask(*warm, h);
  CHECK(ask(*warm, h) == first);  // the second ask is served from the cache
  for (int i = 9990; i < 10000; ++i) h.push_back(completed(i, ask(*warm, h), 0.5 - i * 1e-6));
  json next = ask(*warm, h);
  CHECK(ask(*sampler_of(space, json{{"type", "cmaes"}}, 9), h) == next);
  // An old trial that changed (it never does in a study) replays from there on.
  h[5].value = -1.0;
  json changed = ask(*warm, h);
  CHECK(ask(*sampler_of(space, json{{"type", "cmaes"}}, 9), h) == changed);
  CHECK(changed != next);
}
