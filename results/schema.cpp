// The schema of an hpo database and its forward migrations.
//
// A file is ours when PRAGMA application_id is kApplicationId; its layout is
// PRAGMA user_version (mirrored in meta.schema_version for humans with the
// sqlite3 shell). The writer applies kMigrations[v] for every v from the
// file's version up to kSchemaVersion in one transaction, so an upgrade is
// all or nothing. Never edit a migration that has shipped: add one.
#include <array>
#include <string>

#include "results/store_impl.h"

namespace hpo::results {
namespace {

// kMigrations[i] takes a file from version i to version i + 1.
constexpr std::array<const char*, kSchemaVersion> kMigrations = {
    // 0 -> 1: the first layout.
    R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE studies(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  spec TEXT NOT NULL,
  metric TEXT NOT NULL,
  direction TEXT NOT NULL CHECK (direction IN ('minimize', 'maximize')),
  seed INTEGER NOT NULL,
  status TEXT NOT NULL,
  created REAL NOT NULL,
  updated REAL NOT NULL);
CREATE TABLE trials(
  id INTEGER PRIMARY KEY,
  study INTEGER NOT NULL REFERENCES studies(id),
  number INTEGER NOT NULL,
  state TEXT NOT NULL,
  config TEXT NOT NULL,
  hash TEXT NOT NULL,
  value REAL,
  attempt INTEGER NOT NULL DEFAULT 0,
  agent TEXT,
  queued REAL NOT NULL,
  started REAL,
  finished REAL,
  error TEXT,
  UNIQUE (study, number));
CREATE TABLE metrics(
  trial INTEGER NOT NULL REFERENCES trials(id),
  step INTEGER NOT NULL,
  name TEXT NOT NULL,
  value REAL NOT NULL,
  time REAL NOT NULL,
  PRIMARY KEY (trial, name, step)) WITHOUT ROWID;
CREATE TABLE agents(
  id TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  gpus TEXT NOT NULL,
  slots INTEGER NOT NULL,
  first_seen REAL NOT NULL,
  last_seen REAL NOT NULL);
CREATE TABLE events(
  id INTEGER PRIMARY KEY,
  study INTEGER REFERENCES studies(id),
  trial INTEGER REFERENCES trials(id),
  kind TEXT NOT NULL,
  detail TEXT NOT NULL,
  time REAL NOT NULL);
)sql",
    // 1 -> 2: leases and log tails on trials; metrics keyed by attempt so a
    // retried trial starts clean (old values keep the attempt they had); the
    // leaderboard index and the per-study event index.
    R"sql(
ALTER TABLE trials ADD COLUMN lease TEXT;
ALTER TABLE trials ADD COLUMN log_tail TEXT;
CREATE TABLE metrics_v2(
  trial INTEGER NOT NULL REFERENCES trials(id),
  attempt INTEGER NOT NULL,
  name TEXT NOT NULL,
  step INTEGER NOT NULL,
  value REAL NOT NULL,
  time REAL NOT NULL,
  PRIMARY KEY (trial, attempt, name, step)) WITHOUT ROWID;
INSERT INTO metrics_v2(trial, attempt, name, step, value, time)
  SELECT m.trial, t.attempt, m.name, m.step, m.value, m.time
  FROM metrics m JOIN trials t ON t.id = m.trial;
DROP TABLE metrics;
ALTER TABLE metrics_v2 RENAME TO metrics;
CREATE INDEX trials_by_value ON trials(study, state, value, number);
CREATE INDEX events_by_study ON events(study, id);
)sql",
    // 2 -> 3: what a trial has used of its retries, so a restarted scheduler does not give it a
    // fresh budget: failed attempts (max_retries; the older files logged each as a "retry"
    // event) and interruptions (max_interruptions; not counted before). An agent drained for
    // failing to start trials says why.
    R"sql(
ALTER TABLE agents ADD COLUMN drained TEXT;
ALTER TABLE trials ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE trials ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;
UPDATE trials SET failures =
  (SELECT count(*) FROM events e WHERE e.trial = trials.id AND e.kind = 'retry');
)sql",
    // 3 -> 4: the CURVE public key each lease is bound to (issue 12), so that a restarted
    // scheduler re-adopts a trial only from the agent key it was leased to. Leases of older
    // files have none (NULL, read as ""): only a plaintext agent can re-adopt them.
    R"sql(
ALTER TABLE trials ADD COLUMN agent_key TEXT;
)sql",
    // 4 -> 5: an agent's state as the scheduler last knew it (live, draining, left, lost,
    // revoked; `hpo agents`), and how long after last_seen a live row is out of date (the
    // scheduler refreshes last_seen sooner while it runs). Rows of older files belong to a
    // scheduler that has stopped: their agents are gone, and the events say how.
    R"sql(
