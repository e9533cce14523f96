// Benchmark of the results store (issue 3), with Optuna's RDB storage on
// SQLite as the peer, measured in the same run on the same machine.
//
//   build/experiments/bench_store [--trials 100000] [--batch 100] [--metrics 5]
//       [--optuna-seconds 20] [--hpo build/hpo] [--out experiments/results/store.txt]
//
// Figures: metric rows/s inserting trials through the Store API in per-turn
// transactions (target >= 50,000), the same with one trial per transaction
// and with synchronous=FULL, the leaderboard's top 10 at that size through
// the API and as `hpo leaderboard` end to end (target < 100 ms), history()
// (what a resumed scheduler reads), and the peer's trials/s and best_trial
// time.
//
// Like for like: the peer (experiments/bench_store_optuna.py) gets the
// settings of hpo's store, WAL and synchronous=NORMAL, a connection pool, and
// a RandomSampler, so that what is timed is the storage, not TPE. Optuna commits every ask,
// suggestion, report and tell on its own, so hpo's one-trial-per-transaction
// line is its closest counterpart; the synchronous=FULL lines (hpo durable,
// Optuna with FULL) compare the fsync-per-commit trade on both sides.
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "results/store.h"

namespace {

using hpo::results::OpenMode;
using hpo::results::Store;
using hpo::results::TrialState;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

template <class T>
T must(hpo::Result<T> r, const char* what) {
  if (!r) {
    std::cerr << "bench_store: " << what << ": " << r.error().message << "\n";
    std::exit(1);
  }
  return std::move(*r);
}
void must(hpo::Status s, const char* what) {
  if (!s) {
    std::cerr << "bench_store: " << what << ": " << s.error().message << "\n";
    std::exit(1);
  }
}

double median_ms(int repeat, const std::function<void()>& body) {
  std::vector<double> times;
  for (int i = 0; i < repeat; ++i) {
    auto start = Clock::now();
    body();
    times.push_back(seconds_since(start) * 1000.0);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

std::string run_capture(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  std::array<char, 4096> buf{};
  while (std::size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  pclose(p);
  return out;
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct InsertResult {
  double seconds = 0;
  double cpu = 0;  // user + system seconds of this process
  double commit_p99_ms = 0;
  double commit_max_ms = 0;
  std::int64_t trials = 0;
  std::int64_t metric_rows = 0;
};

// The scheduler's write pattern: per turn (one transaction) `batch` trials
// are added, started, report `metrics` intermediate values and finish.
InsertResult insert(Store& store, std::int64_t study, std::int64_t trials, int batch, int metrics) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const char* optimizers[] = {"sgd", "adam", "rmsprop"};
  InsertResult r;
  std::vector<double> commits;
  auto start = Clock::now();
  const double cpu_start = cpu_seconds();
  for (std::int64_t first = 0; first < trials; first += batch) {
    auto tx = must(store.begin(), "begin");
    const double now = 1.7e9 + static_cast<double>(first);
    for (std::int64_t n = first; n < std::min(trials, first + batch); ++n) {
      nlohmann::json config = {
          {"solver",
           {{"lr", std::pow(10.0, -4.0 + 3.0 * u(rng))},
            {"batch_size", 32 << (n % 5)},
            {"optimizer", {{"type", optimizers[n % 3]}, {"momentum", 0.5 + 0.49 * u(rng)}}}}},
          {"net", {{"dense", nlohmann::json::array({{{"units", 64 * (1 + n % 8)}}})}}}};
      auto id = must(store.add_trial(study, n, config, "hash", now), "add_trial");
      must(store.start_trial(id, 1, "lease", "agent-0", "", now), "start_trial");
      double value = 0.0;
      for (int step = 1; step <= metrics; ++step) {
        value = u(rng) * step / metrics;
        must(store.record_metric(id, step, "val_accuracy", value, now + step), "record_metric");
        ++r.metric_rows;
      }
      must(store.finish_trial(id, TrialState::kCompleted, value, "", "", now + metrics + 1),
           "finish_trial");
      ++r.trials;
    }
    auto commit_start = Clock::now();
    must(tx.commit(), "commit");
    commits.push_back(seconds_since(commit_start) * 1000.0);
  }
  std::sort(commits.begin(), commits.end());
  if (!commits.empty()) {
    r.commit_p99_ms = commits[commits.size() * 99 / 100];
    r.commit_max_ms = commits.back();
  }
  r.seconds = seconds_since(start);
  r.cpu = cpu_seconds() - cpu_start;
  return r;
}

std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == "--" + name) return argv[i + 1];
  }
  return fallback;
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// The last line of the peer's output (its JSON), or "" when it did not run.
std::string run_peer(const std::string& command) {
  std::string out = run_capture(command + " 2>/dev/null");
  while (!out.empty() && out.back() == '\n') out.pop_back();
  if (auto nl = out.rfind('\n'); nl != std::string::npos) out = out.substr(nl + 1);
  return out;
}

// A field of the peer's JSON line as text (strings unquoted), "?" when absent.
std::string json_field(const std::string& line, const std::string& key) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains(key)) return "?";
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

// A numeric field of the peer's JSON line, NaN when absent.
double json_number(const std::string& line, const std::string& key) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains(key) || !j[key].is_number()) return NAN;
  return j[key].get<double>();
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t trials = std::stoll(arg(argc, argv, "trials", "100000"));
  const int batch = std::stoi(arg(argc, argv, "batch", "100"));
  const int metrics = std::stoi(arg(argc, argv, "metrics", "5"));
  const std::string optuna_seconds = arg(argc, argv, "optuna-seconds", "20");
  const std::filesystem::path self = std::filesystem::canonical("/proc/self/exe");
  const std::string hpo_binary =
      arg(argc, argv, "hpo", (self.parent_path().parent_path() / "hpo").string());
  const std::string out_path =
      arg(argc, argv, "out", std::string(HPO_SOURCE_DIR) + "/experiments/results/store.txt");

  char dir_template[] = "/tmp/hpo-bench-store-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) return 1;
  const std::string dir = dir_template;
  const std::string db = dir + "/hpo.db";

  std::ostringstream report;
  utsname uts{};
  uname(&uts);
  report << "# hpo results store benchmark (experiments/bench_store.cpp, issue 3)\n"
         << "machine: " << uts.machine << ", " << sysconf(_SC_NPROCESSORS_ONLN) << " cores, "
         << "SQLite " << sqlite3_libversion() << ", nice " << getpriority(PRIO_PROCESS, 0) << "\n"
         << "load average (/proc/loadavg, 1/5/15 min) before " << loadavg()
         << " (after: at the end; other processes on the cores make every figure a lower "
            "bound, for hpo and the peer alike)\n"
         << "command: " << self.filename().string() << " --trials " << trials << " --batch "
         << batch << " --metrics " << metrics << " --optuna-seconds " << optuna_seconds << "\n\n";

  // 1. Insert through the API, the scheduler's way.
  InsertResult ins;
  {
    auto store = must(Store::open(db, OpenMode::kWriter), "open");
    hpo::results::StudyRow study;
    study.name = "bench";
    study.metric = "val_accuracy";
    study.direction = hpo::search::Direction::kMaximize;
    study.spec = {{"name", "bench"}};
    const auto id = must(store.create_study(study), "create_study");
    ins = insert(store, id, trials, batch, metrics);
  }
  // The same pattern with synchronous=FULL (fsync per commit), and with
  // SQLite's own checkpoints inside commits, on fewer trials.
  auto variant = [&](const std::string& file, hpo::results::OpenOptions options, std::int64_t count,
                     int per_tx) {
    auto store = must(Store::open(dir + "/" + file, OpenMode::kWriter, options), "open variant");
    hpo::results::StudyRow study;
    study.name = "bench";
    study.metric = "val_accuracy";
    study.spec = nlohmann::json::object();
    const auto id = must(store.create_study(study), "create_study");
    return insert(store, id, std::min<std::int64_t>(trials, count), per_tx, metrics);
  };
  const hpo::results::OpenOptions durable_options{.durable = true};
  InsertResult durable = variant("durable.db", durable_options, 20000, batch);
  InsertResult foreground = variant(
      "foreground.db", hpo::results::OpenOptions{.background_checkpoints = false}, 20000, batch);
  InsertResult background = variant("background.db", hpo::results::OpenOptions{}, 20000, batch);
  // One trial per transaction, as Optuna commits: NORMAL, then FULL (an
  // fsync per trial, so fewer trials).
  InsertResult single = variant("single.db", hpo::results::OpenOptions{}, 20000, 1);
  InsertResult single_durable = variant("single-durable.db", durable_options, 5000, 1);

  // 2. Queries at that size, from a reader as the CLI opens it.
  auto reader = must(Store::open(db, OpenMode::kReadOnly), "open reader");
  const auto study = must(reader.find_study("bench"), "find_study")->id;
  hpo::results::LeaderboardQuery top10;
  std::size_t shown = 0;
  const double lb_ms =
      median_ms(21, [&] { shown = must(reader.leaderboard(study, top10), "leaderboard").size(); });
  hpo::results::LeaderboardQuery filtered;
  filtered.where.push_back(
      must(hpo::results::parse_filter("solver.optimizer.type=adam"), "filter"));
  filtered.where.push_back(must(hpo::results::parse_filter("solver.batch_size=128"), "filter"));
  const double lb_where_ms =
      median_ms(21, [&] { (void)must(reader.leaderboard(study, filtered), "leaderboard where"); });
  hpo::results::LeaderboardQuery by_metric;
  by_metric.metric = "val_accuracy";
  by_metric.aggregate = hpo::results::Aggregate::kLast;
  const double lb_metric_ms =
      median_ms(5, [&] { (void)must(reader.leaderboard(study, by_metric), "leaderboard metric"); });
  std::size_t history_size = 0;
  const double history_ms =
      median_ms(3, [&] { history_size = must(reader.history(study), "history").size(); });
  const std::string cli = hpo_binary + " leaderboard --db " + db + " --top 10 --format json";
  std::string cli_out;
  const double cli_ms = median_ms(7, [&] { cli_out = run_capture(cli + " 2>&1"); });
  const bool cli_ok = cli_out.find("\"rank\": 10") != std::string::npos;
  const double db_mb = static_cast<double>(std::filesystem::file_size(db)) / (1024.0 * 1024.0);

  // 3. The peer, in the same run, with hpo's default durability and with FULL.
  const std::string peer = "/usr/bin/python3 " + std::string(HPO_SOURCE_DIR) +
                           "/experiments/bench_store_optuna.py --seconds " + optuna_seconds;
  const std::string peer_out = run_peer(peer + " --synchronous NORMAL");
  const std::string peer_full_out = run_peer(peer + " --synchronous FULL");
  const std::string peer_nullpool_out = run_peer(peer + " --synchronous NORMAL --pool null");

  char line[512];
  report << "hpo store (C++ API, SQLite WAL, synchronous=NORMAL, " << batch
         << " trials per transaction):\n";
  std::snprintf(
      line, sizeof line,
      "  insert %lld trials x %d metric rows (+ add/start/finish + 2 events each): "
      "%.2f s -> %.0f metric rows/s, %.0f trials/s   [target >= 50000 rows/s]\n"
      "    (CPU time of the inserting process %.2f s -> %.0f metric rows per CPU-second)\n",
      static_cast<long long>(ins.trials), metrics, ins.seconds,
      static_cast<double>(ins.metric_rows) / ins.seconds,
      static_cast<double>(ins.trials) / ins.seconds, ins.cpu,
      static_cast<double>(ins.metric_rows) / ins.cpu);
  report << line;
  report << "    (commit latency p99 " << ins.commit_p99_ms << " ms, max " << ins.commit_max_ms
         << " ms)\n";
  auto variant_line = [&](const char* label, const InsertResult& v) {
    std::snprintf(line, sizeof line,
                  "  %s, %lld trials: %.2f s -> %.0f metric rows/s; commit p99 %.2f ms, max "
                  "%.1f ms\n",
                  label, static_cast<long long>(v.trials), v.seconds,
                  static_cast<double>(v.metric_rows) / v.seconds, v.commit_p99_ms, v.commit_max_ms);
    report << line;
  };
  variant_line("default options again", background);
  variant_line("checkpoints inside commits (background_checkpoints=false)", foreground);
  variant_line("synchronous=FULL (OpenOptions::durable)", durable);
  variant_line("one trial per transaction", single);
  variant_line("one trial per transaction, synchronous=FULL (OpenOptions::durable)",
               single_durable);
  std::snprintf(line, sizeof line,
                "    (as trials/s: one per transaction %.0f, one per transaction + FULL %.0f)\n",
                static_cast<double>(single.trials) / single.seconds,
                static_cast<double>(single_durable.trials) / single_durable.seconds);
  report << line;
  std::snprintf(line, sizeof line,
                "  leaderboard top 10 at %lld trials (API, median of 21): %.3f ms (%zu rows)   "
                "[target < 100 ms]\n",
                static_cast<long long>(ins.trials), lb_ms, shown);
  report << line;
  std::snprintf(line, sizeof line,
                "  leaderboard top 10 with 2 --where filters (API, median of 21): %.3f ms\n",
                lb_where_ms);
  report << line;
  std::snprintf(line, sizeof line,
                "  leaderboard top 10 by a reported metric's last value (API, median of 5): "
                "%.1f ms\n",
                lb_metric_ms);
  report << line;
  std::snprintf(line, sizeof line,
                "  history() of %zu trials with %d intermediates each (API, median of 3): %.0f "
                "ms\n",
                history_size, metrics, history_ms);
  report << line;
  std::snprintf(line, sizeof line,
                "  `hpo leaderboard --top 10 --format json` end to end (process start to exit, "
                "median of 7): %.1f ms%s\n",
                cli_ms, cli_ok ? "" : "  [OUTPUT NOT AS EXPECTED]");
  report << line;
  std::snprintf(line, sizeof line, "  database size: %.1f MiB\n\n", db_mb);
  report << line;

  report << "Optuna " << json_field(peer_out, "optuna")
         << " RDBStorage on SQLite (same machine, same run; RandomSampler; ask, 4 suggestions, "
            "5 reports, tell; pragmas set on every connection by a SQLAlchemy connect "
            "listener and read back):\n";
  auto peer_lines = [&](const std::string& out, const std::string& command) {
    if (out.empty() || out.front() != '{') {
      report << "  peer failed to run: " << command << "\n";
      return;
    }
    std::snprintf(line, sizeof line,
                  "  journal_mode=%s synchronous=%s %s: %s trials in %.1f s -> %.1f trials/s "
                  "(%.1f intermediate rows/s)\n",
                  json_field(out, "journal_mode").c_str(), json_field(out, "synchronous").c_str(),
                  json_field(out, "pool").c_str(), json_field(out, "trials").c_str(),
                  json_number(out, "seconds"), json_number(out, "trials_per_s"),
                  json_number(out, "intermediate_rows_per_s"));
    report << line;
    std::snprintf(line, sizeof line,
                  "    study.best_trial at that size (median of 5): %.2f ms; load_study + "
                  "best_trial (median of 3): %.2f ms\n",
                  json_number(out, "best_trial_ms"), json_number(out, "load_and_best_trial_ms"));
    report << line;
    report << "    raw: " << out << "\n";
  };
  peer_lines(peer_out, peer + " --synchronous NORMAL");
  peer_lines(peer_full_out, peer + " --synchronous FULL");
  report << "  (SQLAlchemy 1.4's default for a SQLite file, a new connection per session:)\n";
  peer_lines(peer_nullpool_out, peer + " --synchronous NORMAL --pool null");
  report << "\nload average (/proc/loadavg, 1/5/15 min) after " << loadavg() << "\n";

  std::cout << report.str();
  std::ofstream out(out_path);
  out << report.str();
  if (!out) std::cerr << "bench_store: cannot write " << out_path << "\n";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}
