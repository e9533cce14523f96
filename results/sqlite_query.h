// Internal to results/: Query, one use of a prepared statement that the
// store keeps cached (Store::Impl::prepare hands them out). It binds
// parameters, steps, and reads columns; it does not own the statement.
// Errors are not reported here: step() returns SQLite's code and the caller
// turns it into an Error that names what it was doing (Store::Impl::error).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace hpo::results::detail {

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

}  // namespace hpo::results::detail
