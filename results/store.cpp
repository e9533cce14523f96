// Store: opening (writer lock, connection, schema, checkpointer), the
// connection's plumbing (statement cache, error messages), and closing.
// Transactions are in transaction.cpp; studies, agents and events in
// studies.cpp; trials, metrics and history in trials.cpp; the leaderboard in
// leaderboard.cpp; the schema and its migrations in schema.cpp.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "results/store_impl.h"

namespace hpo::results {
namespace {

using detail::Query;

std::string errno_text() { return std::strerror(errno); }

// Takes the writer lock "<path>.lock" (flock: the kernel drops it when the
// process dies, so a crashed scheduler never leaves a stale lock) and writes
// our pid into it for the next writer's error message. Returns the fd.
// A writer that closes cleanly removes the file while it still holds the lock
// (Store::Impl::~Impl); a process that opened the old file just before then
// would lock a file no longer at the path, so the lock only counts once the
// path still names the locked file afterwards, and is taken again otherwise.
Result<int> lock_writer(const std::string& path) {
  const std::string lock_path = path + ".lock";
  for (int tries = 0;; ++tries) {
    int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return fail(lock_path + ": cannot open the writer lock: " + errno_text());
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      std::string holder = "another process";
      char buf[32] = {};
      ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
      if (n > 0) holder = "pid " + std::string(buf, static_cast<std::size_t>(n));
      ::close(fd);
      if (err == EWOULDBLOCK) {
        return fail("database " + path + " is already being written by " + holder +
                    " (only one scheduler may write a database; readers such as "
                    "`hpo leaderboard` are fine)");
      }
      return fail(lock_path + ": cannot lock: " + std::strerror(err));
    }
    struct stat held {
    }, named{};
    const bool same = ::fstat(fd, &held) == 0 && ::stat(lock_path.c_str(), &named) == 0 &&
                      held.st_dev == named.st_dev && held.st_ino == named.st_ino;
    if (!same) {
      ::close(fd);
      if (tries < 100) continue;
      return fail(lock_path + ": the writer lock file keeps being replaced");
    }
    const std::string pid = std::to_string(::getpid());
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
      // The lock holds without the pid; only the message gets vaguer.
    }
    return fd;
  }
}

}  // namespace

namespace detail {

Result<nlohmann::json> parse_json(const std::string& text, const std::string& where) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return fail(where + ": stored JSON is unreadable: " + e.what());
  }
}

Result<std::string> dump_json(const nlohmann::json& value, std::string_view where) {
  try {
    return value.dump();
  } catch (const nlohmann::json::exception& e) {
    return fail(std::string(where) + ": cannot store JSON: " + e.what());
  }
}

}  // namespace detail

// ---------------------------------------------------------------- Impl

Store::Impl::~Impl() {
  checkpointer.reset();  // joins its thread before the writer closes
  statements.clear();    // finalize before close
  if (db && mode == OpenMode::kWriter && !in_transaction) {
    // Everything into the database file and the WAL emptied: even when a
    // reader keeps the -wal/-shm files alive, they hold nothing. Closing the
    // last connection then removes them (SQLite does when it can lock the file).
    (void)sqlite3_wal_checkpoint_v2(db.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr,
                                    nullptr);
  }
  db.reset();
  if (lock_fd >= 0) {
    // Removed while still locked, so no other writer holds it meanwhile (see lock_writer).
    (void)::unlink((path + ".lock").c_str());
    ::close(lock_fd);  // releases the flock
  }
}

Error Store::Impl::error(std::string_view what) const {
  // The code tells a caller whether the file itself failed (disk full, I/O error, corruption,
  // locked): kIo, which the scheduler treats as fatal; anything else SQLite refuses is kInternal.
  ErrorCode code = ErrorCode::kIo;
  if (db) {
    switch (sqlite3_errcode(db.get())) {
      case SQLITE_FULL:
      case SQLITE_IOERR:
      case SQLITE_CORRUPT:
      case SQLITE_NOTADB:
      case SQLITE_CANTOPEN:
      case SQLITE_READONLY:
      case SQLITE_NOMEM:
      case SQLITE_PROTOCOL:
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        break;
      default:
        code = ErrorCode::kInternal;
    }
  }
  return Error{
      path + ": " + std::string(what) + ": " + (db ? sqlite3_errmsg(db.get()) : "no database"),
      code};
}

Result<Query> Store::Impl::prepare(std::string_view sql) {
  auto it = statements.find(std::string(sql));
  if (it == statements.end()) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v3(db.get(), sql.data(), static_cast<int>(sql.size()),
                           SQLITE_PREPARE_PERSISTENT, &raw, nullptr) != SQLITE_OK) {
      return std::unexpected(error("preparing a statement"));
    }
    it = statements.emplace(std::string(sql), detail::StmtPtr(raw)).first;
  }
  return Query(it->second.get());
}

Status Store::Impl::run(Query& query, std::string_view what) {
  int rc = query.step();
  while (rc == SQLITE_ROW) rc = query.step();
  if (rc != SQLITE_DONE) return std::unexpected(error(what));
  return {};
}

Status Store::Impl::exec(const char* sql, std::string_view what) {
  char* message = nullptr;
  if (sqlite3_exec(db.get(), sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message != nullptr ? message : sqlite3_errmsg(db.get());
    sqlite3_free(message);
    return fail(path + ": " + std::string(what) + ": " + text);
  }
  return {};
}

Status Store::Impl::writable(std::string_view what) const {
  if (mode != OpenMode::kWriter) {
    return fail(path + ": " + std::string(what) + ": the database was opened read-only");
  }
  return {};
}

// ---------------------------------------------------------------- open

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;
Store::~Store() = default;

const std::string& Store::path() const { return impl_->path; }
OpenMode Store::mode() const { return impl_->mode; }

Result<Store> Store::open(const std::string& path, OpenMode mode, OpenOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->mode = mode;
  const bool memory = path == ":memory:";
  int flags = SQLITE_OPEN_NOMUTEX;
  if (mode == OpenMode::kReadOnly) {
    struct stat st {};
    if (memory) return fail(path + ": an in-memory database cannot be opened read-only");
    if (::stat(path.c_str(), &st) != 0) {
      return fail(path + ": no such database (" + errno_text() +
                  "); hpo never creates one on a read: run a search first or pass --db");
    }
    if (!S_ISREG(st.st_mode)) return fail(path + ": not an hpo database (not a regular file)");
    flags |= SQLITE_OPEN_READONLY;
  } else {
    if (!memory) {
      auto fd = lock_writer(path);
      if (!fd) return std::unexpected(fd.error());
      impl->lock_fd = *fd;
    }
    flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  impl->db.reset(raw);
  if (rc != SQLITE_OK) return std::unexpected(impl->error("cannot open"));
  sqlite3_extended_result_codes(raw, 1);
  if (auto ok = prepare_schema(*impl, options); !ok) return std::unexpected(ok.error());
  if (mode == OpenMode::kWriter && !memory && options.background_checkpoints) {
    auto checkpointer = std::make_unique<detail::Checkpointer>();
    if (checkpointer->start(raw, path, 1000)) impl->checkpointer = std::move(checkpointer);
  }
  return Store(std::move(impl));
}

}  // namespace hpo::results
