// The store across processes: readers beside a live writer, and a writer
// killed with SIGKILL in the middle of its stream of transactions.
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "tests/results/fixtures.h"

using namespace hpo::results;
using namespace hpo::results::testing;
using nlohmann::json;

namespace {

constexpr int kBatch = 20;  // trials per transaction, as one scheduler loop turn

// The child's side: writes batches of trials forever (or `batches` of them),
// each in one transaction, and after each commit writes the number of
// committed batches to `out`. Never returns.
[[noreturn]] void write_batches(const std::string& path, int out, int batches) {
  auto store = Store::open(path, OpenMode::kWriter);
  if (!store) _exit(3);
  auto study = store->find_study("s");
  if (!study || !*study) _exit(4);
  const std::int64_t id = (*study)->id;
  for (std::int64_t batch = 0; batches < 0 || batch < batches; ++batch) {
    auto tx = store->begin();
    if (!tx) _exit(5);
    for (int i = 0; i < kBatch; ++i) {
      const std::int64_t number = batch * kBatch + i;
      auto trial = store->add_trial(id, number, json{{"x", number}}, "h", 1.0);
      if (!trial) _exit(6);
      if (!store->start_trial(*trial, 1, "L", "a", "", 1.0)) _exit(7);
      for (int step = 1; step <= 5; ++step) {
        if (!store->record_metric(*trial, step, "val_accuracy", step * 0.1, 1.0)) _exit(8);
      }
      if (!store->finish_trial(*trial, TrialState::kCompleted, 0.5, "", "", 2.0)) _exit(9);
    }
    if (!tx->commit()) _exit(10);
    const std::int64_t committed = batch + 1;
    if (write(out, &committed, sizeof committed) != sizeof committed) _exit(11);
  }
  _exit(0);
}

std::string integrity(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  std::string v = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

}  // namespace

TEST_CASE("a writer killed with SIGKILL mid-stream loses only its open transaction") {
  TempDir dir;
  const auto path = dir / "hpo.db";
  {
    auto store = open_writer(path);
    ok(store.create_study(study_row("s")));
  }
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(fds[0]);
    write_batches(path, fds[1], -1);
  }
  close(fds[1]);
  std::int64_t committed = 0;
  while (committed < 25) {
    REQUIRE(read(fds[0], &committed, sizeof committed) == sizeof committed);
  }
  REQUIRE(kill(child, SIGKILL) == 0);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  // Counts the child reported before it died are all committed.
  std::int64_t more = 0;
  while (read(fds[0], &more, sizeof more) == sizeof more) committed = more;
  close(fds[0]);

  CHECK(integrity(path) == "ok");
  {
    // A reader first: it must recover the dead writer's WAL without write access.
    auto reader = open_reader(path);
    const auto id = ok(reader.find_study("s"))->id;
    CHECK(ok(reader.trials(id)).size() >= static_cast<std::size_t>(committed * kBatch));
  }
  auto store = open_writer(path);  // the kernel released the dead writer's lock
  auto study = ok(store.find_study("s"))->id;
  auto trials = ok(store.trials(study));
  const auto n = static_cast<std::int64_t>(trials.size());
  INFO("committed batches " << committed << ", trials " << n);
  CHECK(n % kBatch == 0);                // never part of a transaction
  CHECK(n >= committed * kBatch);        // every reported commit is there
  CHECK(n <= (committed + 1) * kBatch);  // at most one commit it had no time to report
  for (std::int64_t i = 0; i < n; ++i) {
    REQUIRE(trials[i].number == i);
    REQUIRE(trials[i].state == TrialState::kCompleted);
  }
  CHECK(ok(store.study_metrics(study)).size() == static_cast<std::size_t>(n * 5));
  CHECK(ok(store.mark_running_interrupted(3.0)) == 0);
}

TEST_CASE("readers see whole transactions while another process writes") {
  TempDir dir;
  const auto path = dir / "hpo.db";
  {
    auto store = open_writer(path);
    ok(store.create_study(study_row("s")));
  }
  constexpr int kBatches = 150;
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(fds[0]);
    write_batches(path, fds[1], kBatches);
  }
  close(fds[1]);
  auto reader = open_reader(path);
  const auto study = ok(reader.find_study("s"))->id;
  std::size_t last = 0;
  int reads = 0;
  int status = 0;
  bool done = false;
  while (!done) {
    done = waitpid(child, &status, WNOHANG) == child;
    auto trials = ok(reader.trials(study));
    CHECK(trials.size() % kBatch == 0);
    CHECK(trials.size() >= last);
    last = trials.size();
    auto board = ok(reader.leaderboard(study, {}));
    for (const auto& e : board) CHECK(e.trial.state == TrialState::kCompleted);
    auto history = ok(reader.history(study));
    CHECK(history.size() % kBatch == 0);
    for (const auto& r : history) {
      if (r.state == TrialState::kCompleted) CHECK(r.intermediates.size() == 5);
    }
    // A reader that opens while the writer writes works too.
    auto fresh = Store::open(path, OpenMode::kReadOnly);
    if (!fresh) FAIL(fresh.error().message);
    ++reads;
  }
  close(fds[0]);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(ok(reader.trials(study)).size() == kBatches * kBatch);
  CHECK(reads > 1);
  CHECK(integrity(path) == "ok");
}
