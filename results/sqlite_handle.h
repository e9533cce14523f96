// Internal to results/: owning handles for the two SQLite C objects the
// store holds, a connection and a prepared statement. Destroying a handle
// closes (finalizes) the object; nothing else may. Statements must be
// destroyed before the connection they were prepared on (sqlite3_close_v2
// would otherwise keep the connection alive as a zombie until they are).
#pragma once

#include <sqlite3.h>

#include <memory>

namespace hpo::results::detail {

struct DbCloser {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

}  // namespace hpo::results::detail
