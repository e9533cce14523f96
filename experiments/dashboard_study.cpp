// Writes a large finished study for the dashboard benchmark (experiments/bench_dashboard.py):
//
//   build/experiments/dashboard_study DB [--trials 100000] [--steps 5] [--agents 8] [--slots 4]
//       [--seed 1] [--optuna-json FILE]
//
// The study is what a long search on a cluster leaves behind: the curves space of
// experiments/curves.json (lr log-uniform, batch_size a choice, width, dropout), a median
// pruner's mix of COMPLETED (about 60%), PRUNED and a few FAILED trials, each with `steps`
// val_accuracy values, run on `agents` agents of `slots` slots back to back, written through the
// Store API as the scheduler writes it. --optuna-json also writes the same trials as JSON lines
// (params, value, state) for the peer to load into Optuna's storage.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <string>

#include "results/store.h"

namespace {

using hpo::results::OpenMode;
using hpo::results::Store;
using hpo::results::TrialState;

template <class T>
T must(hpo::Result<T> r, const char* what) {
  if (!r) {
    std::cerr << "dashboard_study: " << what << ": " << r.error().message << "\n";
    std::exit(1);
  }
  return std::move(*r);
}
void must(hpo::Status s, const char* what) {
  if (!s) {
    std::cerr << "dashboard_study: " << what << ": " << s.error().message << "\n";
    std::exit(1);
  }
}

long flag(int argc, char** argv, const std::string& name, long fallback) {
  for (int i = 2; i + 1 < argc; ++i) {
    if (argv[i] == name) return std::atol(argv[i + 1]);
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: dashboard_study DB [--trials N] [--steps S] [--agents A] [--slots K] "
                 "[--seed X] [--optuna-json FILE]\n";
    return 2;
  }
  const std::string db = argv[1];
  const long trials = flag(argc, argv, "--trials", 100000);
  const long steps = flag(argc, argv, "--steps", 5);
  const long agents = flag(argc, argv, "--agents", 8);
  const long slots = flag(argc, argv, "--slots", 4);
  std::string optuna_json;
  for (int i = 2; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--optuna-json") optuna_json = argv[i + 1];
  }
  std::mt19937_64 rng(static_cast<std::uint64_t>(flag(argc, argv, "--seed", 1)));
  std::uniform_real_distribution<double> unit(0.0, 1.0);

  Store store = must(Store::open(db, OpenMode::kWriter), "opening the database");
  hpo::results::StudyRow row;
  row.name = "big";
  row.metric = "val_accuracy";
  row.direction = hpo::search::Direction::kMaximize;
  row.seed = 1;
  row.status = "finished";
  row.spec = nlohmann::json::parse(R"({
    "name": "big", "objective": {"metric": "val_accuracy", "direction": "maximize"},
    "sampler": {"type": "tpe"}, "pruner": {"type": "median", "warmup_steps": 1, "min_trials": 5},
    "budget": {"max_trials": 100000, "max_parallel": 32},
    "trial": {"kind": "builtin", "function": "curves", "seconds": 0.1, "steps": 5},
    "space": {
      "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": true},
      "batch_size": {"type": "choice", "values": [32, 64, 128, 256, 512]},
      "width": {"type": "int", "low": 16, "high": 512, "log": true},
      "dropout": {"type": "float", "low": 0.0, "high": 0.6}}})");
  row.spec["budget"]["max_trials"] = trials;
  row.spec["trial"]["steps"] = steps;
  row.created = 1.8e9;
  const std::int64_t study = must(store.create_study(row), "creating the study");
  std::ofstream peer;
  if (!optuna_json.empty()) peer.open(optuna_json);

  // Each slot runs its trials back to back; a trial takes 60 to 300 s, a pruned one less.
  std::vector<double> slot_free(static_cast<std::size_t>(agents * slots), row.created);
  for (long a = 0; a < agents; ++a) {
    must(store.upsert_agent("gpu-node-" + std::to_string(a), "node" + std::to_string(a),
                            nlohmann::json::array({{{"index", 0}, {"name", "NVIDIA H200"}}}),
                            static_cast<int>(slots), row.created),
         "adding an agent");
  }
  auto tx = must(store.begin(), "beginning");
  const int sizes[] = {32, 64, 128, 256, 512};
  for (long n = 0; n < trials; ++n) {
    const double lr = std::pow(10.0, -4 + 3 * unit(rng));
    const int batch = sizes[rng() % 5];
    const int width = static_cast<int>(std::round(std::exp(std::log(16) + unit(rng) * std::log(32))));
    const double dropout = 0.6 * unit(rng);
    // A smooth optimum near lr 3e-3, dropout 0.3, wide nets; noise on top.
    const double quality = 0.93 - 0.02 * std::pow(std::log10(lr / 3e-3), 2) -
                           0.05 * std::pow(dropout - 0.3, 2) - 0.01 * std::log2(512.0 / width) / 5 +
                           0.004 * (unit(rng) - 0.5);
    const nlohmann::json config = {
        {"lr", lr}, {"batch_size", batch}, {"width", width}, {"dropout", dropout}};
    const double r = unit(rng);
    const TrialState state = r < 0.6 ? TrialState::kCompleted
                             : r < 0.98 ? TrialState::kPruned
                                        : TrialState::kFailed;
    const long ran = state == TrialState::kCompleted ? steps : 1 + static_cast<long>(rng() % steps);
    const std::size_t slot = static_cast<std::size_t>(n % (agents * slots));
    const double start = slot_free[slot] + 2 * unit(rng);
    const double end = start + (60 + 240 * unit(rng)) * static_cast<double>(ran) / steps;
    slot_free[slot] = end;
    const std::string tag = std::to_string(n);
    const auto id = must(store.add_trial(study, n, config, std::string("h").append(tag), start),
                         "adding a trial");
    must(store.start_trial(id, 1, std::string("lease-").append(tag),
                           "gpu-node-" + std::to_string(slot / static_cast<std::size_t>(slots)),
                           "", start),
         "starting a trial");
    double value = 0;
    for (long s = 1; s <= ran; ++s) {
      value = quality - 0.2 * std::exp(-1.5 * static_cast<double>(s));
      must(store.record_metric(id, s, "val_accuracy", value,
                               start + (end - start) * static_cast<double>(s) / ran),
           "recording a metric");
    }
    must(store.finish_trial(id, state, state == TrialState::kFailed ? std::nullopt
                                                                    : std::optional<double>(value),
                            state == TrialState::kFailed ? "diverged" : "", "", end),
         "finishing a trial");
    if (peer) {
      peer << nlohmann::json{{"params", config},
                             {"state", std::string(hpo::search::to_string(state))},
                             {"value", value},
                             {"steps", ran}}
                  .dump()
           << "\n";
    }
  }
  must(tx.commit(), "committing");
  std::cout << "dashboard_study: " << db << ": study 'big' with " << trials << " trials\n";
  return 0;
}
