// Study files: every section is validated with a located message, and the
// defaults are filled in.
#include "search/study.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>

#include "tests/search/helpers.h"

using nlohmann::json;
using namespace hpo::search;

namespace {

json minimal() {
  return json::parse(R"({"name": "s", "objective": {"metric": "value", "direction": "minimize"},
      "trial": {"kind": "builtin", "function": "branin"},
      "space": {"x1": {"type": "float", "low": -5, "high": 10}, "x2": {"type": "float", "low": 0, "high": 15}}})");
}

std::string error_with(const std::string& pointer, const json& value) {
  json j = minimal();
  j[json::json_pointer(pointer)] = value;
  auto s = parse_study(j, "s.json");
  return s ? std::string() : s.error().message;
}

}  // namespace

TEST_CASE("a minimal study gets every default") {
  auto s = parse_study(minimal(), "s.json");
  REQUIRE(s);
  CHECK(s->name == "s");
  CHECK(s->objective_metric == "value");
  CHECK(s->direction == Direction::kMinimize);
  CHECK(s->sampler == json::parse(R"({"type": "tpe", "startup_trials": 5, "n_candidates": 24,
      "gamma": 0.1, "max_good": 25, "prior_weight": 1.0, "constant_liar": true, "max_observations": 200,
      "multivariate": true, "bandwidth": 0.02, "narrowing": 0.5})"));
  CHECK(s->pruner == json{{"type", "none"}});
  CHECK(s->seed == 0);
  CHECK(s->max_trials == 20);
  CHECK(s->max_parallel == 1);
  CHECK(s->max_seconds == 0);
  CHECK(!s->target);
  CHECK(s->max_retries == 0);
  CHECK(s->max_interruptions == 5);
  CHECK(s->trial ==
        json::parse(R"({"kind": "builtin", "function": "branin", "seconds": 1.0, "steps": 0})"));
  CHECK(s->space.parameter_count() == 2);
}

TEST_CASE("the shipped experiment files are valid studies") {
  for (const char* f :
       {"branin.json", "hartmann6.json", "fashion-mnist-mlp.json", "fashion-mnist-cnn.json",
        "fashion-mnist-cnn-asha.json", "curves.json", "command-trial/torch-asha.json"}) {
    auto s = load_study_file(std::string(HPO_SOURCE_DIR) + "/experiments/" + f);
    INFO(f);
    CHECK(s);
    if (!s) FAIL(s.error().message);
  }
}

TEST_CASE("an unknown key anywhere in a study is an error") {
  CHECK(error_with("/budjet", json::object()) ==
        "s.json: budjet: unknown key for a study (allowed: name, description, objective, sampler, "
        "pruner, scheduler, seed, budget, trial, space)");
  CHECK(error_with("/budget", json{{"max_trial", 3}}) ==
        "s.json: budget.max_trial: unknown key for the budget (allowed: max_trials, max_parallel, "
        "max_seconds, target, max_retries, max_interruptions)");
  CHECK(error_with("/sampler", json{{"type", "tpe"}, {"startup", 3}})
            .starts_with("s.json: sampler.startup: unknown key for the tpe sampler"));
}

TEST_CASE("bad study values name their path") {
  CHECK(error_with("/objective/direction", "up") ==
        "s.json: objective.direction: must be \"minimize\" or \"maximize\" (got \"up\")");
  CHECK(error_with("/budget", json{{"max_parallel", 0}}) ==
        "s.json: budget.max_parallel: must be an integer in [1, 1048576] (got 0)");
  CHECK(error_with("/budget", json{{"max_interruptions", -1}}).starts_with(
      "s.json: budget.max_interruptions: must be an integer in [0, 1000]"));
  CHECK(error_with("/seed", -1) == "s.json: seed: must be an integer >= 0 (got -1)");
  CHECK(error_with("/sampler", json{{"type", "bayes"}}) ==
        "s.json: sampler.type: unknown sampler 'bayes' (known: random, grid, sobol, halton, tpe, "
        "evolution, cmaes)");
  CHECK(error_with("/sampler", json{{"type", "tpe"}, {"bandwidth", 0}}) ==
        "s.json: sampler.bandwidth: must be in (0, 1]");
  CHECK(error_with("/sampler", json{{"type", "tpe"}, {"narrowing", -0.5}})
            .starts_with("s.json: sampler.narrowing: "));
  CHECK(error_with("/pruner", json{{"type", "median"}, {"warmup_steps", -1}}) ==
        "s.json: pruner.warmup_steps: must be an integer >= 0 (got -1)");
  CHECK(error_with("/name", "") == "s.json: name: must not be empty");
  CHECK(error_with("/space/x1/high", -6) == "s.json: space.x1.low: must be < high (got -5 >= -6)");
}

TEST_CASE("a curves trial defaults to 27 epochs of 0.1 s and needs at least one epoch") {
  json j = minimal();
  j["trial"] = json{{"kind", "builtin"}, {"function", "curves"}};
  auto s = parse_study(j, "s.json");
  REQUIRE(s);
  CHECK(s->trial == json::parse(R"({"kind": "builtin", "function": "curves", "seconds": 0.1,
                                    "steps": 27})"));
  CHECK(error_with("/trial", json{{"kind", "builtin"}, {"function", "curves"}, {"steps", 0}}) ==
        "s.json: trial.steps: must be an integer >= 1 (got 0)");
}

