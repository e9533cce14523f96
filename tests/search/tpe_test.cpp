// TPE: learns from the trials where a parameter was active, concentrates on
// good regions, and spreads parallel asks with the constant liar.
#include <cmath>
#include <set>

#include "tests/search/helpers.h"

using nlohmann::json;
using namespace hpo::search;
using namespace hpo::search::test;

TEST_CASE("tpe is random for its start-up trials and then concentrates near the optimum") {
  Space space = space_of(json::parse(R"({"x": {"type": "float", "low": -10, "high": 10}})"));
  auto tpe = sampler_of(space, json{{"type", "tpe"}, {"startup_trials", 10}});
  History h;
  for (int i = 0; i < 60; ++i) {
    json c = ask(*tpe, h);
    double x = c["x"].get<double>();
    h.push_back(completed(i, c, (x - 3) * (x - 3)));
  }
  int near = 0;
  for (int i = 40; i < 60; ++i) near += std::fabs(h[i].config["x"].get<double>() - 3) < 1.5;
  CHECK(near >= 12);  // random would put ~3 of 20 there
}

TEST_CASE("tpe maximizes when the study maximizes") {
  Space space = space_of(json::parse(R"({"x": {"type": "float", "low": 0, "high": 1}})"));
  auto tpe =
      sampler_of(space, json{{"type", "tpe"}, {"startup_trials", 5}}, 1, Direction::kMaximize);
  History h;
  for (int i = 0; i < 40; ++i) {
    json c = ask(*tpe, h);
    h.push_back(completed(i, c, c["x"].get<double>()));
  }
  double mean = 0;
  for (int i = 30; i < 40; ++i) mean += h[i].config["x"].get<double>() / 10;
  CHECK(mean > 0.7);
}

TEST_CASE("tpe learns a conditional parameter only from trials where it was active") {
  // beta is active only with adam; its good value is 0.95, and every sgd
  // trial is bad. The sgd trials must not pull beta anywhere (they have none).
  Space space = space_of(json::parse(R"({"opt": {"type": "choice", "options": [
      {"type": "sgd", "momentum": {"type": "float", "low": 0, "high": 1}},
      {"type": "adam", "beta": {"type": "float", "low": 0.5, "high": 1.0}}]}})"));
  auto tpe = sampler_of(space, json{{"type", "tpe"}, {"startup_trials", 10}}, 4);
  History h;
  for (int i = 0; i < 80; ++i) {
    json c = ask(*tpe, h);
    const json& o = c["opt"];
    double v = o["type"] == "sgd" ? 10.0 : std::fabs(o["beta"].get<double>() - 0.95);
    CHECK((o["type"] == "sgd" ? o.contains("momentum") && !o.contains("beta")
                              : o.contains("beta") && !o.contains("momentum")));
    h.push_back(completed(i, c, v));
  }
  int adam_close = 0, adam = 0;
  for (int i = 50; i < 80; ++i) {
    const json& o = h[i].config["opt"];
    if (o["type"] == "adam") {
      ++adam;
      adam_close += std::fabs(o["beta"].get<double>() - 0.95) < 0.08;
    }
  }
  CHECK(adam >= 22);
  CHECK(adam_close >= adam / 2);
}

TEST_CASE("tpe handles ints, log scales, choices and blocks inside their domains") {
  Space space = space_of(json::parse(R"({
      "lr": {"type": "float", "low": 1e-5, "high": 1, "log": true},
      "units": {"type": "int", "low": 16, "high": 512, "log": true},
      "k": {"type": "int", "low": 1, "high": 7, "step": 2},
      "act": {"type": "choice", "values": ["relu", "tanh", "elu"]},
      "conv": {"type": "blocks", "min": 1, "max": 3, "block": {"f": {"type": "choice", "values": [8, 16]}}}})"));
  auto tpe = sampler_of(space, json{{"type", "tpe"}, {"startup_trials", 5}}, 9);
  History h;
  for (int i = 0; i < 40; ++i) {
    json c = ask(*tpe, h);
    CHECK(c["lr"].get<double>() >= 1e-5);
    CHECK(c["lr"].get<double>() <= 1);
    REQUIRE(c["units"].is_number_integer());
    CHECK(c["units"].get<int>() >= 16);
    CHECK(c["units"].get<int>() <= 512);
    CHECK(c["k"].get<int>() % 2 == 1);
    CHECK(c["conv"].size() >= 1);
    CHECK(c["conv"].size() <= 3);
    double v = std::fabs(std::log10(c["lr"].get<double>()) + 2) + (c["act"] == "tanh" ? 0 : 1);
    h.push_back(completed(i, c, v));
  }
  int tanh = 0;
  for (int i = 25; i < 40; ++i) tanh += h[i].config["act"] == "tanh";
  CHECK(tanh >= 8);
}

