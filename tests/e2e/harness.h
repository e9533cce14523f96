// What the end-to-end tests share on top of tests/support: the options the
// scheduler and agents run with here, a sleeping study, and read-only looks
// at the results database while the scheduler writes it (WAL: readers never
// block the writer).
#pragma once

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "results/store.h"
#include "tests/support/ports.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace hpo::e2e {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::free_port;
using test::Process;
using test::read_text;
using test::run_hpo;
using test::TempDir;
using test::wait_until;
using test::write_text;

// The trials of `study` in `db` (empty while the study does not exist yet).
inline std::vector<results::TrialRow> trials_of(const fs::path& db, const std::string& study) {
  if (!fs::exists(db)) return {};
  auto store = results::Store::open(db.string(), results::OpenMode::kReadOnly);
  if (!store) return {};
  auto row = store->find_study(study);
  if (!row || !*row) return {};
  auto t = store->trials((*row)->id);
  return t ? *t : std::vector<results::TrialRow>{};
}

// The trials of `study` in `db`, which must be there.
inline std::vector<results::TrialRow> stored_trials(const fs::path& db, const std::string& study) {
  auto store = results::Store::open(db.string(), results::OpenMode::kReadOnly);
  REQUIRE(store);
  auto row = store->find_study(study);
  REQUIRE(row);
  REQUIRE(*row);
  auto t = store->trials((*row)->id);
  REQUIRE(t);
  return *t;
}

inline std::vector<results::MetricRow> metrics_of(const fs::path& db, std::int64_t trial_id) {
  auto store = results::Store::open(db.string(), results::OpenMode::kReadOnly);
  if (!store) return {};
  auto m = store->metrics(trial_id);
  return m ? *m : std::vector<results::MetricRow>{};
}

inline std::size_t count_state(const std::vector<results::TrialRow>& trials, search::TrialState s) {
  return static_cast<std::size_t>(
      std::count_if(trials.begin(), trials.end(), [&](const auto& t) { return t.state == s; }));
}

// Trials of `study` by state, read-only (empty while the study does not exist).
inline std::map<search::TrialState, std::int64_t> counts(const fs::path& db,
                                                         const std::string& study) {
  auto store = results::Store::open(db.string(), results::OpenMode::kReadOnly);
  if (!store) return {};
  auto row = store->find_study(study);
  if (!row || !*row) return {};
  auto c = store->count_trials((*row)->id);
  return c ? *c : std::map<search::TrialState, std::int64_t>{};
}

inline std::int64_t completed(const fs::path& db, const std::string& study) {
  auto c = counts(db, study);
  auto it = c.find(search::TrialState::kCompleted);
  return it == c.end() ? 0 : it->second;
}

// A study of the builtin "sleep" trial: `seconds` per trial in `steps` reports.
inline nlohmann::json sleep_study(const std::string& name, int max_trials, int max_parallel,
                                  double seconds, int steps) {
  return {{"name", name},
          {"objective", {{"metric", "value"}, {"direction", "minimize"}}},
          {"sampler", {{"type", "random"}}},
          {"seed", 5},
          {"budget", {{"max_trials", max_trials}, {"max_parallel", max_parallel}}},
          {"trial",
           {{"kind", "builtin"}, {"function", "sleep"}, {"seconds", seconds}, {"steps", steps}}},
          {"space", {{"x", {{"type", "float"}, {"low", 0}, {"high", 1}}}}}};
}

// The checkpoint packs (scheduler/checkpoints.h) under `dir`, at any depth; 0 without it.
inline std::size_t packs_in(const fs::path& dir) {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    n += it->path().extension() == ".pack";
  }
  return n;
}

inline void write_json(const fs::path& p, const nlohmann::json& j) { write_text(p, j.dump(2)); }

// Common options: fast heartbeats so lost agents are noticed in ~1 s.
inline std::vector<std::string> scheduler_args(const fs::path& db, int port,
                                               const fs::path& study) {
  return {"scheduler",
          "--db",
          db.string(),
          "--bind",
          "tcp://127.0.0.1:" + std::to_string(port),
          "--study",
          study.string(),
          "--exit-when-done",
          "--heartbeat-ms",
          "200",
          "--liveness",
          "5"};
}

inline std::vector<std::string> agent_args(int port, const fs::path& workdir, int cpu_slots,
                                           const std::string& name) {
  return {"agent",
          "--connect",
          "tcp://127.0.0.1:" + std::to_string(port),
          "--gpus",
          "none",
          "--cpu-slots",
          std::to_string(cpu_slots),
          "--workdir",
          workdir.string(),
          "--name",
          name,
          "--heartbeat-ms",
          "200",
          "--kill-grace-seconds",
          "0.5",
          "--shutdown-grace-seconds",
          "1",
          "--verbose"};
}

// Keys for a secured cluster, made with the real `hpo keys new` under DIR/keys: the
// scheduler's pair, one pair per agent name in keys/agents, one per submitter in
// keys/submitters (the allow-list directories are those two).
struct ClusterKeys {
  fs::path dir;
  std::vector<std::string> scheduler_args() const {
    return {"--key", (dir / "scheduler.secret").string(), "--agent-keys",
            (dir / "agents").string(), "--submitter-keys", (dir / "submitters").string()};
  }
  // The client flags of an agent or submitter key `name` ("agents/a1", "submitters/alice").
  std::vector<std::string> client_args(const std::string& name) const {
    return {"--key", (dir / (name + ".secret")).string(), "--scheduler-key",
            (dir / "scheduler.key").string()};
  }
};

inline ClusterKeys make_keys(const fs::path& where, const std::vector<std::string>& agents,
                             const std::vector<std::string>& submitters) {
  ClusterKeys k{where / "keys"};
  auto make = [&](const std::string& name, const fs::path& dir) {
    auto r = run_hpo("keys new " + name + " --dir " + dir.string());
    INFO(r.err);
    REQUIRE(r.code == 0);
  };
  make("scheduler", k.dir);
  fs::create_directories(k.dir / "agents");
  fs::create_directories(k.dir / "submitters");
  for (const auto& a : agents) make(a, k.dir / "agents");
  for (const auto& s : submitters) make(s, k.dir / "submitters");
  return k;
}

inline std::vector<std::string> plus_args(std::vector<std::string> args,
                                          const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

}  // namespace hpo::e2e
