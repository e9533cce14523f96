// hpo's side of the sampler suite (experiments/suite/bench_suite.sh runs it beside Optuna):
// every problem x sampler x seed, asked in process exactly as the scheduler asks (the History
// holds every earlier trial, pending ones as RUNNING), one JSON line per run:
//   {"side":"hpo","sampler":S,"problem":P,"half":H,"seed":K,"trials":N,
//    "best":{"50":v,"100":v,"200":v},"seconds":t}
// where best at B is the true (noise-free) value of the trial with the best observation among
// the first B finished. "NAME-xW" runs NAME with W parallel workers: W trials are always pending
// and the oldest finishes next (the constant liar sees the others).
//
// Usage: bench_suite [--data DIR] [--problems a,b] [--half tune|validate|all]
//          [--samplers tpe,cmaes,random,tpe-x8] [--sampler NAME=JSON ...] [--seeds 0-9]
//          [--trials 200] [--jobs 2] [--out FILE] [--list] [--list-space PROBLEM]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "search/sampler.h"
#include "suite.h"

using hpo::search::Direction;
using hpo::search::History;
using hpo::search::Space;
using hpo::search::TrialRecord;
using hpo::search::TrialState;
using nlohmann::json;

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    std::size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::vector<int> parse_seeds(const std::string& s) {
  std::vector<int> out;
  for (const auto& part : split(s, ',')) {
    auto dash = part.find('-');
    if (dash == std::string::npos) {
      out.push_back(std::stoi(part));
    } else {
      for (int k = std::stoi(part.substr(0, dash)); k <= std::stoi(part.substr(dash + 1)); ++k)
        out.push_back(k);
    }
  }
  return out;
}

struct Job {
  const hpo::suite::Problem* problem;
  std::string sampler;  // name in the output
  json spec;            // the "sampler" object
  int workers;
  int seed;
};

