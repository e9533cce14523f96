// Internal to results/: RAII wrappers for the SQLite C handles and the
// Store's private state. Nothing outside results/ includes this file.
#pragma once

#include <sqlite3.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>

#include "results/store.h"

namespace hpo::results::detail {

struct DbCloser {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// One use of a cached prepared statement. The destructor resets it, so a
// finished (or abandoned) read never keeps a WAL snapshot open, which would
// stop checkpoints and let the WAL grow without bound.
class Query {
 public:
  explicit Query(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Query(Query&& other) noexcept : stmt_(std::exchange(other.stmt_, nullptr)) {}
  Query& operator=(Query&&) = delete;
  Query(const Query&) = delete;
  ~Query() {
    if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }

  // Parameters are 1-based, as in SQLite.
  Query& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Query& bind(int i, int v) { return bind(i, static_cast<std::int64_t>(v)); }
  Query& bind(int i, double v) {
    sqlite3_bind_double(stmt_, i, v);
    return *this;
  }
  Query& bind(int i, std::string_view v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Query& bind(int i, std::optional<double> v) {
    if (v) return bind(i, *v);
    sqlite3_bind_null(stmt_, i);
    return *this;
  }
  Query& bind(int i, std::optional<std::int64_t> v) {
    if (v) return bind(i, *v);
    sqlite3_bind_null(stmt_, i);
    return *this;
  }

  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(stmt_); }

  bool is_null(int c) const { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }
  std::int64_t i64(int c) const { return sqlite3_column_int64(stmt_, c); }
  double f64(int c) const { return sqlite3_column_double(stmt_, c); }
  std::optional<double> opt_f64(int c) const {
    return is_null(c) ? std::nullopt : std::optional<double>(f64(c));
  }
  std::optional<std::int64_t> opt_i64(int c) const {
    return is_null(c) ? std::nullopt : std::optional<std::int64_t>(i64(c));
  }
  std::string text(int c) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
    return p == nullptr ? std::string() : std::string(p, sqlite3_column_bytes(stmt_, c));
  }

 private:
  sqlite3_stmt* stmt_;
};

// JSON in and out of TEXT columns; errors name `where`.
Result<nlohmann::json> parse_json(const std::string& text, const std::string& where);
Result<std::string> dump_json(const nlohmann::json& value, std::string_view where);

}  // namespace hpo::results::detail

namespace hpo::results {

namespace detail {

// The writer's checkpoints, on a thread with its own connection: copying the
// WAL back into the database fsyncs both files, and on a slow disk that
// stalls for tens of milliseconds. Auto-checkpoints would stall the
// scheduler's loop inside a commit; a PASSIVE checkpoint here runs beside
// the writer, which keeps appending to the WAL meanwhile.
class Checkpointer {
 public:
  Checkpointer() = default;
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;
  ~Checkpointer() { stop(); }

  // Starts the thread on `path`; installs the wal hook on `writer` that wakes
  // it when the WAL holds `pages` pages. False when it cannot start (the
  // writer then keeps SQLite's own auto-checkpoints).
  bool start(sqlite3* writer, const std::string& path, int pages);
  void stop();

 private:
  static int on_commit(void* self, sqlite3*, const char*, int pages);
  void run();

  DbPtr db_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool pending_ = false;
  bool stopping_ = false;
  int pages_ = 1000;
};

}  // namespace detail

struct Store::Impl {
  std::string path;
  OpenMode mode = OpenMode::kReadOnly;
  detail::DbPtr db;
  int lock_fd = -1;             // the flock'ed "<path>.lock" of a writer
  bool in_transaction = false;  // a Transaction from begin() is open
  std::unordered_map<std::string, detail::StmtPtr> statements;  // by SQL text
  std::unique_ptr<detail::Checkpointer> checkpointer;           // writer only

  ~Impl();

  // "<path>: <what>: <sqlite message>".
  Error error(std::string_view what) const;
  // A cached statement (prepared on first use, reused after).
  Result<detail::Query> prepare(std::string_view sql);
  // Steps to the end; an error names `what`.
  Status run(detail::Query& query, std::string_view what);
  // Runs one or more statements without results (schema, pragmas, BEGIN...).
  Status exec(const char* sql, std::string_view what);
  // Refuses writes on a read-only store with a message that names `what`.
  Status writable(std::string_view what) const;
  // Runs `body` atomically: inside a SAVEPOINT, so it nests in an open
  // Transaction and is its own transaction otherwise.
  template <class F>
  Status atomically(std::string_view what, F&& body) {
    if (auto ok = writable(what); !ok) return ok;
    if (auto ok = step_cached("SAVEPOINT hpo_write", what); !ok) return ok;
    Status result = body();
    if (result) {
      if (auto ok = step_cached("RELEASE hpo_write", what); !ok) result = ok;
    }
    if (!result) {
      (void)step_cached("ROLLBACK TO hpo_write", what);
      (void)step_cached("RELEASE hpo_write", what);
    }
    return result;
  }
  // One statement without parameters, prepared once (SAVEPOINT and RELEASE
  // run several times per trial: parsing them each time shows in profiles).
  Status step_cached(std::string_view sql, std::string_view what) {
    auto q = prepare(sql);
    if (!q) return std::unexpected(q.error());
    return run(*q, what);
  }
};

// Open + schema (schema.cpp): identity check, migrations, pragmas.
Status prepare_schema(Store::Impl& impl, const OpenOptions& options);

// Shared row readers (store.cpp).
inline constexpr const char* kTrialColumns =
    "t.id, t.study, t.number, t.state, t.config, t.hash, t.value, t.attempt, t.lease, t.agent, "
    "t.queued, t.started, t.finished, t.error, t.log_tail";
inline constexpr int kTrialColumnCount = 15;
Result<TrialRow> read_trial(const Store::Impl& impl, const detail::Query& q);

}  // namespace hpo::results
