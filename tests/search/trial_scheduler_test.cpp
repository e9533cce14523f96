// The study file's "scheduler" object: defaults filled, every error located,
// PBT's fields; and the rung ladder it implies.
#include "search/trial_scheduler.h"

#include <catch2/catch.hpp>

using namespace hpo::search;
using nlohmann::json;

namespace {

std::string error_of(const json& scheduler) {
  auto s = normalize_scheduler(scheduler, "s.json: scheduler");
  return s ? std::string() : s.error().message;
}

}  // namespace

TEST_CASE("an asha scheduler gets its defaults and keeps the issue's example", "[scheduler]") {
  auto n = normalize_scheduler(json{{"type", "asha"}, {"max_resource", 27}}, "s.json: scheduler");
  REQUIRE(n);
  CHECK(*n == json::parse(R"({"type": "asha", "resource": "epoch", "min_resource": 1,
                              "max_resource": 27, "reduction_factor": 3})"));
  auto spec = parse_scheduler(*n, "s.json: scheduler");
  REQUIRE(spec);
  CHECK(spec->type == SchedulerType::kAsha);
  CHECK(spec->max_resource == 27);
  CHECK(parse_scheduler(json{{"type", "hyperband"}, {"max_resource", 81.0}}, "x")->type ==
        SchedulerType::kHyperband);
  CHECK(parse_scheduler(json{{"type", "none"}}, "x")->type == SchedulerType::kNone);
}

TEST_CASE("a bad scheduler names its JSON path", "[scheduler]") {
  CHECK(error_of(json::array()) == "s.json: scheduler: must be an object, got []");
  CHECK(error_of(json::object()) ==
        "s.json: scheduler.type: missing (a string is required: none, asha, hyperband or pbt)");
  CHECK(error_of(json{{"type", "bohb"}}) ==
        "s.json: scheduler.type: unknown scheduler 'bohb' (known: none, asha, hyperband, pbt)");
  CHECK(error_of(json{{"type", "asha"}}) ==
        "s.json: scheduler.max_resource: missing (the epochs a trial runs to: an integer >= 1)");
  CHECK(error_of(json{{"type", "asha"}, {"max_resource", 27}, {"min_resource", 0}}) ==
        "s.json: scheduler.min_resource: must be an integer in [1, 1000000] (got 0)");
  CHECK(error_of(json{{"type", "asha"}, {"max_resource", 2.5}}) ==
        "s.json: scheduler.max_resource: must be an integer in [1, 1000000] (got 2.5)");
  CHECK(error_of(json{{"type", "asha"}, {"max_resource", 3}, {"min_resource", 9}}) ==
        "s.json: scheduler.max_resource: must be >= min_resource (got 3 < 9)");
  CHECK(error_of(json{{"type", "hyperband"}, {"max_resource", 27}, {"reduction_factor", 1}}) ==
        "s.json: scheduler.reduction_factor: must be an integer in [2, 1000] (got 1)");
  CHECK(error_of(json{{"type", "asha"}, {"max_resource", 27}, {"resource", "batch"}}) ==
        "s.json: scheduler.resource: must be \"epoch\" (the step number of a trial's reports; "
        "got \"batch\")");
  CHECK(error_of(json{{"type", "asha"}, {"max_resource", 27}, {"grace_period", 1}}) ==
        "s.json: scheduler.grace_period: unknown key for the asha scheduler (allowed: type, "
        "resource, min_resource, max_resource, reduction_factor)");
  CHECK(error_of(json{{"type", "none"}, {"max_resource", 27}}) ==
        "s.json: scheduler.max_resource: unknown key for the none scheduler (allowed: type)");
}

