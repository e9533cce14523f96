// Helpers for the agent end-to-end tests: a temporary directory, real `hpo`
// processes (scheduler, agents, run) on 127.0.0.1, and reads of the results
// database while they run (WAL: readers never block the scheduler).
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "results/store.h"
#include "tests/e2e/process_harness.h"

namespace hpo::e2e {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline std::vector<results::TrialRow> trials_of(const fs::path& db, const std::string& study) {
  if (!fs::exists(db)) return {};
  auto store = results::Store::open(db.string(), results::OpenMode::kReadOnly);
  if (!store) return {};
  auto row = store->find_study(study);
  if (!row || !*row) return {};
  auto t = store->trials((*row)->id);
  return t ? *t : std::vector<results::TrialRow>{};
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

}  // namespace hpo::e2e
