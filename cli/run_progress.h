// `hpo run`'s live progress: trials done / running / failed, the best value so
// far, elapsed time and an estimate of the time left. On a terminal one line is
// rewritten in place twice a second; otherwise a plain log line is printed
// whenever a count or the best value changes (CI logs, `> file`).
//
// It reads the results database through its own read-only connection on its
// own thread (WAL: it never blocks the scheduler, which is the only writer).
#pragma once

#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <thread>

namespace hpo::cli {

class RunProgress {
 public:
  // `max_trials` is the study's budget; `out` is written from the progress
  // thread only (stderr in `hpo run`); `tty` picks the in-place line.
  RunProgress(std::string db, std::string study, std::int64_t max_trials, bool tty,
              std::ostream& out);
  ~RunProgress();  // stops the thread; on a terminal, prints the last state and a newline
  RunProgress(const RunProgress&) = delete;
  RunProgress& operator=(const RunProgress&) = delete;

  void start();

 private:
  void loop();
  void tick(bool last);

  std::string db_;
  std::string study_;
  std::int64_t max_trials_;
  bool tty_;
  std::ostream& out_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::string last_line_;
  std::int64_t done_at_start_ = -1;
  double started_ = 0;
};

}  // namespace hpo::cli
