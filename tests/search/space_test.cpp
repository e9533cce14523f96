// The space language: every parameter kind samples inside its domain, and
// conditions, nested choices and blocks build the configs the README shows.
#include <cmath>
#include <random>
#include <set>

#include "search/internal.h"
#include "tests/search/helpers.h"

using nlohmann::json;
using namespace hpo::search;
using hpo::search::test::space_of;

namespace {

std::vector<json> draw(const Space& space, int n, std::uint64_t seed = 3) {
  std::vector<json> out;
  for (int i = 0; i < n; ++i) {
    auto rng = detail::make_rng(seed, i);
    detail::RandomDecider d(rng);
    out.push_back(space.sample(d));
  }
  return out;
}

}  // namespace

TEST_CASE("a float parameter samples inside its range, on a log scale too") {
  auto space = space_of(json::parse(R"({"a": {"type": "float", "low": -2, "high": 3},
                                        "lr": {"type": "float", "low": 1e-4, "high": 1, "log": true}})"));
  int small = 0;
  for (const auto& c : draw(space, 400)) {
    CHECK(c["a"].is_number_float());
    CHECK(c["a"].get<double>() >= -2);
    CHECK(c["a"].get<double>() <= 3);
    double lr = c["lr"].get<double>();
    CHECK(lr >= 1e-4);
    CHECK(lr <= 1);
    if (lr < 1e-2) ++small;
  }
  // Log-uniform: half the mass lies below 1e-2.
  CHECK(small > 150);
  CHECK(small < 250);
}

TEST_CASE("a float parameter with a step only takes values on the step grid") {
  auto space =
      space_of(json::parse(R"({"d": {"type": "float", "low": 0, "high": 0.5, "step": 0.1}})"));
  std::set<std::string> seen;
  for (const auto& c : draw(space, 200)) {
    double d = c["d"].get<double>();
    CHECK(std::fabs(d * 10 - std::round(d * 10)) < 1e-9);
    seen.insert(std::to_string(std::lround(d * 10)));
  }
  CHECK(seen.size() == 6);
}

TEST_CASE("an int parameter samples integers in range, with a step and on a log scale") {
  auto space = space_of(json::parse(R"({"u": {"type": "int", "low": 32, "high": 512, "log": true},
                                        "k": {"type": "int", "low": 1, "high": 9, "step": 2}})"));
  std::set<std::int64_t> ks;
  for (const auto& c : draw(space, 300)) {
    REQUIRE(c["u"].is_number_integer());
    CHECK(c["u"].get<std::int64_t>() >= 32);
    CHECK(c["u"].get<std::int64_t>() <= 512);
    REQUIRE(c["k"].is_number_integer());
    ks.insert(c["k"].get<std::int64_t>());
  }
  CHECK(ks == std::set<std::int64_t>{1, 3, 5, 7, 9});
}

TEST_CASE("a choice samples any JSON value among its values") {
  auto space = space_of(
      json::parse(R"({"c": {"type": "choice", "values": ["relu", 3, {"a": 1}, null, [1, 2]]}})"));
  std::set<std::string> seen;
  for (const auto& c : draw(space, 200)) seen.insert(c["c"].dump());
  CHECK(seen == std::set<std::string>{"\"relu\"", "3", "{\"a\":1}", "null", "[1,2]"});
}

TEST_CASE("consts and plain literals are fixed values and groups nest") {
  auto space = space_of(json::parse(R"({
      "data": {"dir": "/d", "limit": 5, "list": [1, 2], "flag": true, "nothing": null},
      "obj": {"type": "const", "value": {"low": 1, "high": 2}},
      "kind": {"type": "sgd"}})"));
  auto c = draw(space, 1)[0];
  CHECK(c ==
        json::parse(
            R"({"data": {"dir": "/d", "limit": 5, "list": [1, 2], "flag": true, "nothing": null},
                              "obj": {"low": 1, "high": 2}, "kind": {"type": "sgd"}})"));
  CHECK(space.parameter_count() == 0);
}

