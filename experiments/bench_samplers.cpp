// Sampler benchmark (experiments/bench_samplers.sh runs it beside Optuna):
//  1. quality: Branin and Hartmann6, 100 trials, 10 seeds, median over seeds
//     of the best value found, for our random / sobol / tpe / evolution;
//  2. cost: microseconds per TPE ask with 8 parameters and 1,000 / 10,000
//     COMPLETED trials in the history.
// Output: one line per figure, "quality FUNCTION SAMPLER MEDIAN_BEST" and
// "ask_us SAMPLER HISTORY MICROSECONDS", which the driver puts in a table.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "search/sampler.h"
#include "trainer/agent/builtin_objectives.h"

using hpo::search::Direction;
using hpo::search::History;
using hpo::search::Space;
using hpo::search::TrialRecord;
using hpo::search::TrialState;
using nlohmann::json;

namespace {

// Built without operator+ on a literal: GCC 12 warns falsely there (-Wrestrict).
std::string xname(int j) {
  std::string s = "x";
  s += std::to_string(j);
  return s;
}

// The objectives themselves are the agent's builtin ones (trainer/builtin_objectives.h),
// so the benchmark measures the very functions a builtin trial runs.
double branin(const json& c) {
  return hpo::agent::branin(c["x1"].get<double>(), c["x2"].get<double>());
}

double hartmann6(const json& c) {
  std::array<double, 6> x{};
  for (int j = 0; j < 6; ++j) x[j] = c[xname(j + 1)].get<double>();
  return hpo::agent::hartmann6(x);
}

Space must_parse(const json& j) {
  auto s = Space::parse(j, "bench");
  if (!s) {
    std::fprintf(stderr, "%s\n", s.error().message.c_str());
    std::exit(1);
  }
  return *s;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double best_after(const Space& space, const json& sampler, std::uint64_t seed, int trials,
                  double (*f)(const json&)) {
  auto s = hpo::search::make_sampler(space, sampler, seed, Direction::kMinimize);
  if (!s) {
    std::fprintf(stderr, "%s\n", s.error().message.c_str());
    std::exit(1);
  }
  History history;
  double best = INFINITY;
  for (int n = 0; n < trials; ++n) {
    auto c = (*s)->ask(history, n);
    if (!c || !*c) std::exit(1);
    double y = f(**c);
    best = std::min(best, y);
    history.push_back(TrialRecord{n, TrialState::kCompleted, **c, y, {}});
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const int trials = 100, seeds = 10;
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  // --try SAMPLER_JSON FIRST_SEED SEEDS: one sampler's medians (for tuning on
  // seeds other than the reported 0..9).
  if (argc == 5 && std::string(argv[1]) == "--try") {
    json sampler = json::parse(argv[2]);
    int first = std::stoi(argv[3]), count = std::stoi(argv[4]);
    json b2 = {{"x1", {{"type", "float"}, {"low", -5}, {"high", 10}}},
               {"x2", {{"type", "float"}, {"low", 0}, {"high", 15}}}};
    json b6 = json::object();
    for (int j = 1; j <= 6; ++j) b6[xname(j)] = {{"type", "float"}, {"low", 0}, {"high", 1}};
    for (int k = 0; k < 2; ++k) {
      Space sp = must_parse(k ? b6 : b2);
      std::vector<double> bests;
      for (int seed = first; seed < first + count; ++seed) {
        bests.push_back(best_after(sp, sampler, static_cast<std::uint64_t>(seed), trials,
                                   k ? hartmann6 : branin));
      }
      std::printf("%s %.4f\n", k ? "hartmann6" : "branin", median(bests));
    }
    return 0;
  }
  json box2 = {{"x1", {{"type", "float"}, {"low", -5}, {"high", 10}}},
               {"x2", {{"type", "float"}, {"low", 0}, {"high", 15}}}};
  json box6 = json::object();
  for (int j = 1; j <= 6; ++j) box6[xname(j)] = {{"type", "float"}, {"low", 0}, {"high", 1}};
  struct Problem {
    const char* name;
    Space space;
    double (*f)(const json&);
  } problems[] = {{"branin", must_parse(box2), branin}, {"hartmann6", must_parse(box6), hartmann6}};
  const char* samplers[] = {"random", "sobol", "halton", "tpe", "evolution"};
  for (const auto& p : problems) {
    for (const char* name : samplers) {
      std::vector<double> bests;
      for (int seed = 0; seed < seeds; ++seed) {
        bests.push_back(best_after(p.space, json{{"type", name}}, static_cast<std::uint64_t>(seed),
                                   trials, p.f));
      }
      std::printf("quality %s %s %.4f\n", p.name, name, median(bests));
      std::fflush(stdout);
    }
  }
  if (quick) return 0;

  // Ask cost: 8 parameters of every numeric kind, a history of finished trials.
  json space8 = {{"lr", {{"type", "float"}, {"low", 1e-5}, {"high", 1}, {"log", true}}},
                 {"momentum", {{"type", "float"}, {"low", 0}, {"high", 0.99}}},
                 {"dropout", {{"type", "float"}, {"low", 0}, {"high", 0.5}, {"step", 0.05}}},
                 {"wd", {{"type", "float"}, {"low", 1e-6}, {"high", 1e-2}, {"log", true}}},
                 {"units", {{"type", "int"}, {"low", 16}, {"high", 1024}, {"log", true}}},
                 {"layers", {{"type", "int"}, {"low", 1}, {"high", 8}}},
                 {"batch", {{"type", "choice"}, {"values", {32, 64, 128, 256}}}},
                 {"act", {{"type", "choice"}, {"values", {"relu", "tanh", "elu"}}}}};
  Space space = must_parse(space8);
  for (int size : {1000, 10000}) {
    auto random =
        hpo::search::make_sampler(space, json{{"type", "random"}}, 7, Direction::kMinimize);
    History history;
    std::mt19937_64 rng(1);
    for (int n = 0; n < size; ++n) {
      auto c = (*random)->ask(history, n);
      history.push_back(TrialRecord{
          n, TrialState::kCompleted, **c, static_cast<double>(rng() % 100000) / 1000.0, {}});
    }
    // CPU time of this thread: the machine may be shared, wall time would
    // count the other processes too. The wall figure is printed beside it.
    auto cpu_us = [] {
      timespec t{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
      return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
    };
    // "cmaes-cold": a new sampler for every ask (a resumed study's first ask replays every
    // generation); "cmaes": one sampler, as the scheduler keeps it (its cache replays none).
    for (const char* type : {"tpe", "cmaes", "cmaes-cold"}) {
      const bool cold = std::string(type) == "cmaes-cold";
      const json spec{{"type", cold ? "cmaes" : type}};
      auto sampler = hpo::search::make_sampler(space, spec, 7, Direction::kMinimize);
      const int asks = cold ? 20 : 200;
      (void)(*sampler)->ask(history, size);  // warm the allocator (and the cache)
      auto wall = std::chrono::steady_clock::now();
      double cpu = cpu_us();
      for (int k = 0; k < asks; ++k) {
        if (cold) sampler = hpo::search::make_sampler(space, spec, 7, Direction::kMinimize);
        auto c = (*sampler)->ask(history, size + k);
        if (!c || !*c) return 1;
      }
      double us = (cpu_us() - cpu) / asks;
      double wall_us = std::chrono::duration<double, std::micro>(
                           std::chrono::steady_clock::now() - wall).count() / asks;
      std::printf("ask_us %s %d %.1f\n", type, size, us);
      std::printf("ask_wall_us %s %d %.1f\n", type, size, wall_us);
      std::printf("asks %s %d %d\n", type, size, asks);
    }
    std::fflush(stdout);
  }
  return 0;
}
