// Internal to results/: Store::Impl, the state behind a Store (its
// connection, writer lock, statement cache and checkpointer), and the pieces
// the store's source files share. Nothing outside results/ includes this.
//
// Errors: every SQLite failure becomes an Error here, in one spelling:
// "<path>: <what the store was doing>: <SQLite's message>".
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "results/checkpointer.h"
#include "results/savepoint.h"
#include "results/sqlite_handle.h"
#include "results/sqlite_query.h"
#include "results/store.h"

namespace hpo::results {

namespace detail {

// JSON in and out of TEXT columns; errors name `where`.
Result<nlohmann::json> parse_json(const std::string& text, const std::string& where);
Result<std::string> dump_json(const nlohmann::json& value, std::string_view where);

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
  // Runs `body` atomically, inside a Savepoint: it nests in an open
  // Transaction and is its own transaction otherwise.
  template <class F>
  Status atomically(std::string_view what, F&& body) {
    if (auto ok = writable(what); !ok) return ok;
    auto savepoint = detail::Savepoint::open(*this, what);
    if (!savepoint) return std::unexpected(savepoint.error());
    Status result = body();
    if (result) result = savepoint->release(what);
    return result;  // ~Savepoint rolls back unless released
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

// Trial rows, as trials.cpp and leaderboard.cpp read them: SELECT
// kTrialColumns FROM trials t ..., then read_trial (trials.cpp) on each row.
inline constexpr const char* kTrialColumns =
    "t.id, t.study, t.number, t.state, t.config, t.hash, t.value, t.attempt, t.lease, t.agent, "
    "t.queued, t.started, t.finished, t.error, t.log_tail, t.failures, t.interruptions, "
    "t.agent_key, t.parent, t.parent_step";
inline constexpr int kTrialColumnCount = 20;
Result<TrialRow> read_trial(const Store::Impl& impl, const detail::Query& q);

}  // namespace hpo::results
