// Multi-fidelity benchmark, "many seeds, fast" (issue 14); experiments/bench_multifidelity.sh
// runs the studies through `hpo run` and calls this program for the rest:
//   bench_multifidelity study CURVES.json METHOD SEED SECONDS_PER_EPOCH MAX_SECONDS
//       prints the study file of one run: CURVES.json (experiments/curves.json) with the
//       method's sampler, pruner and scheduler, the seed, the per-epoch sleep and the time
//       budget (8 in parallel). Methods: random, tpe-median, asha-random, asha-tpe,
//       hyperband-tpe.
//   bench_multifidelity space CURVES.json
//       the space's figures from 100,000 random configs, evaluated with the agent's own
//       curves model (trainer/agent/curves.h): the 95th/99th percentiles of the accuracy at
//       epoch 27 and how well epochs 1, 3, 9 rank configs by it. Lines "threshold P VALUE",
//       "spearman E RHO", "top3 E FRACTION".
//   bench_multifidelity check METHOD DB
//       fails unless the run completed a trial and, for ASHA/Hyperband, resumed a paused one.
//   bench_multifidelity summarize T95 T99 BUDGET_S SECONDS_PER_EPOCH METHOD=DB...
//       the tables of the results file, from each run's store (results library).
// Elapsed time is from the study's creation (studies.created) to a trial's finish time.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "results/store.h"
#include "search/sampler.h"
#include "search/study.h"
#include "trainer/agent/curves.h"

using nlohmann::json;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int kEpochs = hpo::agent::kCurveEpochs;
const char* const kMethods[] = {"random", "tpe-median", "asha-random", "asha-tpe", "hyperband-tpe"};

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "bench_multifidelity: %s\n", message.c_str());
  std::exit(1);
}

template <typename T>
T must(hpo::Result<T> r, const std::string& what) {
  if (!r) die(what + ": " + r.error().message);
  return std::move(*r);
}

double number_arg(const char* text, const char* what) {
  char* end = nullptr;
  double v = std::strtod(text, &end);
  if (end == text || *end != '\0' || !std::isfinite(v)) {
    die(std::string(what) + ": not a number: '" + text + "'");
  }
  return v;
}

// Median of v; +-inf entries (a seed that never got there) sort to their end, so a median
// that is infinite means more than half the seeds did not get there.
double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// ---- study ----

int study(const std::string& curves_file, const std::string& method, std::uint64_t seed,
          double seconds, double max_seconds) {
  json s = must(hpo::search::read_json_file(curves_file), curves_file);
  const json median_pruner = s.at("pruner");  // the file's sampler is TPE
  const json asha = {{"type", "asha"},
                     {"resource", "epoch"},
                     {"min_resource", 1},
                     {"max_resource", kEpochs},
                     {"reduction_factor", 3}};
  json scheduler = nullptr;
  s["pruner"] = {{"type", "none"}};
  if (method == "random") {
    s["sampler"] = {{"type", "random"}};
  } else if (method == "tpe-median") {
    s["pruner"] = median_pruner;
  } else if (method == "asha-random") {
    s["sampler"] = {{"type", "random"}};
    scheduler = asha;
  } else if (method == "asha-tpe") {
    scheduler = asha;
  } else if (method == "hyperband-tpe") {
    scheduler = asha;
    scheduler["type"] = "hyperband";
  } else {
    die("unknown method '" + method +
        "' (random, tpe-median, asha-random, asha-tpe, hyperband-tpe)");
  }
  if (!scheduler.is_null()) {
    s.erase("pruner");  // a study has a pruner or a scheduler, not both
    s["scheduler"] = scheduler;
  }
  s["name"] = "mf-" + method + "-" + std::to_string(seed);
  s["seed"] = seed;
  // The time budget ends every run; max_trials is only a bound no run reaches.
  s["budget"] = {{"max_trials", 100000},
                 {"max_parallel", 8},
                 {"max_seconds", max_seconds},
                 {"target", nullptr},
                 {"max_retries", 0}};
  s["trial"]["seconds"] = seconds;
  s["trial"]["steps"] = kEpochs;
  must(hpo::search::parse_study(s, "study " + method), "the generated study");
  std::printf("%s\n", s.dump(2).c_str());
  return 0;
}

// ---- space ----

