// Helpers for the scheduler end-to-end tests: real `hpo` processes on
// 127.0.0.1 (scheduler, agents), a temporary directory, and read-only looks
// at the results database while the scheduler writes it (WAL).
#pragma once

#include <fcntl.h>
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
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "results/store.h"
#include "tests/e2e/process_harness.h"

namespace hpo::sched_e2e {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using e2e::free_port;
using e2e::read_text;
using e2e::TempDir;
using Proc = e2e::Process;

// Runs `hpo args...` to completion; returns (exit code, output).
inline std::pair<int, std::string> run_hpo(const std::vector<std::string>& args,
                                           const fs::path& log) {
  Proc p(args, log);
  auto code = p.wait(60s);
  REQUIRE(code);
  return {*code, p.log()};
}

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

inline void write_json(const fs::path& p, const nlohmann::json& j) {
  std::ofstream out(p);
  out << j.dump(2);
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

// Polls `pred` until true or `timeout`.
inline bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  return e2e::wait_until(pred, timeout);
}

}  // namespace hpo::sched_e2e
