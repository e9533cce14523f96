// PBT's explore: a perturbed copy of the parent's config that stays inside the space.
#include <catch2/catch.hpp>
#include <cmath>

#include "search/pbt.h"
#include "tests/search/helpers.h"

using namespace hpo::search;
using hpo::search::test::space_of;
using nlohmann::json;

namespace {

const json kSpace = json::parse(R"({
  "lr": {"type": "float", "low": 0.0001, "high": 1, "log": true},
  "units": {"type": "int", "low": 2, "high": 100},
  "drop": {"type": "float", "low": 0, "high": 0.5},
  "opt": {"type": "choice", "values": ["sgd", "adam", "rms", "ada"]},
  "momentum": {"type": "float", "low": 0.5, "high": 0.99, "when": {"opt": "sgd"}},
  "epochs": 20})");

// A parent config: lr 0.01, units 50, drop 0.25, the optimizer `opt`, and momentum when
// it is given (sgd's conditional parameter).
json parent_of(const char* opt, double momentum = -1) {
  json p = {{"lr", 0.01}, {"units", 50}, {"drop", 0.25}, {"opt", opt}, {"epochs", 20}};
  if (momentum >= 0) p["momentum"] = momentum;
  return p;
}

}  // namespace

TEST_CASE("explore multiplies by 0.8 or 1.2 when it does not resample", "[pbt]") {
  const Space space = space_of(kSpace);
  const json parent = parent_of("sgd", 0.8);
  auto rng = explore_rng(3, 1);
  int up = 0, down = 0;
  for (int i = 0; i < 200; ++i) {
    const auto child = explore(space, parent, 0.0, rng);
    CHECK(child.config["opt"] == "sgd");
    CHECK(child.config["epochs"] == 20);
    const double lr = child.config["lr"];
    CHECK((lr == Approx(0.008) || lr == Approx(0.012)));
    (lr > 0.01 ? up : down)++;
    CHECK((child.config["units"] == 40 || child.config["units"] == 60));
    CHECK(child.config["units"].is_number_integer());
    const double m = child.config["momentum"];
    CHECK((m == Approx(0.64) || m == Approx(0.96)));
    CHECK(child.changed["lr"] == json::array({0.01, lr}));
    CHECK_FALSE(child.changed.contains("opt"));
  }
  CHECK(up > 60);
  CHECK(down > 60);
}

TEST_CASE("explore clamps to the range and keeps ints whole and log ranges positive", "[pbt]") {
  const Space space = space_of(kSpace);
  const json parent = {{"lr", 1.0}, {"units", 2}, {"drop", 0.5}, {"opt", "adam"}, {"epochs", 20}};
  auto rng = explore_rng(9, 4);
  for (int i = 0; i < 500; ++i) {
    const auto c = explore(space, parent, 0.3, rng).config;
    const double lr = c["lr"];
    CHECK(lr >= 0.0001);
    CHECK(lr <= 1.0);
    REQUIRE(c["units"].is_number_integer());
    CHECK(c["units"] >= 2);
    CHECK(c["units"] <= 100);
    CHECK(c["drop"] >= 0.0);
    CHECK(c["drop"] <= 0.5);
  }
}

TEST_CASE("explore resamples a categorical with the resample probability", "[pbt]") {
  const Space space = space_of(kSpace);
  const json parent = parent_of("ada");
  auto rng = explore_rng(5, 2);
  const int n = 8000;
  int changed = 0;
  for (int i = 0; i < n; ++i) changed += explore(space, parent, 0.4, rng).config["opt"] != "ada";
  // Resampled 40% of the time, to another of 4 values 3/4 of those: 0.3.
  CHECK(static_cast<double>(changed) / n == Approx(0.3).margin(0.02));
}

