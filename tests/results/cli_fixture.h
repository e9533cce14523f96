// The query commands' tests (leaderboard_cli_test.cpp, query_cli_test.cpp): a
// database filled through the API, and readers of what `hpo` printed.
#pragma once

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/results/fixtures.h"
#include "tests/support/process.h"

namespace hpo::results::testing {

using nlohmann::json;
using test::run_hpo;
using test::RunResult;

inline json parse(const RunResult& r) {
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  return json::parse(r.out);
}

inline std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) out.push_back(line);
  return out;
}

// Splits one CSV record (quotes honoured).
inline std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        out.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

// A database with study "mlp" (maximize val_accuracy): trials 0..5 completed
// with value 0.5 + 0.05 * n, trial 6 failed, trial 7 running, trial 8 queued.
struct Db {
  TempDir dir;
  std::string path = dir / "hpo.db";
  std::string db = "--db " + path;

  Db() {
    auto store = open_writer(path);
    auto study = ok(store.create_study(study_row("mlp")));
    for (int n = 0; n < 9; ++n) {
      json config = {{"solver",
                      {{"lr", 0.001 * (n + 1)},
                       {"optimizer", {{"type", n % 2 ? "adam" : "sgd"}}},
                       {"note", "a, \"quoted\" value"}}},
                     {"net", {{"dense", json::array({{{"units", 64 * (n % 3 + 1)}}})}}},
                     {"sizes", json::array({64, 32})}};
      auto id = ok(store.add_trial(study, n, config, "h", 100.0 + n));
      if (n == 8) continue;
      ok(store.start_trial(id, 1, "L", "agent-" + std::to_string(n % 2), "", 200.0));
      for (int step = 1; step <= 3; ++step) {
        ok(store.record_metric(id, step, "val_accuracy", 0.5 + 0.05 * n - 0.1 / step, 201.0));
        ok(store.record_metric(id, step, "train_loss", 1.0 / step, 201.0));
      }
      if (n == 7) continue;
      if (n == 6) {
        ok(store.finish_trial(id, TrialState::kFailed, {}, "CUDA out of memory",
                              "tb line 1\ntb line 2", 230.0));
        continue;
      }
      ok(store.finish_trial(id, TrialState::kCompleted, 0.5 + 0.05 * n, "", "done", 265.0));
    }
  }
  void add_study(const std::string& name) {
    auto store = open_writer(path);
    ok(store.create_study(study_row(name, Direction::kMinimize, "loss")));
  }
};

}  // namespace hpo::results::testing
