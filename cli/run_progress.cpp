#include "cli/run_progress.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ostream>

#include "results/store.h"

namespace hpo::cli {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string clock_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  auto s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%02lld:%02lld", s / 60, s % 60);
  }
  return buf;
}

}  // namespace

RunProgress::RunProgress(std::string db, std::string study, std::int64_t max_trials, bool tty,
                         std::ostream& out)
    : db_(std::move(db)), study_(std::move(study)), max_trials_(max_trials), tty_(tty), out_(out) {}

RunProgress::~RunProgress() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void RunProgress::start() {
  started_ = now_seconds();
  thread_ = std::thread([this] { loop(); });
}

void RunProgress::loop() {
  auto period = std::chrono::milliseconds(tty_ ? 500 : 1000);
  while (!stop_.load()) {
    tick(false);
    for (auto waited = std::chrono::milliseconds(0); waited < period && !stop_.load();
         waited += std::chrono::milliseconds(50)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  tick(true);
}

void RunProgress::tick(bool last) {
  // A fresh connection each time: cheap next to the period, and a database
  // that the scheduler has not created yet is simply "nothing to show".
  auto store = results::Store::open(db_, results::OpenMode::kReadOnly);
  if (!store) return;
  auto row = store->find_study(study_);
  if (!row || !*row) return;
  auto counts = store->count_trials((*row)->id);
  if (!counts) return;
  auto n = [&](search::TrialState s) {
    auto it = counts->find(s);
    return it == counts->end() ? std::int64_t{0} : it->second;
  };
  std::int64_t ok = n(search::TrialState::kCompleted), pruned = n(search::TrialState::kPruned),
               failed = n(search::TrialState::kFailed), running = n(search::TrialState::kRunning);
  std::int64_t done = ok + pruned + failed;
  if (done_at_start_ < 0) done_at_start_ = done;
  // PBT's children come on top of the trial budget: count against what the study holds.
  std::int64_t known = 0;
  for (const auto& [state, count] : *counts) known += count;
  const std::int64_t total = std::max(max_trials_, known);
  const std::int64_t paused = n(search::TrialState::kPaused);

  std::string best = "-";
  results::LeaderboardQuery q;
  q.top = 1;
  if (auto board = store->leaderboard((*row)->id, q); board && !board->empty()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g (trial %lld)", board->front().score,
                  static_cast<long long>(board->front().trial.number));
    best = buf;
  }
  double elapsed = now_seconds() - started_;
  double eta = NAN;
  std::int64_t done_here = done - done_at_start_;
  if (done_here > 0 && total > done) eta = elapsed / done_here * static_cast<double>(total - done);
  if (total <= done) eta = 0;

  std::string counts_text = std::to_string(done) + "/" + std::to_string(total) + " done (" +
                            std::to_string(ok) + " ok, " + std::to_string(pruned) + " pruned, " +
                            std::to_string(failed) + " failed), " + std::to_string(running) +
                            " running";
  if (paused > 0) counts_text += ", " + std::to_string(paused) + " paused";
  std::string line = counts_text + ", best " + best;
  if (tty_) {
    out_ << "\r\033[K"
         << "[" << clock_text(elapsed) << "] " << line << ", ETA " << clock_text(eta);
    if (last) out_ << "\n";
    out_.flush();
  } else if (line != last_line_) {
    out_ << "hpo run: [" << clock_text(elapsed) << "] " << line << ", ETA " << clock_text(eta)
         << "\n";
    out_.flush();
  }
  last_line_ = line;
}

}  // namespace hpo::cli
