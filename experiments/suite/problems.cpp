// The suite's problems (suite.h). The split into halves was fixed before any tuning (SPLIT.md):
// each kind of problem has members in both halves, at different dimensions or shapes.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <numbers>

#include "functions.h"
#include "space_json.h"
#include "suite.h"
#include "surrogate.h"

namespace hpo::suite {
namespace {

using nlohmann::json;
using fn::Vec;

using space::choice;
using space::integer;
using space::real;

// "x1", "n3", ...: built with append (GCC 12 warns falsely on literal + std::string).
std::string key(const char* prefix, std::size_t i) {
  std::string s = prefix;
  s += std::to_string(i + 1);
  return s;
}
std::string xname(std::size_t i) { return key("x", i); }

// x1..xd, each in [low, high].
json box(std::size_t d, double low, double high) {
  json s = json::object();
  for (std::size_t i = 0; i < d; ++i) s[xname(i)] = real(low, high);
  return s;
}
Vec read_x(const json& c, std::size_t d) {
  Vec x(d);
  for (std::size_t i = 0; i < d; ++i) x[i] = c.at(xname(i)).get<double>();
  return x;
}

Problem continuous(std::string name, std::string half, std::string summary, std::size_t d,
                   double low, double high, double optimum, double (*f)(const Vec&)) {
  Problem p{std::move(name), std::move(half), "continuous", std::move(summary), box(d, low, high),
            optimum, 0.0, nullptr};
  p.value = [f, d](const json& c) { return f(read_x(c, d)); };
  return p;
}

// A fixed pseudo-random shift in [-a, a] per coordinate, so an optimum is not at the centre of
// the box (where a sampler that favours the centre would find it for free).
Vec shift(std::size_t d, double a, unsigned salt) {
  Vec s(d);
  std::mt19937_64 rng(0x5017e0000ull + salt);
  for (auto& v : s) v = a * (2.0 * static_cast<double>(rng() >> 11) * 0x1.0p-53 - 1.0);
  return s;
}

// ---- mixed: ints, categoricals, log scales (optimum 0 by construction) ----

// Rastrigin over 4 ints in [-20, 20] and 4 floats in [-5, 5], each coordinate shifted and the
// ints scaled by 1/4: a grid of local minima that the int steps only partly resolve.
Problem int_rastrigin() {
  json s = json::object();
  for (std::size_t i = 0; i < 4; ++i) s[key("n", i)] = integer(-20, 20);
  for (std::size_t i = 0; i < 4; ++i) s[xname(i)] = real(-5, 5);
  Problem p{"int-rastrigin-8", "tune", "mixed",
            "Rastrigin on 4 ints (step 1/4 of the unit) and 4 floats, shifted", s, 0.0, 0.0,
            nullptr};
  p.value = [](const json& c) {
    static const Vec sh = shift(8, 2.0, 1);
    Vec z(8);
    for (std::size_t i = 0; i < 4; ++i) {
      z[i] = (c.at(key("n", i)).get<double>() - 4 * std::round(sh[i] * 2) / 2) / 4;
    }
    for (std::size_t i = 0; i < 4; ++i) z[4 + i] = c.at(xname(i)).get<double>() - sh[4 + i];
    return fn::rastrigin(z);
  };
  return p;
}

// Levy on 5 ints in [-10, 10] and 3 floats: the ints hit the optimum (1) exactly.
Problem int_levy() {
  json s = json::object();
  for (std::size_t i = 0; i < 5; ++i) s[key("n", i)] = integer(-10, 10);
  for (std::size_t i = 0; i < 3; ++i) s[xname(i)] = real(-10, 10);
  Problem p{"int-levy-8", "validate", "mixed", "Levy on 5 ints and 3 floats", s, 0.0, 0.0,
            nullptr};
  p.value = [](const json& c) {
    Vec z;
    for (std::size_t i = 0; i < 5; ++i) z.push_back(c.at(key("n", i)).get<double>());
    for (std::size_t i = 0; i < 3; ++i) z.push_back(c.at(xname(i)).get<double>());
    return fn::levy(z);
  };
  return p;
}

// A training-run-like bowl on log-scale floats: the value depends on log10 of each parameter,
// with the learning rate and batch size interacting (the best lr grows with the batch) and a
// ripple that makes it mildly multimodal.
Problem log_bowl() {
  json s{{"lr", real(1e-5, 1.0, true)},         {"weight_decay", real(1e-7, 1e-1, true)},
         {"batch_size", integer(16, 1024, true)}, {"eps", real(1e-10, 1e-2, true)},
         {"warmup", real(1e-3, 1.0, true)},      {"label_smoothing", real(1e-4, 0.3, true)}};
  Problem p{"log-bowl-6", "tune", "mixed",
            "6 log-scale parameters, lr x batch-size interaction, a ripple; optimum 0", s, 0.0,
            0.0, nullptr};
  p.value = [](const json& c) {
    const double lr = std::log10(c.at("lr").get<double>());
    const double bs = std::log2(c.at("batch_size").get<double>());
    const double best_lr = -3.2 + 0.3 * (bs - 7);  // ~6e-4 at 128, larger with the batch
    const double wd = std::log10(c.at("weight_decay").get<double>()) + 4.3;
    const double eps = std::log10(c.at("eps").get<double>()) + 7.5;
    const double wu = std::log10(c.at("warmup").get<double>()) + 1.2;
    const double ls = std::log10(c.at("label_smoothing").get<double>()) + 1.3;
    const double d = lr - best_lr;
    double v = 1.0 * d * d + 0.02 * (bs - 8) * (bs - 8) + 0.15 * wd * wd + 0.01 * eps * eps +
               0.2 * wu * wu + 0.1 * ls * ls;
    v += 0.1 * (1 - std::cos(2 * std::numbers::pi * d));
    return v;
  };
  return p;
}

// Log-scale ints and floats (widths, counts, rates) with a coupled optimum.
Problem log_bowl_int() {
  json s{{"width", integer(8, 2048, true)},
         {"depth", integer(1, 64, true)},
         {"lr", real(1e-6, 1.0, true)},
         {"dropout_odds", real(1e-3, 10.0, true)},
         {"steps", integer(10, 100000, true)}};
  Problem p{"log-bowl-int-5", "validate", "mixed",
            "log-scale ints (width, depth, steps) and floats; the best lr falls with the width",
            s, 0.0, 0.0, nullptr};
  p.value = [](const json& c) {
    const double w = std::log2(c.at("width").get<double>());
    const double dp = std::log2(c.at("depth").get<double>());
    const double lr = std::log10(c.at("lr").get<double>());
    const double od = std::log10(c.at("dropout_odds").get<double>());
    const double st = std::log10(c.at("steps").get<double>());
    const double best_lr = -2.0 - 0.25 * (w - 8);
    double v = (lr - best_lr) * (lr - best_lr) + 0.05 * (w - 9) * (w - 9) +
               0.1 * (dp - 3) * (dp - 3) + 0.3 * (od + 0.5) * (od + 0.5);
    v += 0.2 * std::max(0.0, 4.2 - st) * std::max(0.0, 4.2 - st);  // too few steps hurts
    return v;
  };
  return p;
}

// Unordered categoricals (strings) with per-value costs and one pairwise interaction, plus 3
// floats. The optimum is found by enumeration.
Problem categorical8() {
  const std::vector<std::vector<std::string>> names{{"a", "b", "c", "d"},
                                                    {"p", "q", "r", "s", "t"},
                                                    {"u", "v", "w"},
                                                    {"k", "l", "m", "n", "o", "z"},
                                                    {"e", "f", "g", "h"}};
  json s = json::object();
  for (std::size_t i = 0; i < names.size(); ++i) s[key("c", i)] = choice(names[i]);
  for (std::size_t i = 0; i < 3; ++i) s[xname(i)] = real(-2, 2);
  Problem p{"categorical-8", "tune", "mixed",
            "5 unordered string categoricals (3-6 values, one interacting pair) and 3 floats", s,
            0.0, 0.0, nullptr};
  // Cost of value v of categorical i, and of the pair (c1, c2).
  auto cost = [](std::size_t i, std::size_t v) {
    std::mt19937_64 rng(977 + 31 * i + v);
    return 2.0 * static_cast<double>(rng() >> 11) * 0x1.0p-53;
  };
  auto pair = [](std::size_t a, std::size_t b) { return (a + 2 * b) % 4 == 1 ? -1.5 : 0.0; };
  auto index = [names](std::size_t i, const std::string& v) {
    return static_cast<std::size_t>(std::find(names[i].begin(), names[i].end(), v) -
                                    names[i].begin());
  };
  p.value = [=](const json& c) {
    std::vector<std::size_t> k(names.size());
    for (std::size_t i = 0; i < names.size(); ++i)
      k[i] = index(i, c.at(key("c", i)).get<std::string>());
    double v = pair(k[0], k[1]);
    for (std::size_t i = 0; i < names.size(); ++i) v += cost(i, k[i]);
    static const Vec sh = shift(3, 1.0, 2);
    for (std::size_t i = 0; i < 3; ++i) {
      const double z = c.at(xname(i)).get<double>() - sh[i];
      v += 0.5 * z * z;
    }
    return v;
  };
  // Enumerate the categorical part for the optimum (the floats reach 0).
  double best = INFINITY;
  std::vector<std::size_t> k(names.size(), 0);
  for (;;) {
    double v = pair(k[0], k[1]);
    for (std::size_t i = 0; i < names.size(); ++i) v += cost(i, k[i]);
    best = std::min(best, v);
    std::size_t i = 0;
    while (i < k.size() && ++k[i] == names[i].size()) k[i++] = 0;
    if (i == k.size()) break;
  }
  p.optimum = best;
  return p;
}

// Ackley in 6 floats whose optimum moves with 4 categoricals (each choice shifts one pair of
// coordinates), so the floats must be learned together with the choices.
Problem categorical_ackley() {
  json s = json::object();
  for (std::size_t i = 0; i < 4; ++i) s[key("mode", i)] = choice({0, 1, 2});
  for (std::size_t i = 0; i < 6; ++i) s[xname(i)] = real(-5, 5);
  Problem p{"categorical-ackley-10", "validate", "mixed",
            "Ackley on 6 shifted floats whose optimum moves with 4 three-way choices (one best)",
            s, 0.0, 0.0, nullptr};
  p.value = [](const json& c) {
    const std::array<int, 4> good{2, 0, 1, 2};
    double penalty = 0;
    Vec z(6);
    for (std::size_t i = 0; i < 6; ++i) z[i] = c.at(xname(i)).get<double>();
    for (std::size_t i = 0; i < 4; ++i) {
      const int m = c.at(key("mode", i)).get<int>();
      z[i % 6] -= 1.5 * (m - 1);
      z[(i + 3) % 6] += 0.7 * m;
      if (m != good[i]) penalty += 0.8;
    }
    // At the good modes the shifted optimum is x = shift; undo it so the optimum is 0.
    Vec off(6, 0.0);
    for (std::size_t i = 0; i < 4; ++i) {
      off[i % 6] -= 1.5 * (good[i] - 1);
      off[(i + 3) % 6] += 0.7 * good[i];
    }
    static const Vec sh = shift(6, 2.0, 4);
    for (std::size_t i = 0; i < 6; ++i) z[i] -= off[i] + sh[i];
    return fn::ackley(z) + penalty;
  };
  return p;
}

}  // namespace

// Defined in problems_structured.cpp: conditional spaces, blocks and the surrogates.
void add_structured(std::vector<Problem>& out, const std::string& data_dir);

const std::vector<Problem>& problems(const std::string& data_dir) {
  static const std::vector<Problem> all = [&] {
    std::vector<Problem> p;
    const std::string t = "tune", v = "validate";
    // Continuous, 2 to 20 dimensions.
    p.push_back(continuous("branin-2", t, "Branin, three global minima", 2, -5, 10, 0.397887,
                           fn::branin));
    p.back().space = json{{"x1", real(-5, 10)}, {"x2", real(0, 15)}};
    p.push_back(continuous("six-hump-camel-2", v, "six-hump camel: two global, four local minima",
                           2, -3, 3, -1.031628, fn::six_hump_camel));
    p.back().space = json{{"x1", real(-3, 3)}, {"x2", real(-2, 2)}};
    p.push_back(continuous("hartmann6", t, "Hartmann 6-d", 6, 0, 1, -3.322368, fn::hartmann6));
    p.push_back(continuous("hartmann3", v, "Hartmann 3-d", 3, 0, 1, -3.862782, fn::hartmann3));
    p.push_back(continuous("rosenbrock-4", t, "Rosenbrock: narrow curved valley", 4, -5, 10, 0,
                           fn::rosenbrock));
    p.push_back(continuous("rosenbrock-12", v, "Rosenbrock: narrow curved valley", 12, -5, 10, 0,
                           fn::rosenbrock));
    p.push_back(continuous("ackley-10", t, "Ackley: multimodal with a deep funnel", 10, -32.768,
                           32.768, 0, fn::ackley));
    p.push_back(continuous("ackley-20", v, "Ackley: multimodal with a deep funnel", 20, -32.768,
                           32.768, 0, fn::ackley));
    p.push_back(continuous("styblinski-tang-6", t, "Styblinski-Tang: 2^d local minima", 6, -5, 5,
                           -39.16617 * 6, fn::styblinski_tang));
    p.push_back(continuous("rastrigin-8", v, "Rastrigin: a regular grid of local minima", 8,
                           -5.12, 5.12, 0, fn::rastrigin));
    p.push_back(continuous("ellipsoid-16", t, "shifted axis-parallel ellipsoid, condition 1e6", 16,
                           -5, 5, 0, nullptr));
    p.back().value = [](const json& c) {
      static const Vec sh = shift(16, 3.0, 3);
      Vec x = read_x(c, 16);
      for (std::size_t i = 0; i < 16; ++i) x[i] -= sh[i];
      return fn::ellipsoid(x);
    };
    p.push_back(continuous("levy-10", v, "Levy: multimodal", 10, -10, 10, 0, fn::levy));
    // Noisy.
    p.push_back(continuous("noisy-hartmann6", t, "Hartmann 6-d + Normal(0, 0.1) noise", 6, 0, 1,
                           -3.322368, fn::hartmann6));
    p.back().family = "noisy";
    p.back().noise = 0.1;
    p.push_back(continuous("noisy-levy-6", v, "Levy 6-d + Normal(0, 0.5) noise", 6, -10, 10, 0,
                           fn::levy));
    p.back().family = "noisy";
    p.back().noise = 0.5;
    // Mixed ints, categoricals, log scales.
    p.push_back(int_rastrigin());
    p.push_back(int_levy());
    p.push_back(log_bowl());
    p.push_back(log_bowl_int());
    p.push_back(categorical8());
    p.push_back(categorical_ackley());
    add_structured(p, data_dir);
    return p;
  }();
  return all;
}

std::uint64_t noise_seed(std::uint64_t seed, std::int64_t number) {
  std::uint64_t z = seed * 0x9e3779b97f4a7c15ull + static_cast<std::uint64_t>(number) + 1;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double observe(const Problem& problem, const json& config, std::uint64_t noise, double* truth) {
  const double v = problem.value(config);
  if (truth) *truth = v;
  if (problem.noise <= 0) return v;
  // Box-Muller from two 53-bit uniforms: the same on every standard library.
  std::mt19937_64 rng(noise);
  const double u1 = (static_cast<double>(rng() >> 11) + 1.0) * 0x1.0p-53;
  const double u2 = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  return v + problem.noise * std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
}

}  // namespace hpo::suite