TEST_CASE("a nested choice samples one option's sub-space with its literals") {
  auto space = space_of(json::parse(R"({"optimizer": {"type": "choice", "options": [
      {"type": "sgd", "momentum": {"type": "float", "low": 0.5, "high": 0.99},
       "nesterov": {"type": "choice", "values": [true, false]}},
      {"type": "adam", "beta1": {"type": "float", "low": 0.8, "high": 0.99}}]}})"));
  std::set<std::string> types;
  for (const auto& c : draw(space, 100)) {
    const json& o = c["optimizer"];
    types.insert(o["type"].get<std::string>());
    if (o["type"] == "sgd") {
      CHECK(o.size() == 3);
      CHECK(o["momentum"].get<double>() >= 0.5);
      CHECK(o["nesterov"].is_boolean());
    } else {
      CHECK(o.size() == 2);
      CHECK(o["beta1"].get<double>() >= 0.8);
    }
  }
  CHECK(types == std::set<std::string>{"adam", "sgd"});
  CHECK(space.parameter_count() == 4);
}

TEST_CASE("blocks sample a variable-length list of independently sampled blocks") {
  auto space = space_of(json::parse(R"({"conv": {"type": "blocks", "min": 1, "max": 4, "block": {
      "filters": {"type": "choice", "values": [16, 32, 64]}, "kernel": 3,
      "pool": {"type": "choice", "values": ["max", "none"]}}}})"));
  std::set<std::size_t> lengths;
  bool differ = false;
  for (const auto& c : draw(space, 200)) {
    const json& conv = c["conv"];
    REQUIRE(conv.is_array());
    lengths.insert(conv.size());
    for (const auto& b : conv) {
      CHECK(b["kernel"] == 3);
      CHECK(b.size() == 3);
    }
    if (conv.size() >= 2 && conv[0] != conv[1]) differ = true;
  }
  CHECK(lengths == std::set<std::size_t>{1, 2, 3, 4});
  CHECK(differ);
  CHECK(space.parameter_paths() ==
        std::vector<std::string>{"conv", "conv[].filters", "conv[].pool"});
}

TEST_CASE("a conditional parameter is present only when its condition holds") {
  auto space = space_of(json::parse(R"({
      "policy": {"type": "choice", "values": ["fixed", "step", "exp"]},
      "gamma": {"type": "float", "low": 0.1, "high": 0.9, "when": {"policy": ["step", "exp"]}},
      "opt": {"type": "choice", "options": [{"type": "sgd"}, {"type": "adam"}]},
      "beta": {"type": "float", "low": 0.8, "high": 0.9, "when": {"opt.type": "adam"}}})"));
  int with_gamma = 0;
  for (const auto& c : draw(space, 200)) {
    bool want = c["policy"] != "fixed";
    CHECK(c.contains("gamma") == want);
    with_gamma += want;
    CHECK(c.contains("beta") == (c["opt"]["type"] == "adam"));
  }
  CHECK(with_gamma > 100);
}

TEST_CASE("a condition inside a block can name a sibling with a relative path") {
  auto space = space_of(json::parse(R"({"layers": {"type": "blocks", "min": 2, "max": 3, "block": {
      "kind": {"type": "choice", "values": ["dense", "dropout"]},
      "rate": {"type": "float", "low": 0, "high": 0.5, "when": {".kind": "dropout"}},
      "units": {"type": "int", "low": 8, "high": 64, "when": {".kind": "dense"}}}}})"));
  for (const auto& c : draw(space, 100)) {
    for (const auto& b : c["layers"]) {
      CHECK(b.contains("rate") == (b["kind"] == "dropout"));
      CHECK(b.contains("units") == (b["kind"] == "dense"));
    }
  }
}

TEST_CASE("a parameter is sampled after the parameter its condition names") {
  // "a" sorts first but depends on "z": the walk must decide "z" first.
  auto space = space_of(json::parse(R"({
      "a": {"type": "int", "low": 1, "high": 2, "when": {"z": true}},
      "z": {"type": "choice", "values": [true, false]}})"));
  int present = 0;
  for (const auto& c : draw(space, 100)) {
    CHECK(c.contains("a") == (c["z"] == true));
    present += c.contains("a");
  }
  CHECK(present > 20);
}

