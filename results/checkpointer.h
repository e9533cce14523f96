// Internal to results/: the writer's background WAL checkpoints. Owned by
// the writer's Store::Impl; start() and stop() are called from the thread
// that uses the Store, and stop() (also run by the destructor) joins the
// checkpoint thread, so it must run before the writer's connection closes.
#pragma once

#include <sqlite3.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "results/sqlite_handle.h"

namespace hpo::results::detail {

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

}  // namespace hpo::results::detail