TEST_CASE("parallel tpe asks with running trials in the history differ") {
  Space space =
      space_of(json::parse(R"({"c": {"type": "choice", "values": [1, 2, 3, 4, 5, 6, 7, 8]},
                                        "x": {"type": "float", "low": 0, "high": 1}})"));
  auto tpe = sampler_of(space, json{{"type", "tpe"}, {"startup_trials", 5}}, 2);
  History h;
  for (int i = 0; i < 20; ++i) {
    json c = ask(*tpe, h);
    h.push_back(completed(i, c, c["x"].get<double>()));
  }
  std::set<std::string> asked;
  for (int k = 0; k < 8; ++k) {
    json c = ask(*tpe, h);
    asked.insert(c.dump());
    h.push_back(TrialRecord{static_cast<std::int64_t>(h.size()), TrialState::kRunning, c, {}, {}});
  }
  CHECK(asked.size() == 8);
}

TEST_CASE("the univariate form of tpe also concentrates near the optimum") {
  Space space = space_of(json::parse(R"({"x": {"type": "float", "low": -10, "high": 10},
                                        "y": {"type": "float", "low": -10, "high": 10}})"));
  auto tpe = sampler_of(space, json{{"type", "tpe"}, {"multivariate", false}}, 3);
  History h;
  for (int i = 0; i < 60; ++i) {
    json c = ask(*tpe, h);
    double x = c["x"].get<double>(), y = c["y"].get<double>();
    h.push_back(completed(i, c, x * x + y * y));
  }
  int near = 0;
  for (int i = 40; i < 60; ++i) {
    near += std::fabs(h[i].config["x"].get<double>()) < 3 &&
            std::fabs(h[i].config["y"].get<double>()) < 3;
  }
  CHECK(near >= 8);  // random: ~1.8 of 20
}

TEST_CASE("tell records an outcome that the next tpe ask learns from") {
  Space space = space_of(json::parse(R"({"x": {"type": "float", "low": 0, "high": 1}})"));
  auto tpe = sampler_of(space, json{{"type", "tpe"}, {"startup_trials", 3}}, 6);
  History h;
  for (int i = 0; i < 3; ++i) {
    json c = ask(*tpe, h);
    h.push_back(TrialRecord{i, TrialState::kRunning, c, {}, {}});
  }
  History untold = h;
  for (int i = 0; i < 3; ++i) tell(h, i, TrialState::kCompleted, h[i].config["x"].get<double>());
  CHECK(h[1].state == TrialState::kCompleted);
  CHECK(*h[1].value == h[1].config["x"].get<double>());
  // Before the tell: still start-up (random); after it, a TPE suggestion.
  CHECK(ask(*tpe, h) != ask(*tpe, untold));
  tell(h, 5, TrialState::kFailed, std::nullopt);
  CHECK(h.size() == 6);
  CHECK(h[4].state == TrialState::kQueued);
  CHECK(h[5].state == TrialState::kFailed);
}

TEST_CASE("a parameter seen in few trials keeps wide kernels however many trials the study has") {
  // beta is active in 3 of 200 trials, the 3 best, all at about 0.5. Its kernels' floor counts
  // those 3 trials, not the study's 200, so the asks still spread around 0.5; counted against
  // all 200 (what narrowing = 34 amounts to here), they would collapse onto it.
  Space space = space_of(json::parse(R"({"use": {"type": "choice", "values": [true, false]},
      "beta": {"type": "float", "low": 0, "high": 1, "when": {"use": true}},
      "x": {"type": "float", "low": 0, "high": 1}})"));
  History h;
  for (int i = 0; i < 200; ++i) {
    const bool use = i % 67 == 0;
    json c = {{"use", use}, {"x", (i % 10) / 10.0}};
    if (use) c["beta"] = 0.5 + 0.0001 * i / 67;
    h.push_back(completed(i, c, use ? 0.0 : 1.0 + (i % 7)));
  }
  auto spread = [&](const json& options) {
    auto tpe = sampler_of(space, options, 5);
    double total = 0;
    int n = 0;
    for (std::int64_t k = 0; k < 60; ++k) {
      auto c = tpe->ask(h, 200 + k);
      REQUIRE(c);
      if ((**c).contains("beta")) {
        total += std::fabs((**c)["beta"].get<double>() - 0.5);
        ++n;
      }
    }
    REQUIRE(n >= 10);
    return total / n;
  };
  const double own = spread(json{{"type", "tpe"}});
  const double all = spread(json{{"type", "tpe"}, {"narrowing", 34}});
  INFO("mean |beta - 0.5|: " << own << " (own count), " << all << " (all trials)");
  CHECK(own > 3 * all);
}
