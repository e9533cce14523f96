// One trial as a child process: its own process group, its output in a log file, its time
// limit and its stop request enforced with SIGTERM then SIGKILL, and its exit reaped. Nothing
// here blocks: the agent's single loop polls `poll_fds()` (with zmq::poll or poll(2)) and calls
// `pump()`.
//
// Each line of output goes to the log (lines from the metrics pipe prefixed "[metric] ") and
// to the metric-line protocol (metric_lines.h); the records it finds are kept for
// take_metrics(), a malformed one is logged as a warning and the trial goes on. The child gets
// $HPO_METRICS_FD (the write end of that pipe) when ChildSpec::metrics_fd is set.
//
// Threading: a ChildProcess belongs to the thread that started it (the agent loop).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "trainer/agent/metric_lines.h"

namespace hpo::agent {

using SteadyClock = std::chrono::steady_clock;

struct ChildSpec {
  std::vector<std::string> argv;  // argv[0]: absolute path, or a name searched in $PATH
  std::vector<std::pair<std::string, std::string>> env;  // added to (and overriding) ours
  std::string cwd;                                       // working directory; empty = the agent's
  std::string log_path;            // stdout+stderr are appended here (created if missing)
  double timeout_seconds = 0;      // wall-clock limit; 0 = none
  double kill_grace_s = 5;         // SIGTERM -> SIGKILL delay (timeout and stop())
  bool metrics_fd = true;          // open a metrics pipe and pass $HPO_METRICS_FD
  bool bare_json_metrics = false;  // metric_lines.h rule 3 (native trials)
  size_t log_tail_lines = 30;      // how many last lines FINISH carries
};

// One metric record as the trial wrote it (a JSON object), in arrival order.
struct MetricRecord {
  nlohmann::json values;
  SteadyClock::time_point at;
};

struct ChildExit {
  enum class Kind {
    kOk,        // exit status 0 and nobody asked it to stop
    kFailed,    // non-zero status or killed by a signal it was not sent by us
    kTimedOut,  // ran past timeout_seconds and was stopped
    kStopped,   // stop() was called (a STOP decision or the agent shutting down)
  };
  Kind kind = Kind::kFailed;
  int status = 0;        // exit code, or -signal number when killed by a signal
  std::string error;     // one line: "exited with status 3", "timed out after 2 s", ...
  std::string log_tail;  // last log_tail_lines lines of stdout+stderr (+ our warnings)
  double seconds = 0;    // from start to exit
};

std::string to_string(ChildExit::Kind kind);

class ChildProcess {
 public:
  // Forks and execs spec.argv in a new process group with PR_SET_PDEATHSIG=SIGKILL
  // (so it dies with the agent). Fails, starting nothing, when the log cannot be
  // opened, pipes cannot be made or the program cannot be executed (the exec
  // error comes back through a close-on-exec pipe, e.g. "no such file").
  static Result<std::unique_ptr<ChildProcess>> start(
      const ChildSpec& spec, SteadyClock::time_point now = SteadyClock::now());

  // Kills the whole group with SIGKILL if it still runs, and reaps it.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // File descriptors to watch for POLLIN: output pipes and a pidfd (readable when
  // the child exits). Changes as pipes close; ask again after each pump().
  std::vector<int> poll_fds() const;

  // When pump() must run next even if no fd is readable (timeout or kill_grace_s);
  // nullopt = only fds matter.
  std::optional<SteadyClock::time_point> next_deadline() const;

  // Reads what is available without blocking, logs it, reads metric lines,
  // enforces the time limit and kill_grace_s, and reaps the child. Once the
  // child has exited, its remaining output is drained (at most ~1 s, since a
  // grandchild could hold a pipe open: the group gets SIGKILL then).
  void pump(SteadyClock::time_point now = SteadyClock::now());

  // Metric records parsed since the last call, oldest first.
  std::vector<MetricRecord> take_metrics();

  // Asks the group to stop: SIGTERM now, SIGKILL after kill_grace_s.
  // Idempotent; no effect once it has exited.
  void stop(SteadyClock::time_point now = SteadyClock::now());

  // Set once the child has exited and its output is drained; final.
  const std::optional<ChildExit>& exit() const { return exit_; }
  bool finished() const { return exit_.has_value(); }

  pid_t pid() const { return pid_; }
  // When the child wrote its first byte of output (stdout, stderr or metrics pipe).
  std::optional<SteadyClock::time_point> first_output() const { return first_output_; }
  SteadyClock::time_point started() const { return started_; }
  const std::string& log_path() const { return spec_.log_path; }

 private:
  struct Stream {
    int fd = -1;
    std::string partial;  // bytes after the last newline
    OutputStream kind;
  };

  explicit ChildProcess(ChildSpec spec) : spec_(std::move(spec)) {}
  void read_stream(Stream& s, SteadyClock::time_point now);
  void handle_line(OutputStream kind, std::string_view line, SteadyClock::time_point now);
  void log_line(std::string_view prefix, std::string_view line);
  void signal_group(int sig);
  void try_reap(SteadyClock::time_point now);
  void finish(SteadyClock::time_point now);

  ChildSpec spec_;
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int log_fd_ = -1;
  std::vector<Stream> streams_;
  std::deque<std::string> tail_;
  std::vector<MetricRecord> metrics_;
  SteadyClock::time_point started_;
  std::optional<SteadyClock::time_point> first_output_;
  std::optional<SteadyClock::time_point> kill_at_;      // SIGKILL due
  std::optional<SteadyClock::time_point> drain_until_;  // reaped; give up on pipes then
  bool stop_requested_ = false;
  bool timed_out_ = false;
  bool reaped_ = false;
  int wait_status_ = 0;
  SteadyClock::time_point exited_at_;
  std::optional<ChildExit> exit_;
};

}  // namespace hpo::agent