std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<size_t> order(v.size());
  for (size_t i = 0; i < v.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (size_t i = 0; i < order.size();) {  // ties share their mean rank
    size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    for (size_t k = i; k <= j; ++k) r[order[k]] = 0.5 * static_cast<double>(i + j);
    i = j + 1;
  }
  return r;
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  double n = static_cast<double>(x.size()), mx = 0, my = 0;
  for (size_t i = 0; i < x.size(); ++i) mx += x[i] / n, my += y[i] / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxy / std::sqrt(sxx * syy);
}

int space(const std::string& curves_file) {
  auto spec = must(hpo::search::load_study_file(curves_file), curves_file);
  auto sampler = must(hpo::search::make_sampler(spec.space, json{{"type", "random"}}, 20261202,
                                                hpo::search::Direction::kMaximize),
                      "random sampler");
  const int n = 100000;
  const int early[] = {1, 3, 9};
  std::vector<double> final_acc(n);
  std::vector<std::vector<double>> at(3, std::vector<double>(n));
  for (int i = 0; i < n; ++i) {
    auto config = must(sampler->ask({}, i), "sampling");
    if (!config) die("the random sampler ran dry");
    auto params = must(hpo::agent::curve_params(*config), "config");
    final_acc[i] = hpo::agent::curve_accuracy(params, kEpochs);
    for (int k = 0; k < 3; ++k) at[k][i] = hpo::agent::curve_accuracy(params, early[k]);
  }
  std::vector<double> sorted = final_acc;
  std::sort(sorted.begin(), sorted.end());
  auto quantile = [&](double q) { return sorted[static_cast<size_t>(q * (n - 1))]; };
  std::printf("configs %d\n", n);
  std::printf("threshold 95 %.6f\n", quantile(0.95));
  std::printf("threshold 99 %.6f\n", quantile(0.99));
  std::printf("max %.6f\n", sorted.back());
  auto final_rank = ranks(final_acc);
  for (int k = 0; k < 3; ++k) {
    std::printf("spearman %d %.4f\n", early[k], pearson(ranks(at[k]), final_rank));
    // How many of the final top 5% are in the top third at that epoch: the configs an ASHA
    // rung at that epoch (reduction factor 3) would promote at once.
    std::vector<double> e = at[k];
    std::sort(e.begin(), e.end());
    double cut = e[static_cast<size_t>((2.0 / 3.0) * (n - 1))];
    int top = 0, kept = 0;
    for (int i = 0; i < n; ++i) {
      if (final_acc[i] < quantile(0.95)) continue;
      ++top;
      kept += at[k][i] >= cut;
    }
    std::printf("top3 %d %.4f\n", early[k], static_cast<double>(kept) / top);
  }
  return 0;
}

// ---- summarize ----

// One run's store, as the tables need it: times relative to the study's creation.
struct Run {
  std::vector<std::pair<double, double>> completed;  // (finished, value) of COMPLETED trials
  std::vector<std::pair<double, double>> reported;   // (time, value) of every reported value
  std::map<hpo::search::TrialState, int> states;
  int trials = 0, resumed = 0, starts = 0, epochs = 0;  // starts: attempts, resumes included
  std::vector<double> full_run_seconds;  // finished - started of COMPLETED trials, attempt 1
  double first_start = kInf;
};

Run read_run(const std::string& db) {
  auto store = must(hpo::results::Store::open(db, hpo::results::OpenMode::kReadOnly), db);
  auto studies = must(store.list_studies(), db);
  if (studies.size() != 1)
    die(db + ": expected one study, found " + std::to_string(studies.size()));
  const auto& st = studies[0];
  Run run;
  for (const auto& t : must(store.trials(st.id), db)) {
    ++run.trials;
    ++run.states[t.state];
    if (t.attempt >= 2) ++run.resumed;
    run.starts += static_cast<int>(t.attempt);
    if (t.started) run.first_start = std::min(run.first_start, *t.started - st.created);
    if (t.state == hpo::search::TrialState::kCompleted) {
      if (!t.value || !t.finished)
        die(db + ": COMPLETED trial " + std::to_string(t.number) +
            " without a value or finish time");
      run.completed.emplace_back(*t.finished - st.created, *t.value);
      if (t.attempt == 1 && t.started) run.full_run_seconds.push_back(*t.finished - *t.started);
    }
  }
  for (const auto& m : must(store.study_metrics(st.id), db)) {
    if (m.name != st.metric) continue;
    run.reported.emplace_back(m.time - st.created, m.value);
    ++run.epochs;
  }
  return run;
}

double best_by(const std::vector<std::pair<double, double>>& points, double t) {
  double best = -kInf;
  for (auto [time, value] : points) {
    if (time <= t) best = std::max(best, value);
  }
  return best;
}