ALTER TABLE agents ADD COLUMN state TEXT NOT NULL DEFAULT 'left';
ALTER TABLE agents ADD COLUMN stale_after REAL NOT NULL DEFAULT 0;
)sql",
    // 5 -> 6: multi-fidelity search (issue 14): trials may be PAUSED (trials.state is free
    // text: no change there), a study shows the bytes its paused trials' checkpoints take in
    // the scheduler's checkpoint store (`hpo studies`), and a trial that PBT made from another
    // (exploit) names its parent and the step it started from (the lineage).
    R"sql(
ALTER TABLE studies ADD COLUMN checkpoint_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE trials ADD COLUMN parent INTEGER;
ALTER TABLE trials ADD COLUMN parent_step INTEGER;
)sql",
};

Result<std::int64_t> pragma_int(Store::Impl& impl, const char* sql, std::string_view what) {
  auto q = impl.prepare(sql);
  if (!q) return std::unexpected(q.error());
  int rc = q->step();
  if (rc != SQLITE_ROW) return std::unexpected(impl.error(what));
  return q->i64(0);
}

}  // namespace

Status prepare_schema(Store::Impl& impl, const OpenOptions& options) {
  sqlite3_busy_timeout(impl.db.get(), options.busy_timeout_ms);
  const std::string& path = impl.path;

  // The first read of the header tells a non-SQLite file apart.
  auto objects = pragma_int(impl, "SELECT count(*) FROM sqlite_schema", "reading the schema");
  if (!objects) {
    int code = sqlite3_errcode(impl.db.get());
    if (code == SQLITE_NOTADB) {
      return fail(path + ": not an hpo database (not an SQLite file at all)");
    }
    return std::unexpected(objects.error());
  }
  auto app_id = pragma_int(impl, "PRAGMA application_id", "reading application_id");
  if (!app_id) return std::unexpected(app_id.error());
  auto version = pragma_int(impl, "PRAGMA user_version", "reading user_version");
  if (!version) return std::unexpected(version.error());

  const bool empty = *objects == 0 && *app_id == 0 && *version == 0;
  if (!empty && *app_id != kApplicationId) {
    return fail(path + ": not an hpo database (an SQLite file of another program: application_id " +
                std::to_string(*app_id) + ")");
  }
  if (*version > kSchemaVersion) {
    return fail(path + ": written by a newer hpo (schema version " + std::to_string(*version) +
                "; this hpo understands up to " + std::to_string(kSchemaVersion) +
                "): upgrade hpo to read it");
  }

  if (impl.mode == OpenMode::kReadOnly) {
    if (empty) return fail(path + ": not an hpo database (an empty file)");
    if (*version < kSchemaVersion) {
      return fail(path + ": written by an older hpo (schema version " + std::to_string(*version) +
                  ", this hpo uses " + std::to_string(kSchemaVersion) +
                  "): open it once with a writer (hpo resume) to upgrade it");
    }
    // Belt and braces: this connection must never write.
    return impl.exec("PRAGMA query_only = ON", "setting query_only");
  }

  // The writer. WAL lets readers run beside it; see store.h for synchronous.
  {
    auto q = impl.prepare("PRAGMA journal_mode = WAL");
    if (!q) return std::unexpected(q.error());
    if (q->step() != SQLITE_ROW) return std::unexpected(impl.error("setting WAL mode"));
    if (q->text(0) != "wal") {
      return fail(path + ": cannot use WAL mode here (journal_mode stays '" + q->text(0) +
                  "'); is the file on a network file system?");
    }
  }
  if (auto ok =
          impl.exec(options.durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
                    "setting synchronous");
      !ok) {
    return ok;
  }
  if (auto ok = impl.exec("PRAGMA foreign_keys = ON", "enabling foreign keys"); !ok) return ok;
  if (*version == kSchemaVersion) return {};

  if (auto ok = impl.exec("BEGIN IMMEDIATE", "starting the schema upgrade"); !ok) return ok;
  auto upgrade = [&]() -> Status {
    for (auto v = *version; v < kSchemaVersion; ++v) {
      if (auto ok =
              impl.exec(kMigrations[v], "upgrading the schema to version " + std::to_string(v + 1));
          !ok) {
        return ok;
      }
    }
    const std::string stamp = "PRAGMA application_id = " + std::to_string(kApplicationId) +
                              "; PRAGMA user_version = " + std::to_string(kSchemaVersion) +
                              "; INSERT OR REPLACE INTO meta(key, value) VALUES "
                              "('schema_version', '" +
                              std::to_string(kSchemaVersion) + "')";
    return impl.exec(stamp.c_str(), "stamping the schema version");
  };
  if (auto ok = upgrade(); !ok) {
    (void)impl.exec("ROLLBACK", "rolling back the schema upgrade");
    return ok;
  }
  return impl.exec("COMMIT", "committing the schema upgrade");
}

}  // namespace hpo::results