// One run; returns the JSON line.
json run(const Job& job, int trials, const std::vector<int>& budgets) {
  const auto started = std::chrono::steady_clock::now();
  auto space = Space::parse(job.problem->space, job.problem->name);
  if (!space) throw std::runtime_error(space.error().message);
  auto sampler = hpo::search::make_sampler(*space, job.spec, static_cast<std::uint64_t>(job.seed),
                                           Direction::kMinimize);
  if (!sampler) throw std::runtime_error(sampler.error().message);
  History history;
  std::deque<std::int64_t> pending;
  std::vector<std::pair<double, double>> finished;  // (observed, truth) in finishing order
  std::int64_t asked = 0;
  auto ask = [&] {
    auto c = (*sampler)->ask(history, asked);
    if (!c || !*c) throw std::runtime_error(job.problem->name + ": the sampler gave no config");
    history.push_back(TrialRecord{asked, TrialState::kRunning, **c, std::nullopt, {}});
    pending.push_back(asked++);
  };
  while (static_cast<int>(finished.size()) < trials) {
    while (static_cast<int>(pending.size()) < job.workers && asked < trials) ask();
    const std::int64_t n = pending.front();
    pending.pop_front();
    TrialRecord& t = history[static_cast<std::size_t>(n)];
    double truth = 0;
    const double observed = hpo::suite::observe(*job.problem, t.config,
                                                hpo::suite::noise_seed(job.seed, n), &truth);
    t.state = TrialState::kCompleted;
    t.value = observed;
    finished.emplace_back(observed, truth);
  }
  json best = json::object();
  for (int b : budgets) {
    double best_observed = INFINITY, truth = NAN;
    for (int i = 0; i < std::min<int>(b, static_cast<int>(finished.size())); ++i) {
      if (finished[static_cast<std::size_t>(i)].first < best_observed) {
        best_observed = finished[static_cast<std::size_t>(i)].first;
        truth = finished[static_cast<std::size_t>(i)].second;
      }
    }
    best[std::to_string(b)] = truth;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return json{{"side", "hpo"},    {"sampler", job.sampler},           {"problem", job.problem->name},
              {"half", job.problem->half}, {"seed", job.seed}, {"trials", trials},
              {"best", best},     {"seconds", seconds}};
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = "experiments/suite/data", half = "all", out_path;
  std::vector<std::string> only, names{"tpe", "cmaes", "random", "tpe-x8"};
  std::map<std::string, json> specs{{"tpe", json{{"type", "tpe"}}},
                                    {"cmaes", json{{"type", "cmaes"}}},
                                    {"random", json{{"type", "random"}}},
                                    {"sobol", json{{"type", "sobol"}}},
                                    {"evolution", json{{"type", "evolution"}}}};
  std::vector<int> seeds = parse_seeds("0-9");
  int trials = 200, jobs = 2;
  bool list = false;
  std::string space_of;  // --list-space PROBLEM: print its space (check_hpo_run.sh)
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_suite: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--data") data = next();
    else if (a == "--problems") only = split(next(), ',');
    else if (a == "--half") half = next();
    else if (a == "--samplers") names = split(next(), ',');
    else if (a == "--sampler") {
      std::string v = next();
      auto eq = v.find('=');
      if (eq == std::string::npos) {
        std::fprintf(stderr, "bench_suite: --sampler takes NAME=JSON\n");
        return 2;
      }
      specs[v.substr(0, eq)] = json::parse(v.substr(eq + 1));
    } else if (a == "--seeds") seeds = parse_seeds(next());
    else if (a == "--trials") trials = std::stoi(next());
    else if (a == "--jobs") jobs = std::stoi(next());
    else if (a == "--out") out_path = next();
    else if (a == "--list") list = true;
    else if (a == "--list-space") space_of = next();
    else {
      std::fprintf(stderr, "bench_suite: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  const auto& problems = hpo::suite::problems(data);
  if (!space_of.empty()) {
    for (const auto& p : problems) {
      if (p.name == space_of) {
        std::printf("%s\n", p.space.dump().c_str());
        return 0;
      }
    }
    std::fprintf(stderr, "bench_suite: no problem %s\n", space_of.c_str());
    return 2;
  }
  if (list) {
    for (const auto& p : problems) {
      std::printf("%-24s %-9s %-12s %s\n", p.name.c_str(), p.half.c_str(), p.family.c_str(),
                  p.summary.c_str());
    }
    return 0;
  }
  std::vector<Job> queue;
  for (const auto& p : problems) {
    if (half != "all" && p.half != half) continue;
    if (!only.empty() && std::find(only.begin(), only.end(), p.name) == only.end()) continue;
    for (const auto& name : names) {
      std::string base = name;
      int workers = 1;
      if (auto x = name.rfind("-x"); x != std::string::npos) {
        base = name.substr(0, x);
        workers = std::stoi(name.substr(x + 2));
      }
      if (!specs.count(base)) {
        std::fprintf(stderr, "bench_suite: unknown sampler %s (give --sampler %s=JSON)\n",
                     base.c_str(), base.c_str());
        return 2;
      }
      for (int seed : seeds) queue.push_back(Job{&p, name, specs[base], workers, seed});
    }
  }
  std::vector<int> budgets;
  for (int b : {50, 100, 200}) {
    if (b <= trials) budgets.push_back(b);
  }
  if (budgets.empty() || budgets.back() != trials) budgets.push_back(trials);
  std::FILE* out = out_path.empty() ? stdout : std::fopen(out_path.c_str(), "a");
  if (!out) {
    std::perror(out_path.c_str());
    return 1;
  }
  std::atomic<std::size_t> next{0};
  std::mutex mu;
  int failures = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, jobs); ++t) {
    threads.emplace_back([&] {
      for (std::size_t k; (k = next++) < queue.size();) {
        try {
          json line = run(queue[k], trials, budgets);
          std::lock_guard lock(mu);
          std::fprintf(out, "%s\n", line.dump().c_str());
          std::fflush(out);
        } catch (const std::exception& e) {
          std::lock_guard lock(mu);
          std::fprintf(stderr, "bench_suite: %s\n", e.what());
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  if (out != stdout) std::fclose(out);
  return failures ? 1 : 0;
}
