// Store: opening (writer lock, schema), transactions, studies, agents, events.
// Trials, metrics and history live in trials.cpp; the leaderboard in leaderboard.cpp.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include "results/sqlite.h"

namespace hpo::results {
namespace {

using detail::dump_json;
using detail::parse_json;
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

Result<StudyRow> read_study(const Store::Impl& impl, const Query& q) {
  StudyRow s;
  s.id = q.i64(0);
  s.name = q.text(1);
  auto spec = parse_json(q.text(2), impl.path + ": study '" + s.name + "' spec");
  if (!spec) return std::unexpected(spec.error());
  s.spec = std::move(*spec);
  s.metric = q.text(3);
  s.direction = search::direction_from_string(q.text(4)).value_or(Direction::kMinimize);
  s.seed = q.i64(5);
  s.status = q.text(6);
  s.created = q.f64(7);
  s.updated = q.f64(8);
  return s;
}

constexpr const char* kStudyColumns =
    "id, name, spec, metric, direction, seed, status, created, updated";

bool is_study_status(std::string_view status) {
  return status == "running" || status == "finished" || status == "interrupted";
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

bool Checkpointer::start(sqlite3* writer, const std::string& path, int pages) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  db_.reset(raw);
  if (rc != SQLITE_OK) return false;
  pages_ = pages;
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::system_error&) {
    return false;
  }
  sqlite3_wal_hook(writer, &Checkpointer::on_commit, this);  // replaces auto-checkpoints
  return true;
}

void Checkpointer::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
  db_.reset();
}

int Checkpointer::on_commit(void* self, sqlite3*, const char*, int pages) {
  auto* c = static_cast<Checkpointer*>(self);
  if (pages >= c->pages_) {
    {
      std::lock_guard lock(c->mutex_);
      c->pending_ = true;
    }
    c->wake_.notify_one();
  }
  return SQLITE_OK;
}

void Checkpointer::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    // Also every few seconds, so a quiet study's WAL is folded back too.
    wake_.wait_for(lock, std::chrono::seconds(5), [this] { return pending_ || stopping_; });
    if (stopping_) return;
    pending_ = false;
    lock.unlock();
    // PASSIVE never waits on the writer or readers; what it cannot copy now
    // is copied next time. Errors (SQLITE_BUSY) are retried the same way.
    (void)sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                                    nullptr);
    lock.lock();
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
  return Error{path + ": " + std::string(what) + ": " +
               (db ? sqlite3_errmsg(db.get()) : "no database")};
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