TEST_CASE("explore keeps a conditional config valid", "[pbt]") {
  const Space space = space_of(kSpace);
  const json parent = parent_of("sgd", 0.9);
  auto rng = explore_rng(11, 0);
  int with = 0, without = 0;
  for (int i = 0; i < 400; ++i) {
    const auto e = explore(space, parent, 0.5, rng);
    const bool sgd = e.config["opt"] == "sgd";
    CHECK(e.config.contains("momentum") == sgd);
    if (sgd) {
      ++with;
      CHECK(e.config["momentum"] >= 0.5);
      CHECK(e.config["momentum"] <= 0.99);
    } else {
      ++without;
      CHECK(e.changed["momentum"] == json::array({0.9, nullptr}));
    }
  }
  CHECK(with > 0);
  CHECK(without > 0);
  // A parent without momentum gets one drawn when opt turns to sgd.
  const json adam = parent_of("adam");
  bool drawn = false;
  for (int i = 0; i < 200 && !drawn; ++i) {
    const auto e = explore(space, adam, 0.5, rng);
    if (e.config["opt"] == "sgd") {
      drawn = e.config.contains("momentum") && e.changed["momentum"][0].is_null();
    }
  }
  CHECK(drawn);
}

TEST_CASE("explore is a function of the seed", "[pbt]") {
  const Space space = space_of(kSpace);
  const json parent = parent_of("rms");
  auto a = explore_rng(1, 6), b = explore_rng(1, 6);
  for (int i = 0; i < 20; ++i)
    CHECK(explore(space, parent, 0.25, a).config == explore(space, parent, 0.25, b).config);
}

TEST_CASE("by default explore changes only the float parameters: an int or a choice may shape "
          "the network the parent's checkpoint holds",
          "[pbt]") {
  const Space space = space_of(kSpace);
  const json parent = parent_of("sgd", 0.8);
  auto rng = explore_rng(2, 3);
  const auto floats = mutable_dimensions({});
  int lr_changed = 0;
  for (int i = 0; i < 300; ++i) {
    const auto e = explore(space, parent, 0.5, rng, floats);
    CHECK(e.config["units"] == 50);
    CHECK(e.config["opt"] == "sgd");
    CHECK(e.config.contains("momentum"));
    lr_changed += e.config["lr"] != 0.01;
    CHECK_FALSE(e.changed.contains("units"));
  }
  CHECK(lr_changed == 300);  // x0.8, x1.2 or resampled: never the same
}

TEST_CASE("mutations name the parameters explore may change, without an option's or a block's "
          "index",
          "[pbt]") {
  const Space space = space_of(json::parse(R"({
    "solver": {"type": "choice", "options": [
      {"optimizer": "sgd", "lr": {"type": "float", "low": 0.01, "high": 0.1}},
      {"optimizer": "adam", "lr": {"type": "float", "low": 0.0001, "high": 0.01}}]},
    "conv": {"type": "blocks", "min": 1, "max": 3,
             "block": {"filters": {"type": "int", "low": 8, "high": 64},
                       "dropout": {"type": "float", "low": 0, "high": 0.5}}}})"));
  const json parent = {{"solver", {{"optimizer", "adam"}, {"lr", 0.001}}},
                       {"conv", json::array({{{"filters", 16}, {"dropout", 0.1}},
                                             {{"filters", 32}, {"dropout", 0.2}}})}};
  CHECK(names_parameter(space, "solver.lr"));
  CHECK(names_parameter(space, "conv[].filters"));
  CHECK(names_parameter(space, "conv[1].filters"));
  CHECK_FALSE(names_parameter(space, "solver.momentum"));
  CHECK_FALSE(names_parameter(space, "filters"));
  auto rng = explore_rng(4, 1);
  const auto only = mutable_dimensions({"solver.lr", "conv[].filters"});
  int filters_changed = 0;
  for (int i = 0; i < 200; ++i) {
    const auto c = explore(space, parent, 0.3, rng, only).config;
    CHECK(c["solver"]["optimizer"] == "adam");  // the choice stays
    CHECK(c["solver"]["lr"] != 0.001);
    REQUIRE(c["conv"].size() == 2);  // the block count stays
    CHECK(c["conv"][0]["dropout"] == 0.1);
    CHECK(c["conv"][1]["dropout"] == 0.2);
    filters_changed += c["conv"][1]["filters"] != 32;
  }
  CHECK(filters_changed > 150);
}
