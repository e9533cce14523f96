// The writer's background WAL checkpoints (checkpointer.h): a thread with a
// connection of its own, woken by the writer's wal hook or every few seconds.
#include "results/checkpointer.h"

#include <chrono>
#include <system_error>

namespace hpo::results::detail {

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

}  // namespace hpo::results::detail