TEST_CASE("decode gives back the decisions of a sampled config under stable keys") {
  auto space = space_of(json::parse(R"({
      "lr": {"type": "float", "low": 0.001, "high": 1, "log": true},
      "opt": {"type": "choice", "options": [{"type": "sgd"},
                                           {"type": "adam", "beta1": {"type": "float", "low": 0.8, "high": 0.99}}]},
      "net": {"conv": {"type": "blocks", "min": 2, "max": 2, "block": {"f": {"type": "choice", "values": [8, 16]}}}}})"));
  json config = json::parse(R"({"lr": 0.01, "opt": {"type": "adam", "beta1": 0.9},
                                "net": {"conv": [{"f": 16}, {"f": 8}]}})");
  Decisions d = space.decode(config);
  CHECK(d.size() == 6);
  CHECK(d["lr"] == 0.01);
  CHECK(d["opt"] == 1);
  CHECK(d["opt.options[1].beta1"] == 0.9);
  CHECK(d["net.conv"] == 2);
  CHECK(d["net.conv[0].f"] == 1);
  CHECK(d["net.conv[1].f"] == 0);
}

TEST_CASE("decode tells apart options that differ only below their top level") {
  // Both options have the keys optimizer and lr; only optimizer.type says which one it was.
  auto space = space_of(json::parse(R"({"solver": {"type": "choice", "options": [
      {"optimizer": {"type": "sgd", "momentum": {"type": "float", "low": 0.8, "high": 0.95}},
       "lr": {"type": "float", "low": 0.01, "high": 0.1, "log": true}},
      {"optimizer": {"type": "adam", "beta1": {"type": "float", "low": 0.85, "high": 0.95}},
       "lr": {"type": "float", "low": 0.0005, "high": 0.005, "log": true}}]}})"));
  Decisions adam = space.decode(json::parse(
      R"({"solver": {"optimizer": {"type": "adam", "beta1": 0.9}, "lr": 0.001}})"));
  CHECK(adam["solver"] == 1);
  CHECK(adam["solver.options[1].optimizer.beta1"] == 0.9);
  CHECK(adam["solver.options[1].lr"] == 0.001);
  CHECK(adam.count("solver.options[0].lr") == 0);
  Decisions sgd = space.decode(json::parse(
      R"({"solver": {"optimizer": {"type": "sgd", "momentum": 0.9}, "lr": 0.05}})"));
  CHECK(sgd["solver"] == 0);
  CHECK(sgd["solver.options[0].optimizer.momentum"] == 0.9);
  for (const auto& c : draw(space, 50)) {
    Decisions d = space.decode(c);
    const bool is_adam = c["solver"]["optimizer"]["type"] == "adam";
    CHECK(d["solver"] == (is_adam ? 1 : 0));
  }
}

TEST_CASE("a group can carry a condition and a block can depend on a parameter outside it") {
  auto space = space_of(json::parse(R"({
      "net": {
        "dense": {"type": "blocks", "min": 1, "max": 2, "block": {
            "alpha": {"type": "float", "low": 0.01, "high": 0.3, "when": {"net.activation": "leaky_relu"}}}},
        "activation": {"type": "choice", "values": ["relu", "leaky_relu"]}},
      "schedule": {"when": {"net.activation": "relu"}, "gamma": {"type": "float", "low": 0.1, "high": 0.9}}})"));
  int leaky = 0;
  for (const auto& c : draw(space, 100)) {
    bool is_leaky = c["net"]["activation"] == "leaky_relu";
    leaky += is_leaky;
    for (const auto& b : c["net"]["dense"]) CHECK(b.contains("alpha") == is_leaky);
    CHECK(c.contains("schedule") == !is_leaky);
    if (!is_leaky) CHECK(c["schedule"].size() == 1);
  }
  CHECK(leaky > 20);
  CHECK(leaky < 80);
}