Result<TrialRow> read_trial(const Store::Impl& impl, const Query& q) {
  TrialRow t;
  t.id = q.i64(0);
  t.study = q.i64(1);
  t.number = q.i64(2);
  const std::string state = q.text(3);
  auto parsed = search::trial_state_from_string(state);
  if (!parsed) {
    return fail(impl.path + ": trial " + std::to_string(t.number) + " has unknown state '" + state +
                "'");
  }
  t.state = *parsed;
  auto config =
      parse_json(q.text(4), impl.path + ": trial " + std::to_string(t.number) + " config");
  if (!config) return std::unexpected(config.error());
  t.config = std::move(*config);
  t.hash = q.text(5);
  t.value = q.opt_f64(6);
  t.attempt = q.i64(7);
  t.lease = q.text(8);
  t.agent = q.text(9);
  t.queued = q.f64(10);
  t.started = q.opt_f64(11);
  t.finished = q.opt_f64(12);
  t.error = q.text(13);
  t.log_tail = q.text(14);
  return t;
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

// ---------------------------------------------------------------- transactions

Store::Transaction::Transaction(Transaction&& other) noexcept
    : impl_(std::exchange(other.impl_, nullptr)) {}

Store::Transaction& Store::Transaction::operator=(Transaction&& other) noexcept {
  if (this != &other) {
    rollback();
    impl_ = std::exchange(other.impl_, nullptr);
  }
  return *this;
}

Store::Transaction::~Transaction() { rollback(); }

Status Store::Transaction::commit() {
  if (impl_ == nullptr) return fail("commit: the transaction is already finished");
  Impl* impl = std::exchange(impl_, nullptr);
  impl->in_transaction = false;
  if (auto ok = impl->exec("COMMIT", "committing"); !ok) {
    // A failed COMMIT may leave the transaction open; never leave it half-done.
    if (sqlite3_get_autocommit(impl->db.get()) == 0) (void)impl->exec("ROLLBACK", "rolling back");
    return ok;
  }
  return {};
}

void Store::Transaction::rollback() {
  if (impl_ == nullptr) return;
  Impl* impl = std::exchange(impl_, nullptr);
  impl->in_transaction = false;
  if (sqlite3_get_autocommit(impl->db.get()) == 0) (void)impl->exec("ROLLBACK", "rolling back");
}

Result<Store::Transaction> Store::begin() {
  if (auto ok = impl_->writable("begin a transaction"); !ok) return std::unexpected(ok.error());
  if (impl_->in_transaction) return fail(impl_->path + ": a transaction is already open");
  if (auto ok = impl_->exec("BEGIN IMMEDIATE", "beginning a transaction"); !ok) {
    return std::unexpected(ok.error());
  }
  impl_->in_transaction = true;
  return Transaction(impl_.get());
}

// ---------------------------------------------------------------- studies

Result<std::int64_t> Store::create_study(const StudyRow& study) {
  if (auto ok = impl_->writable("create study"); !ok) return std::unexpected(ok.error());
  if (!is_study_status(study.status)) {
    return fail(impl_->path + ": study '" + study.name + "': unknown status '" + study.status +
                "'");
  }
  auto spec = dump_json(study.spec, "study spec");
  if (!spec) return std::unexpected(spec.error());
  auto q = impl_->prepare(
      "INSERT INTO studies(name, spec, metric, direction, seed, status, created, updated) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  if (!q) return std::unexpected(q.error());
  q->bind(1, std::string_view(study.name))
      .bind(2, std::string_view(*spec))
      .bind(3, std::string_view(study.metric))
      .bind(4, search::to_string(study.direction))
      .bind(5, study.seed)
      .bind(6, std::string_view(study.status))
      .bind(7, study.created)
      .bind(8, study.created);
  if (q->step() != SQLITE_DONE) {
    if (sqlite3_extended_errcode(impl_->db.get()) == SQLITE_CONSTRAINT_UNIQUE) {
      return fail(impl_->path + ": a study named '" + study.name + "' already exists");
    }
    return std::unexpected(impl_->error("creating study '" + study.name + "'"));
  }
  return sqlite3_last_insert_rowid(impl_->db.get());
}

Result<std::optional<StudyRow>> Store::find_study(std::string_view name) {
  auto q = impl_->prepare(std::string("SELECT ") + kStudyColumns + " FROM studies WHERE name = ?");
  if (!q) return std::unexpected(q.error());
  q->bind(1, name);
  int rc = q->step();
  if (rc == SQLITE_DONE) return std::optional<StudyRow>();
  if (rc != SQLITE_ROW) return std::unexpected(impl_->error("finding a study"));
  auto row = read_study(*impl_, *q);
  if (!row) return std::unexpected(row.error());
  return std::optional<StudyRow>(std::move(*row));
}

Result<std::optional<StudyRow>> Store::get_study(std::int64_t id) {
  auto q = impl_->prepare(std::string("SELECT ") + kStudyColumns + " FROM studies WHERE id = ?");
  if (!q) return std::unexpected(q.error());
  q->bind(1, id);
  int rc = q->step();
  if (rc == SQLITE_DONE) return std::optional<StudyRow>();
  if (rc != SQLITE_ROW) return std::unexpected(impl_->error("reading a study"));
  auto row = read_study(*impl_, *q);
  if (!row) return std::unexpected(row.error());
  return std::optional<StudyRow>(std::move(*row));
}

Result<std::vector<StudyRow>> Store::list_studies() {
  auto q = impl_->prepare(std::string("SELECT ") + kStudyColumns + " FROM studies ORDER BY id");
  if (!q) return std::unexpected(q.error());
  std::vector<StudyRow> out;
  int rc;
  while ((rc = q->step()) == SQLITE_ROW) {
    auto row = read_study(*impl_, *q);
    if (!row) return std::unexpected(row.error());
    out.push_back(std::move(*row));
  }
  if (rc != SQLITE_DONE) return std::unexpected(impl_->error("listing studies"));
  return out;
}

Status Store::set_study_status(std::int64_t study, std::string_view status, double time) {
  if (auto ok = impl_->writable("set study status"); !ok) return ok;
  if (!is_study_status(status)) {
    return fail(impl_->path + ": unknown study status '" + std::string(status) +
                "' (running, finished, interrupted)");
  }
  auto q = impl_->prepare("UPDATE studies SET status = ?, updated = ? WHERE id = ?");
  if (!q) return std::unexpected(q.error());
  q->bind(1, status).bind(2, time).bind(3, study);
  if (auto ok = impl_->run(*q, "setting study status"); !ok) return ok;
  if (sqlite3_changes(impl_->db.get()) == 0) {
    return fail(impl_->path + ": no study with id " + std::to_string(study));
  }
  return {};
}

Status Store::update_study_spec(std::int64_t study, const nlohmann::json& spec, double time) {
  if (auto ok = impl_->writable("update study spec"); !ok) return ok;
  auto text = dump_json(spec, "study spec");
  if (!text) return std::unexpected(text.error());
  auto q = impl_->prepare("UPDATE studies SET spec = ?, updated = ? WHERE id = ?");
  if (!q) return std::unexpected(q.error());
  q->bind(1, std::string_view(*text)).bind(2, time).bind(3, study);
  if (auto ok = impl_->run(*q, "updating study spec"); !ok) return ok;
  if (sqlite3_changes(impl_->db.get()) == 0) {
    return fail(impl_->path + ": no study with id " + std::to_string(study));
  }
  return {};
}

Result<std::map<TrialState, std::int64_t>> Store::count_trials(std::int64_t study) {
  auto q = impl_->prepare("SELECT state, count(*) FROM trials WHERE study = ? GROUP BY state");
  if (!q) return std::unexpected(q.error());
  q->bind(1, study);
  std::map<TrialState, std::int64_t> out;
  int rc;
  while ((rc = q->step()) == SQLITE_ROW) {
    if (auto s = search::trial_state_from_string(q->text(0))) out[*s] = q->i64(1);
  }
  if (rc != SQLITE_DONE) return std::unexpected(impl_->error("counting trials"));
  return out;
}

// ---------------------------------------------------------------- agents and events

Status Store::upsert_agent(std::string_view id, std::string_view host, const nlohmann::json& gpus,
                           int slots, double time) {
  if (auto ok = impl_->writable("record agent"); !ok) return ok;
  auto text = dump_json(gpus, "agent gpus");
  if (!text) return std::unexpected(text.error());
  auto q = impl_->prepare(
      "INSERT INTO agents(id, host, gpus, slots, first_seen, last_seen) VALUES (?1, ?2, ?3, ?4, "
      "?5, ?5) ON CONFLICT(id) DO UPDATE SET host = ?2, gpus = ?3, slots = ?4, last_seen = ?5");
  if (!q) return std::unexpected(q.error());
  q->bind(1, id).bind(2, host).bind(3, std::string_view(*text)).bind(4, slots).bind(5, time);
  return impl_->run(*q, "recording agent");
}

Result<std::vector<AgentRow>> Store::agents() {
  auto q = impl_->prepare(
      "SELECT id, host, gpus, slots, first_seen, last_seen FROM agents ORDER BY first_seen, id");
  if (!q) return std::unexpected(q.error());
  std::vector<AgentRow> out;
  int rc;
  while ((rc = q->step()) == SQLITE_ROW) {
    AgentRow a;
    a.id = q->text(0);
    a.host = q->text(1);
    auto gpus = parse_json(q->text(2), impl_->path + ": agent '" + a.id + "' gpus");
    if (!gpus) return std::unexpected(gpus.error());
    a.gpus = std::move(*gpus);
    a.slots = static_cast<int>(q->i64(3));
    a.first_seen = q->f64(4);
    a.last_seen = q->f64(5);
    out.push_back(std::move(a));
  }
  if (rc != SQLITE_DONE) return std::unexpected(impl_->error("listing agents"));
  return out;
}

Status Store::append_event(std::optional<std::int64_t> study, std::optional<std::int64_t> trial,
                           std::string_view kind, const nlohmann::json& detail, double time) {
  if (auto ok = impl_->writable("append event"); !ok) return ok;
  auto text = dump_json(detail, "event detail");
  if (!text) return std::unexpected(text.error());
  auto q =
      impl_->prepare("INSERT INTO events(study, trial, kind, detail, time) VALUES (?, ?, ?, ?, ?)");
  if (!q) return std::unexpected(q.error());
  q->bind(1, study).bind(2, trial).bind(3, kind).bind(4, std::string_view(*text)).bind(5, time);
  return impl_->run(*q, "appending event '" + std::string(kind) + "'");
}

Result<std::vector<EventRow>> Store::events(std::optional<std::int64_t> study, std::size_t limit) {
  auto q = impl_->prepare(
      "SELECT id, study, trial, kind, detail, time FROM (SELECT * FROM events WHERE ?1 IS NULL "
      "OR study = ?1 ORDER BY id DESC LIMIT ?2) ORDER BY id");
  if (!q) return std::unexpected(q.error());
  q->bind(1, study).bind(2, limit == 0 ? std::int64_t{-1} : static_cast<std::int64_t>(limit));
  std::vector<EventRow> out;
  int rc;
  while ((rc = q->step()) == SQLITE_ROW) {
    EventRow e;
    e.id = q->i64(0);
    e.study = q->opt_i64(1);
    e.trial = q->opt_i64(2);
    e.kind = q->text(3);
    auto detail = parse_json(q->text(4), impl_->path + ": event " + std::to_string(e.id));
    if (!detail) return std::unexpected(detail.error());
    e.detail = std::move(*detail);
    e.time = q->f64(5);
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return std::unexpected(impl_->error("listing events"));
  return out;
}

}  // namespace hpo::results
