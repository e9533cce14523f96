// Opening a store: creation, identity, schema versions, the single-writer lock.
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "tests/results/fixtures.h"

using namespace hpo::results;
using namespace hpo::results::testing;
namespace fs = std::filesystem;

namespace {

// Runs SQL on a file with the plain SQLite API, as another program would.
void raw_sql(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  std::string message = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  INFO(message);
  REQUIRE(rc == SQLITE_OK);
}

std::string raw_text(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  std::string v = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

int raw_int(const std::string& path, const char* sql) { return std::stoi(raw_text(path, sql)); }

// The layout of schema version 1, as the first hpo wrote it.
constexpr const char* kVersion1 = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE studies(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, spec TEXT NOT NULL,
  metric TEXT NOT NULL, direction TEXT NOT NULL CHECK (direction IN ('minimize', 'maximize')),
  seed INTEGER NOT NULL, status TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE trials(id INTEGER PRIMARY KEY, study INTEGER NOT NULL REFERENCES studies(id),
  number INTEGER NOT NULL, state TEXT NOT NULL, config TEXT NOT NULL, hash TEXT NOT NULL,
  value REAL, attempt INTEGER NOT NULL DEFAULT 0, agent TEXT, queued REAL NOT NULL, started REAL,
  finished REAL, error TEXT, UNIQUE (study, number));
CREATE TABLE metrics(trial INTEGER NOT NULL REFERENCES trials(id), step INTEGER NOT NULL,
  name TEXT NOT NULL, value REAL NOT NULL, time REAL NOT NULL,
  PRIMARY KEY (trial, name, step)) WITHOUT ROWID;
CREATE TABLE agents(id TEXT PRIMARY KEY, host TEXT NOT NULL, gpus TEXT NOT NULL,
  slots INTEGER NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL);
CREATE TABLE events(id INTEGER PRIMARY KEY, study INTEGER REFERENCES studies(id),
  trial INTEGER REFERENCES trials(id), kind TEXT NOT NULL, detail TEXT NOT NULL, time REAL NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO studies VALUES (1, 'old', '{"name":"old"}', 'loss', 'minimize', 7, 'finished', 1.0, 2.0);
INSERT INTO trials VALUES (1, 1, 0, 'COMPLETED', '{"lr":0.1}', 'abc', 0.5, 1, 'a1', 1.0, 2.0, 3.0, NULL);
INSERT INTO trials VALUES (2, 1, 1, 'COMPLETED', '{"lr":0.01}', 'def', 0.25, 2, 'a1', 1.0, 2.0, 3.0, NULL);
INSERT INTO metrics VALUES (1, 1, 'loss', 0.7, 2.5), (1, 2, 'loss', 0.5, 2.6), (2, 1, 'loss', 0.25, 2.5);
INSERT INTO events VALUES (1, 1, 2, 'retry', '{"attempt":1}', 2.0);
INSERT INTO agents VALUES ('a1', 'h1', '[]', 2, 1.0, 3.0);
PRAGMA application_id = 1213222705;
PRAGMA user_version = 1;
)sql";

}  // namespace

TEST_CASE("a writer creates a missing database with the current schema version") {
  TempDir dir;
  const auto path = dir / "hpo.db";
  { auto store = open_writer(path); }
  REQUIRE(fs::exists(path));
  CHECK(raw_int(path, "PRAGMA user_version") == kSchemaVersion);
  CHECK(raw_int(path, "PRAGMA application_id") == kApplicationId);
  CHECK(raw_int(path, "SELECT value FROM meta WHERE key = 'schema_version'") == kSchemaVersion);
}

TEST_CASE("a reader never creates a missing database and says the file is missing") {
  TempDir dir;
  const auto path = dir / "nothing.db";
  auto store = Store::open(path, OpenMode::kReadOnly);
  REQUIRE_FALSE(store);
  CHECK_THAT(store.error().message, Catch::Contains("no such database"));
  CHECK_THAT(store.error().message, Catch::Contains(path));
  CHECK_FALSE(fs::exists(path));
  CHECK_FALSE(fs::exists(path + "-wal"));
}

TEST_CASE("a file that is not SQLite is refused as not an hpo database") {
  TempDir dir;
  const auto path = dir / "notes.txt";
  std::ofstream(path) << std::string(4096, 'x') << "\nthis is not a database\n";
  for (auto mode : {OpenMode::kReadOnly, OpenMode::kWriter}) {
    auto store = Store::open(path, mode);
    REQUIRE_FALSE(store);
    CHECK_THAT(store.error().message, Catch::Contains("not an hpo database"));
  }
  CHECK(fs::file_size(path) > 4096);  // untouched
}

TEST_CASE("an SQLite file of another program is refused and left unchanged") {
  TempDir dir;
  const auto path = dir / "other.db";
  raw_sql(path, "CREATE TABLE songs(title TEXT); INSERT INTO songs VALUES ('x');");
  for (auto mode : {OpenMode::kReadOnly, OpenMode::kWriter}) {
    auto store = Store::open(path, mode);
    REQUIRE_FALSE(store);
    CHECK_THAT(store.error().message, Catch::Contains("not an hpo database"));
  }
  CHECK(raw_int(path, "SELECT count(*) FROM sqlite_schema") == 1);
}

TEST_CASE("an empty file is not an hpo database to a reader") {
  TempDir dir;
  const auto path = dir / "empty.db";
  std::ofstream{path};
  auto store = Store::open(path, OpenMode::kReadOnly);
  REQUIRE_FALSE(store);
  CHECK_THAT(store.error().message, Catch::Contains("not an hpo database"));
}

TEST_CASE("a database from a newer hpo is refused by readers and writers") {
  TempDir dir;
  const auto path = dir / "hpo.db";
  { auto store = open_writer(path); }
  raw_sql(path, "PRAGMA user_version = 99");
  for (auto mode : {OpenMode::kReadOnly, OpenMode::kWriter}) {
    auto store = Store::open(path, mode);
    REQUIRE_FALSE(store);
    CHECK_THAT(store.error().message, Catch::Contains("newer hpo"));
    CHECK_THAT(store.error().message, Catch::Contains("99"));
  }
  CHECK(raw_int(path, "PRAGMA user_version") == 99);
}

TEST_CASE("a writer upgrades a version 1 database and keeps its data") {
  TempDir dir;
  const auto path = dir / "old.db";
  raw_sql(path, kVersion1);

  auto reader = Store::open(path, OpenMode::kReadOnly);
  REQUIRE_FALSE(reader);
  CHECK_THAT(reader.error().message, Catch::Contains("older hpo"));

  {
    auto store = open_writer(path);
    auto study = ok(store.find_study("old"));
    REQUIRE(study);
    CHECK(study->direction == Direction::kMinimize);
    auto trial = ok(store.find_trial(study->id, 0));
    REQUIRE(trial);
    CHECK(trial->config["lr"] == 0.1);
    CHECK(trial->lease.empty());
    CHECK(trial->log_tail.empty());
    // Metrics kept the attempt their trial had, so they are still visible.
    auto metrics = ok(store.metrics(trial->id));
    REQUIRE(metrics.size() == 2);
    CHECK(metrics[1].value == 0.5);
    auto history = ok(store.history(study->id));
    REQUIRE(history.size() == 2);
    CHECK(history[0].intermediates.size() == 2);
    CHECK(history[1].intermediates.size() == 1);
    // Failed attempts were only events before schema 3: they are counted from them.
    CHECK(trial->failures == 0);
    CHECK(ok(store.find_trial(study->id, 1))->failures == 1);
    CHECK(ok(store.find_trial(study->id, 1))->interruptions == 0);
    // An agent of an old file belongs to a scheduler that has stopped: it has left.
    auto agents = ok(store.agents());
    REQUIRE(agents.size() == 1);
    CHECK(agents[0].state == "left");
    CHECK(agents[0].last_seen == 3.0);
    CHECK(agents[0].stale_after == 0);
    // The new columns work.
    ok(store.start_trial(trial->id, 2, "L9", "agent-b", "", 5.0));
    CHECK(ok(store.get_trial(trial->id))->lease == "L9");
  }
  CHECK(raw_int(path, "PRAGMA user_version") == kSchemaVersion);
  CHECK(raw_int(path, "SELECT value FROM meta WHERE key = 'schema_version'") == kSchemaVersion);
  CHECK(raw_text(path, "PRAGMA integrity_check") == "ok");
  auto again = open_reader(path);
  CHECK(ok(again.list_studies()).size() == 1);
}

TEST_CASE("a writer upgrades a version 3 database: a running lease keeps its id, bound to no key") {
  TempDir dir;
  const auto path = dir / "v3.db";
  std::int64_t trial = 0;
  {
    auto store = open_writer(path);
    auto study = ok(store.create_study(study_row("s")));
    trial = ok(store.add_trial(study, 0, nlohmann::json{{"x", 1}}, "h", 1.0));
    ok(store.start_trial(trial, 1, "lease-1", "agent-a", "", 2.0));
  }
  // Back to the layout of version 3, as the hpo before issue 12 left it.
  raw_sql(path,
          "ALTER TABLE trials DROP COLUMN agent_key; ALTER TABLE agents DROP COLUMN state; "
          "ALTER TABLE agents DROP COLUMN stale_after; ALTER TABLE studies DROP COLUMN "
          "checkpoint_bytes; ALTER TABLE trials DROP COLUMN parent; ALTER TABLE trials DROP "
          "COLUMN parent_step; PRAGMA user_version = 3; "
          "UPDATE meta SET value = '3' WHERE key = 'schema_version';");
  auto reader = Store::open(path, OpenMode::kReadOnly);
  REQUIRE_FALSE(reader);
  CHECK_THAT(reader.error().message, Catch::Contains("schema version 3"));
  {
    auto store = open_writer(path);
    auto t = ok(store.get_trial(trial));
    REQUIRE(t);
    CHECK(t->state == TrialState::kRunning);
    CHECK(t->lease == "lease-1");
    CHECK(t->agent_key.empty());  // only a plaintext agent may re-adopt it
    ok(store.start_trial(trial, 2, "lease-2", "agent-b", "key-B", 3.0));
    CHECK(ok(store.get_trial(trial))->agent_key == "key-B");
    ok(store.requeue_trial(trial, 4.0));
    CHECK(ok(store.get_trial(trial))->agent_key.empty());
  }
  CHECK(raw_int(path, "PRAGMA user_version") == kSchemaVersion);
  CHECK(raw_int(path, "SELECT value FROM meta WHERE key = 'schema_version'") == kSchemaVersion);
  CHECK(raw_text(path, "PRAGMA integrity_check") == "ok");
}

TEST_CASE("a second writer of the same file is refused with the holder's pid") {
  TempDir dir;
  const auto path = dir / "hpo.db";
  auto first = open_writer(path);
  auto second = Store::open(path, OpenMode::kWriter);
  REQUIRE_FALSE(second);
  CHECK_THAT(second.error().message,
             Catch::Contains("already being written by pid " + std::to_string(getpid())));
  // Readers are welcome beside the writer.
  CHECK(Store::open(path, OpenMode::kReadOnly));
}

TEST_CASE("a writer in another process keeps this one out until it exits") {
  TempDir dir;
  const auto path = dir / "hpo.db";
  { auto init = open_writer(path); }
  int ready[2], release[2];
  REQUIRE(pipe(ready) == 0);
  REQUIRE(pipe(release) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto store = Store::open(path, OpenMode::kWriter);
    char c = store ? 'y' : 'n';
    (void)!write(ready[1], &c, 1);
    (void)!read(release[0], &c, 1);
    _exit(0);
  }
  char c = 0;
  REQUIRE(read(ready[0], &c, 1) == 1);
  REQUIRE(c == 'y');
  auto refused = Store::open(path, OpenMode::kWriter);
  REQUIRE_FALSE(refused);
  CHECK_THAT(refused.error().message, Catch::Contains("pid " + std::to_string(child)));
  (void)!write(release[1], "x", 1);
  int status = 0;
  waitpid(child, &status, 0);
  for (int fd : {ready[0], ready[1], release[0], release[1]}) close(fd);
  CHECK(Store::open(path, OpenMode::kWriter));
}

TEST_CASE("a read-only store refuses every write") {
  TempDir dir;
  const auto path = dir / "hpo.db";
  {
    auto w = open_writer(path);
    ok(w.create_study(study_row("s")));
  }
  auto store = open_reader(path);
  auto created = store.create_study(study_row("t"));
  REQUIRE_FALSE(created);
  CHECK_THAT(created.error().message, Catch::Contains("read-only"));
  CHECK_FALSE(store.begin());
  CHECK_FALSE(store.add_trial(1, 0, nlohmann::json::object(), "h", 1.0));
  CHECK_FALSE(store.append_event(1, std::nullopt, "x", nlohmann::json::object(), 1.0));
  CHECK_FALSE(store.upsert_agent("a", "h", nlohmann::json::array(), 1, 1.0));
  CHECK_FALSE(store.mark_running_interrupted(1.0));
  CHECK(ok(store.list_studies()).size() == 1);
}

TEST_CASE("a writer closed cleanly leaves no -wal, -shm or .lock file beside the database") {
  TempDir dir;
  const auto path = dir / "hpo.db";
  {
    auto w = open_writer(path);
    ok(w.create_study(study_row("s")));
    {
      // A reader that comes and goes while the writer runs.
      auto r = open_reader(path);
      CHECK(ok(r.list_studies()).size() == 1);
    }
    CHECK(fs::exists(path + ".lock"));
    CHECK(fs::exists(path + "-wal"));
  }
  CHECK(fs::exists(path));
  CHECK_FALSE(fs::exists(path + "-wal"));
  CHECK_FALSE(fs::exists(path + "-shm"));
  CHECK_FALSE(fs::exists(path + ".lock"));
  // Nothing was lost with them, and the next writer gets in.
  CHECK(ok(open_reader(path).list_studies()).size() == 1);
  CHECK(Store::open(path, OpenMode::kWriter));
}

TEST_CASE("a writer upgrades a version 5 database: no checkpoint bytes, no parents, and trials "
          "may then be PAUSED") {
  TempDir dir;
  const auto path = dir / "v5.db";
  std::int64_t trial = 0, study = 0;
  {
    auto store = open_writer(path);
    study = ok(store.create_study(study_row("s")));
    trial = ok(store.add_trial(study, 0, nlohmann::json{{"x", 1}}, "h", 1.0));
    ok(store.start_trial(trial, 1, "lease-1", "agent-a", "", 2.0));
    ok(store.record_metric(trial, 1, "value", 0.5, 2.5));
  }
  raw_sql(path,
          "ALTER TABLE studies DROP COLUMN checkpoint_bytes; ALTER TABLE trials DROP COLUMN "
          "parent; ALTER TABLE trials DROP COLUMN parent_step; PRAGMA user_version = 5; "
          "UPDATE meta SET value = '5' WHERE key = 'schema_version';");
  {
    auto store = open_writer(path);
    CHECK(ok(store.get_study(study))->checkpoint_bytes == 0);
    auto t = ok(store.get_trial(trial));
    REQUIRE(t);
    CHECK_FALSE(t->parent);
    CHECK_FALSE(t->parent_step);
    ok(store.finish_trial(trial, TrialState::kPaused, 0.5, "", "", 3.0));
    CHECK(ok(store.get_trial(trial))->state == TrialState::kPaused);
    ok(store.set_study_checkpoint_bytes(study, 1234));
    CHECK(ok(store.get_study(study))->checkpoint_bytes == 1234);
    // A resumed attempt starts with the curve of the one it resumes.
    ok(store.start_trial(trial, 2, "lease-2", "agent-b", "", 4.0));
    ok(store.carry_metrics(trial, 1, 2));
    auto m = ok(store.metrics(trial));
    REQUIRE(m.size() == 1);
    CHECK(m[0].step == 1);
    CHECK(m[0].value == 0.5);
  }
  CHECK(raw_int(path, "PRAGMA user_version") == kSchemaVersion);
  CHECK(raw_text(path, "PRAGMA integrity_check") == "ok");
}