TEST_CASE("each trial kind is checked with its own fields") {
  CHECK(error_with("/trial", json{{"kind", "builtin"}, {"function", "rosenbrock"}}) ==
        "s.json: trial.function: unknown builtin 'rosenbrock' (known: branin, hartmann6, sleep, "
        "curves)");
  CHECK(error_with("/trial", json{{"kind", "docker"}}) ==
        "s.json: trial.kind: unknown trial kind 'docker' (known: builtin, native, command)");
  CHECK(error_with("/trial", json{{"kind", "command"}}) ==
        "s.json: trial.command: missing (a string is required)");
  CHECK(error_with("/trial", json{{"kind", "native"}, {"base", 3}}) ==
        "s.json: trial.base: must be an object (trainer config defaults)");
  // An env value may be a secret: the error names it but does not quote it.
  CHECK(error_with("/trial", json{{"kind", "command"}, {"command", "x"}, {"env", {{"A", 1234}}}}) ==
        "s.json: trial.env.A: must be a string (got a number)");
  json j = minimal();
  j["trial"] = json::parse(R"({"kind": "command", "command": "python3 t.py --lr {solver.lr}"})");
  auto s = parse_study(j, "s.json");
  REQUIRE(s);
  CHECK(s->trial == json::parse(R"({"kind": "command", "command": "python3 t.py --lr {solver.lr}",
                                    "workdir": ".", "timeout_seconds": 0.0, "env": {}})"));
}

TEST_CASE("a command trial takes threads, a whole number of at least 1") {
  json j = minimal();
  j["trial"] = json::parse(R"({"kind": "command", "command": "python3 t.py", "threads": 2})");
  auto s = parse_study(j, "s.json");
  REQUIRE(s);
  CHECK(s->trial["threads"] == 2);
  CHECK(error_with("/trial", json{{"kind", "command"}, {"command", "x"}, {"threads", 0}}) ==
        "s.json: trial.threads: must be an integer >= 1 (got 0)");
  CHECK_FALSE(
      error_with("/trial", json{{"kind", "command"}, {"command", "x"}, {"threads", 1.5}}).empty());
}

TEST_CASE("a JSON syntax error gives the file, line and column") {
  std::string path =
      hpo::search::test::temp_json_file("{\n  \"name\": \"s\",\n  \"seed\": 1,,\n}\n");
  auto s = load_study_file(path);
  std::remove(path.c_str());
  REQUIRE(!s);
  CHECK(s.error().message.starts_with(path + ":3:13: invalid JSON: "));
  auto missing = load_study_file("/nonexistent/study.json");
  REQUIRE(!missing);
  CHECK(missing.error().message ==
        "/nonexistent/study.json: cannot read: No such file or directory");
}

TEST_CASE("a study as shown has its trial.env names and no values; the spec keeps them") {
  json j = minimal();
  j["trial"] = json::parse(
      R"({"kind": "command", "command": "t.sh", "env": {"API_TOKEN": "tok-123", "B": "x"}})");
  auto s = parse_study(j, "s.json");
  REQUIRE(s);
  json shown = without_secrets(s->raw);
  CHECK(shown["trial"]["env"] == json{{"API_TOKEN", "(hidden)"}, {"B", "(hidden)"}});
  CHECK(shown.dump().find("tok-123") == std::string::npos);
  shown["trial"].erase("env");
  json rest = s->raw;
  rest["trial"].erase("env");
  CHECK(shown == rest);  // nothing else changes
  CHECK(s->raw["trial"]["env"]["API_TOKEN"] == "tok-123");
  CHECK(s->trial["env"]["API_TOKEN"] == "tok-123");  // what the agent gets
  // Other studies and malformed ones pass through.
  CHECK(without_secrets(minimal()) == minimal());
  CHECK(without_secrets(json::array()) == json::array());
  CHECK(without_secrets(json{{"trial", {{"env", "A=1"}}}})["trial"]["env"] == "(hidden)");
}

TEST_CASE("a pbt study's mutations must name parameters of its space") {
  json j = minimal();
  j["space"] = {{"lr", {{"type", "float"}, {"low", 0.01}, {"high", 0.1}}},
                {"units", {{"type", "int"}, {"low", 8}, {"high", 64}}}};
  j["scheduler"] = {{"type", "pbt"}, {"max_resource", 8}, {"perturbation_interval", 2},
                    {"mutations", {"lr", "units"}}};
  auto ok = parse_study(j, "s.json");
  REQUIRE(ok);
  CHECK(ok->schedule.mutations == std::vector<std::string>{"lr", "units"});
  j["scheduler"]["mutations"] = {"lr", "momentum"};
  auto bad = parse_study(j, "s.json");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message ==
        "s.json: scheduler.mutations[1]: 'momentum' names no parameter of the space (its "
        "parameters: lr, units)");
}