TEST_CASE("a pbt scheduler gets its defaults; population 0 stands for max_parallel",
          "[scheduler]") {
  auto n =
      normalize_scheduler(json{{"type", "pbt"}, {"max_resource", 20}, {"perturbation_interval", 4}},
                          "s.json: scheduler");
  REQUIRE(n);
  CHECK(*n == json::parse(R"({"type": "pbt", "resource": "epoch", "max_resource": 20,
                              "perturbation_interval": 4, "population": 0, "quantile": 0.25,
                              "resample_probability": 0.25})"));
  auto spec = parse_scheduler(json::parse(R"({"type": "pbt", "max_resource": 10,
      "perturbation_interval": 9, "population": 6, "quantile": 0.5, "resample_probability": 0})"),
                              "x");
  REQUIRE(spec);
  CHECK(spec->type == SchedulerType::kPbt);
  CHECK(spec->max_resource == 10);
  CHECK(spec->perturbation_interval == 9);
  CHECK(spec->population == 6);
  CHECK(spec->quantile == 0.5);
  CHECK(spec->resample_probability == 0.0);
}

TEST_CASE("a bad pbt scheduler names its JSON path", "[scheduler]") {
  const json ok = {{"type", "pbt"}, {"max_resource", 20}, {"perturbation_interval", 4}};
  auto with = [&](const char* key, const json& value) {
    json j = ok;
    if (value.is_null()) {
      j.erase(key);
    } else {
      j[key] = value;
    }
    return error_of(j);
  };
  CHECK(with("max_resource", nullptr) ==
        "s.json: scheduler.max_resource: missing (the epochs a trial runs to: an integer >= 2)");
  CHECK(with("perturbation_interval", nullptr) ==
        "s.json: scheduler.perturbation_interval: missing (the epochs between exploits: an "
        "integer below max_resource)");
  CHECK(with("perturbation_interval", 20) ==
        "s.json: scheduler.perturbation_interval: must be an integer in [1, 19] (got 20)");
  CHECK(with("perturbation_interval", 0) ==
        "s.json: scheduler.perturbation_interval: must be an integer in [1, 19] (got 0)");
  CHECK(with("max_resource", 1) ==
        "s.json: scheduler.max_resource: must be an integer in [2, 1000000] (got 1)");
  CHECK(with("population", -1) ==
        "s.json: scheduler.population: must be an integer in [0, 100000] (got -1)");
  CHECK(with("quantile", 0) == "s.json: scheduler.quantile: must be a number in (0, 0.5] (got 0)");
  CHECK(with("quantile", 0.6) ==
        "s.json: scheduler.quantile: must be a number in (0, 0.5] (got 0.6)");
  CHECK(with("resample_probability", 1.5) ==
        "s.json: scheduler.resample_probability: must be a number in [0, 1] (got 1.5)");
  CHECK(with("resample_probability", "half") ==
        "s.json: scheduler.resample_probability: must be a number in [0, 1] (got \"half\")");
  CHECK(with("min_resource", 1) ==
        "s.json: scheduler.min_resource: unknown key for the pbt scheduler (allowed: type, "
        "resource, max_resource, perturbation_interval, population, quantile, "
        "resample_probability, mutations)");
  CHECK(with("mutations", "solver.lr") ==
        "s.json: scheduler.mutations: must be a list of parameter names, as `hpo trials` shows "
        "them (got \"solver.lr\")");
  CHECK(with("mutations", json::array()).starts_with("s.json: scheduler.mutations: must be a list"));
  CHECK(with("mutations", json::array({"lr", 3})) ==
        "s.json: scheduler.mutations[1]: must be a parameter name (got 3)");
  auto spec = parse_scheduler(json{{"type", "pbt"}, {"max_resource", 20},
                                   {"perturbation_interval", 4}, {"mutations", {"lr", "wd"}}},
                              "x");
  REQUIRE(spec);
  CHECK(spec->mutations == std::vector<std::string>{"lr", "wd"});
}

TEST_CASE("rungs sit at min_resource times powers of the reduction factor", "[scheduler]") {
  CHECK(rung_resources(1, 27, 3) == std::vector<std::int64_t>{1, 3, 9});
  CHECK(rung_resources(1, 28, 3) == std::vector<std::int64_t>{1, 3, 9, 27});
  CHECK(rung_resources(2, 20, 2) == std::vector<std::int64_t>{2, 4, 8, 16});
  CHECK(rung_resources(5, 5, 3).empty());
}
