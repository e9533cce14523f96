// Regularized evolution: a child differs from a tournament winner by one
// mutation and always stays inside the space.
#include <set>

#include "tests/search/helpers.h"

using nlohmann::json;
using namespace hpo::search;
using namespace hpo::search::test;

namespace {

json arch_space() {
  return json::parse(R"({
      "net": {"conv": {"type": "blocks", "min": 1, "max": 4, "block": {
                  "filters": {"type": "choice", "values": [16, 32, 64]},
                  "pool": {"type": "choice", "values": ["max", "none"]}}},
              "activation": {"type": "choice", "values": ["relu", "elu"]}},
      "lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": true},
      "opt": {"type": "choice", "options": [{"type": "sgd", "m": {"type": "float", "low": 0.5, "high": 0.99}},
                                           {"type": "adam"}]}})");
}

bool inside(const json& c) {
  const json& conv = c["net"]["conv"];
  if (!conv.is_array() || conv.empty() || conv.size() > 4) return false;
  for (const auto& b : conv) {
    if (b.size() != 2) return false;
    if (b["filters"] != 16 && b["filters"] != 32 && b["filters"] != 64) return false;
    if (b["pool"] != "max" && b["pool"] != "none") return false;
  }
  double lr = c["lr"].get<double>();
  if (lr < 1e-4 || lr > 0.1) return false;
  const json& o = c["opt"];
  if (o["type"] == "sgd")
    return o.size() == 2 && o["m"].get<double>() >= 0.5 && o["m"].get<double>() <= 0.99;
  return o == json{{"type", "adam"}};
}

// How many leaves differ between two configs (a block added/removed counts 1+).
int distance(const json& a, const json& b) {
  if (a.is_object() && b.is_object()) {
    int d = 0;
    std::set<std::string> keys;
    for (const auto& [k, v] : a.items()) keys.insert(k);
    for (const auto& [k, v] : b.items()) keys.insert(k);
    for (const auto& k : keys) {
      if (!a.contains(k) || !b.contains(k)) {
        ++d;
      } else {
        d += distance(a[k], b[k]);
      }
    }
    return d;
  }
  if (a.is_array() && b.is_array() && a.size() == b.size()) {
    int d = 0;
    for (std::size_t i = 0; i < a.size(); ++i) d += distance(a[i], b[i]);
    return d;
  }
  return a == b ? 0 : 1;
}

}  // namespace

TEST_CASE(
    "evolution children stay inside the space and differ from a population member by one "
    "mutation") {
  Space space = space_of(arch_space());
  auto evo =
      sampler_of(space, json{{"type", "evolution"}, {"population", 10}, {"sample_size", 3}}, 5);
  History h;
  int small_steps = 0;
  for (int i = 0; i < 120; ++i) {
    json c = ask(*evo, h);
    REQUIRE(inside(c));
    if (i >= 10) {
      // The parent is one of the newest 10 completed trials.
      int best = 1000;
      for (int j = i - 10; j < i; ++j) best = std::min(best, distance(h[j].config, c));
      // One parameter, or one block (2 leaves), or an option switch.
      if (best <= 2) ++small_steps;
    }
    double v = c["lr"].get<double>() + (c["net"]["activation"] == "relu" ? 0 : 1) +
               0.1 * static_cast<double>(c["net"]["conv"].size());
    h.push_back(completed(i, c, v));
  }
  CHECK(small_steps >= 100);
}

TEST_CASE("evolution adds and removes blocks and keeps improving") {
  Space space = space_of(arch_space());
  auto evo =
      sampler_of(space, json{{"type", "evolution"}, {"population", 8}, {"sample_size", 4}}, 8);
  History h;
  std::set<std::size_t> lengths;
  for (int i = 0; i < 200; ++i) {
    json c = ask(*evo, h);
    if (i >= 8) lengths.insert(c["net"]["conv"].size());
    // Best: 4 blocks of 64 filters.
    double v = 0;
    for (const auto& b : c["net"]["conv"]) v -= b["filters"].get<double>();
    h.push_back(completed(i, c, v));
  }
  CHECK(lengths.size() >= 3);
  double last = 0;
  for (int i = 180; i < 200; ++i) last += *h[i].value / 20;
  CHECK(last < -150);  // random averages about -93
}