double time_to(const std::vector<std::pair<double, double>>& points, double threshold) {
  double first = kInf;
  for (auto [time, value] : points) {
    if (value >= threshold) first = std::min(first, time);
  }
  return first;
}

std::string cell(double v, const char* format) {
  if (std::isnan(v) || v == -kInf) return "-";
  if (v == kInf) return "never";
  char buf[32];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

using Points = std::vector<std::pair<double, double>> Run::*;

void curve_table(const std::map<std::string, std::vector<Run>>& runs, double budget, Points which) {
  std::printf("%-15s", "method");
  for (int k = 1; k <= 10; ++k) std::printf("%8.1fs", budget * k / 10);
  std::printf("\n");
  for (const char* method : kMethods) {
    auto it = runs.find(method);
    if (it == runs.end()) continue;
    std::printf("%-15s", method);
    for (int k = 1; k <= 10; ++k) {
      std::vector<double> v;
      for (const auto& r : it->second) v.push_back(best_by(r.*which, budget * k / 10));
      std::printf("%9s", cell(median(v), "%.4f").c_str());
    }
    std::printf("\n");
  }
}

// Seconds to the threshold from the study's creation, and from the run's first trial start
// (without the agents' start-up, the same for every method).
void threshold_table(const std::map<std::string, std::vector<Run>>& runs, double threshold,
                     Points which) {
  std::printf("%-15s%12s%10s%16s%14s%16s\n", "method", "median s", "reached", "random/method",
              "from 1st s", "random/method");
  double random_median = kInf, random_after = kInf;
  for (const char* method : kMethods) {
    auto it = runs.find(method);
    if (it == runs.end()) continue;
    std::vector<double> times, after;
    int reached = 0;
    for (const auto& r : it->second) {
      times.push_back(time_to(r.*which, threshold));
      after.push_back(times.back() - r.first_start);
      reached += std::isfinite(times.back());
    }
    double m = median(times), a = median(after);
    if (std::string(method) == "random") random_median = m, random_after = a;
    auto ratio = [](double x, double y) {
      return std::isfinite(x) && std::isfinite(y) ? x / y : NAN;
    };
    std::printf("%-15s%12s%7d/%-2zu%16s%14s%16s\n", method, cell(m, "%.2f").c_str(), reached,
                it->second.size(), cell(ratio(random_median, m), "%.2f").c_str(),
                cell(a, "%.2f").c_str(), cell(ratio(random_after, a), "%.2f").c_str());
  }
}

// Fails loudly on a run that did not do what its method says: no trial ran all epochs, or an
// ASHA/Hyperband run that never resumed a paused trial (agents that ignore PAUSE).
int check(const std::string& method, const std::string& db) {
  Run r = read_run(db);
  auto count = [&](hpo::search::TrialState s) {
    auto f = r.states.find(s);
    return f == r.states.end() ? 0 : f->second;
  };
  std::fprintf(stderr, "    %s: %d trials, %d completed, %d pruned, %d resumed\n", db.c_str(),
               r.trials, count(hpo::search::TrialState::kCompleted),
               count(hpo::search::TrialState::kPruned), r.resumed);
  if (r.completed.empty()) die(db + ": no trial ran all " + std::to_string(kEpochs) + " epochs");
  const bool pauses = method.rfind("asha", 0) == 0 || method.rfind("hyperband", 0) == 0;
  if (pauses && r.resumed == 0) {
    die(db + ": " + method + " run without a resumed trial (attempt >= 2): were trials paused?");
  }
  return 0;
}

int summarize(double t95, double t99, double budget, double seconds, int argc, char** argv) {
  std::map<std::string, std::vector<Run>> runs;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    auto eq = arg.find('=');
    if (eq == std::string::npos) die("expected METHOD=DB, got '" + arg + "'");
    runs[arg.substr(0, eq)].push_back(read_run(arg.substr(eq + 1)));
  }
  std::printf(
      "Median over seeds of the best val_accuracy so far, against seconds since the\n"
      "study's creation; only trials that ran all %d epochs (COMPLETED, final value)\n",
      kEpochs);
  curve_table(runs, budget, &Run::completed);
  std::printf("\nThe same, counting any reported value (any epoch of any trial)\n");
  curve_table(runs, budget, &Run::reported);
  for (auto [label, t] : {std::pair{"95th", t95}, std::pair{"99th", t99}}) {
    std::printf(
        "\nSeconds to a COMPLETED trial at or above the %s percentile of the space's\n"
        "final accuracies (%.4f), from the study's creation: median over seeds ('never':\n"
        "more than half the seeds did not get there within %.0f s), seeds that got there;\n"
        "then the same from each run's first trial start (without the agents' start-up)\n",
        label, t, budget);
    threshold_table(runs, t, &Run::completed);
    std::printf("(counting any reported value)\n");
    threshold_table(runs, t, &Run::reported);
  }
  std::printf(
      "\nWhat the runs did (median over seeds): trials, by final state, trials resumed\n"
      "(attempt >= 2), starts (attempts, resumes included), epochs run, epochs per\n"
      "slot-second over the ideal %.0f ('use'), the slot time neither asleep in an epoch\n"
      "nor before the run's first trial start, per start ('idle ms': dispatch, pauses,\n"
      "checkpoints, the epoch cut at the end), and the first trial's start after the study's\n"
      "creation (the agents' start-up)\n",
      1 / seconds);
  std::printf("%-15s%7s%9s%7s%7s%8s%7s%7s%6s%8s%7s\n", "method", "trials", "complete", "pruned",
              "cancel", "resumed", "starts", "epochs", "use", "idle ms", "1st s");
  using hpo::search::TrialState;
  for (const char* method : kMethods) {
    auto it = runs.find(method);
    if (it == runs.end()) continue;
    std::vector<double> trials, done, pruned, cancelled, resumed, starts, epochs, use, idle, first;
    for (const auto& r : it->second) {
      auto count = [&](TrialState s) {
        auto f = r.states.find(s);
        return f == r.states.end() ? 0.0 : f->second;
      };
      trials.push_back(r.trials);
      done.push_back(count(TrialState::kCompleted));
      pruned.push_back(count(TrialState::kPruned));
      cancelled.push_back(count(TrialState::kCancelled));
      resumed.push_back(r.resumed);
      starts.push_back(r.starts);
      idle.push_back(1000 * (8 * (budget - r.first_start) - r.epochs * seconds) / r.starts);
      epochs.push_back(r.epochs);
      use.push_back(r.epochs * seconds / (8 * budget));
      first.push_back(r.first_start);
    }
    std::printf("%-15s%7.0f%9.0f%7.0f%7.0f%8.0f%7.0f%7.0f%6.2f%8.1f%7.2f\n", method, median(trials),
                median(done), median(pruned), median(cancelled), median(resumed), median(starts),
                median(epochs), median(use), median(idle), median(first));
  }
  auto it = runs.find("random");
  if (it != runs.end()) {
    std::vector<double> d;
    int above = 0, done = 0;
    for (const auto& r : it->second) {
      d.insert(d.end(), r.full_run_seconds.begin(), r.full_run_seconds.end());
      for (const auto& [time, value] : r.completed) above += value >= t95, ++done;
    }
    std::printf(
        "\nOverhead: a random trial of %d epochs takes %.3f s from its start to its\n"
        "finish in the store (median of %zu), against %d x %.3f = %.3f s of sleep\n",
        kEpochs, median(d), d.size(), kEpochs, seconds, kEpochs * seconds);
    // The runs' random configs against the space's sample: about 5% should pass.
    std::printf("Random's COMPLETED trials at or above the 95th percentile: %d of %d (%.1f%%)\n",
                above, done, 100.0 * above / std::max(done, 1));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "study" && argc == 7) {
    return study(argv[2], argv[3], static_cast<std::uint64_t>(number_arg(argv[4], "SEED")),
                 number_arg(argv[5], "SECONDS_PER_EPOCH"), number_arg(argv[6], "MAX_SECONDS"));
  }
  if (cmd == "space" && argc == 3) return space(argv[2]);
  if (cmd == "check" && argc == 4) return check(argv[2], argv[3]);
  if (cmd == "summarize" && argc >= 7) {
    return summarize(number_arg(argv[2], "T95"), number_arg(argv[3], "T99"),
                     number_arg(argv[4], "BUDGET_S"), number_arg(argv[5], "SECONDS_PER_EPOCH"),
                     argc - 6, argv + 6);
  }
  std::fprintf(stderr,
               "usage: bench_multifidelity study CURVES.json METHOD SEED SECONDS_PER_EPOCH "
               "MAX_SECONDS\n"
               "       bench_multifidelity space CURVES.json\n"
               "       bench_multifidelity check METHOD DB\n"
               "       bench_multifidelity summarize T95 T99 BUDGET_S SECONDS_PER_EPOCH "
               "METHOD=DB...\n");
  return 2;
}
