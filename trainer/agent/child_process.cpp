#include "trainer/agent/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

extern char** environ;

namespace hpo::agent {
namespace {

constexpr int kMetricsFdInChild = 3;
constexpr size_t kMaxLine = 1 << 20;         // longer lines are cut (and never metrics)
constexpr size_t kMaxReadPerPump = 4 << 20;  // keeps one chatty trial from starving the loop
constexpr auto kDrainLimit = std::chrono::seconds(1);
constexpr auto kNoPidfdPoll = std::chrono::milliseconds(50);

std::string errno_text(int err) { return std::strerror(err); }

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

double seconds_between(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", s);
  return buf;
}

// Resolves argv[0] the way execvp would, before fork (execvp may allocate).
Result<std::string> resolve_program(const std::string& name, const std::string& path_env) {
  if (name.empty()) return fail("child process: empty command");
  if (name.find('/') != std::string::npos) return name;
  std::string_view rest = path_env.empty() ? std::string_view("/usr/local/bin:/usr/bin:/bin")
                                           : std::string_view(path_env);
  while (true) {
    size_t colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return fail("child process: '" + name + "' not found in PATH");
}

}  // namespace

std::string to_string(ChildExit::Kind kind) {
  switch (kind) {
    case ChildExit::Kind::kOk:
      return "ok";
    case ChildExit::Kind::kFailed:
      return "failed";
    case ChildExit::Kind::kTimedOut:
      return "timed out";
    case ChildExit::Kind::kStopped:
      return "stopped";
  }
  return "unknown";
}

Result<std::unique_ptr<ChildProcess>> ChildProcess::start(const ChildSpec& spec,
                                                          SteadyClock::time_point now) {
  if (spec.argv.empty()) return fail("child process: empty command");
  std::unique_ptr<ChildProcess> child(new ChildProcess(spec));
  child->started_ = now;

  // Everything the child needs is built before fork: after it only syscalls.
  std::vector<std::string> env_strings;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    std::string_view key = kv.substr(0, kv.find('='));
    bool overridden = (spec.metrics_fd && key == "HPO_METRICS_FD") ||
                      std::any_of(spec.env.begin(), spec.env.end(),
                                  [&](const auto& p) { return p.first == key; });
    if (!overridden) env_strings.emplace_back(kv);
  }
  std::string path_env = ::getenv("PATH") ? ::getenv("PATH") : "";
  for (const auto& [k, v] : spec.env) {
    env_strings.push_back(k + "=" + v);
    if (k == "PATH") path_env = v;
  }
  if (spec.metrics_fd) env_strings.push_back("HPO_METRICS_FD=" + std::to_string(kMetricsFdInChild));
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  auto program = resolve_program(spec.argv[0], path_env);
  if (!program) return std::unexpected(program.error());
  std::vector<std::string> argv_strings = spec.argv;
  std::vector<char*> argv;
  for (auto& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  if (!spec.log_path.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(spec.log_path).parent_path(), ec);
    child->log_fd_ = ::open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (child->log_fd_ < 0) {
      return fail("child process: cannot open log " + spec.log_path + ": " + errno_text(errno));
    }
  }

  int out[2], err[2], met[2] = {-1, -1}, status_pipe[2];
  auto close_all = [&] {
    for (int* p : {out, err, met, status_pipe}) {
      close_fd(p[0]);
      close_fd(p[1]);
    }
  };
  out[0] = out[1] = err[0] = err[1] = status_pipe[0] = status_pipe[1] = -1;
  if (::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC) || ::pipe2(status_pipe, O_CLOEXEC) ||
      (spec.metrics_fd && ::pipe2(met, O_CLOEXEC))) {
    int e = errno;
    close_all();
    return fail("child process: pipe: " + errno_text(e));
  }
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    close_all();
    close_fd(devnull);
    return fail("child process: fork: " + errno_text(e));
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only until execve.
    auto die = [&](int stage) {
      int msg[2] = {stage, errno};
      ssize_t ignored = ::write(status_pipe[1], msg, sizeof msg);
      (void)ignored;
      ::_exit(127);
    };
    ::setpgid(0, 0);
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) die(1);
    if (::getppid() != parent) ::_exit(1);  // the agent died before prctl took effect
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // the agent may block signals it waits for
    for (int sig : {SIGTERM, SIGINT, SIGPIPE, SIGCHLD, SIGHUP, SIGQUIT}) ::signal(sig, SIG_DFL);
    if (devnull >= 0) ::dup2(devnull, 0);
    if (::dup2(out[1], 1) < 0 || ::dup2(err[1], 2) < 0) die(1);
    if (met[1] >= 0) {
      if (met[1] == kMetricsFdInChild) {
        ::fcntl(met[1], F_SETFD, 0);
      } else if (::dup2(met[1], kMetricsFdInChild) < 0) {
        die(1);
      }
    }
    if (cwd && ::chdir(cwd) != 0) die(2);
    ::execve(program->c_str(), argv.data(), envp.data());
    die(3);
  }

  ::setpgid(pid, pid);  // also here: no window where a signal to the group misses it
  child->pid_ = pid;
  close_fd(devnull);
  close_fd(out[1]);
  close_fd(err[1]);
  close_fd(met[1]);
  close_fd(status_pipe[1]);
  // Blocks until execve (the pipe closes) or a failure report: a few milliseconds.
  int msg[2] = {0, 0};
  ssize_t n;
  do {
    n = ::read(status_pipe[0], msg, sizeof msg);
  } while (n < 0 && errno == EINTR);
  close_fd(status_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof msg)) {
    int st = 0;
    ::waitpid(pid, &st, 0);
    child->reaped_ = true;
    close_fd(out[0]);
    close_fd(err[0]);
    close_fd(met[0]);
    std::string what = msg[0] == 2   ? "cannot enter directory " + spec.cwd
                       : msg[0] == 3 ? "cannot execute " + *program
                                     : std::string("cannot set up the child");
    return fail("child process: " + what + ": " + errno_text(msg[1]));
  }

  for (auto [fd, kind] :
       {std::pair{out[0], OutputStream::kStdout}, std::pair{err[0], OutputStream::kStderr},
        std::pair{met[0], OutputStream::kMetricsFd}}) {
    if (fd < 0) continue;
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    child->streams_.push_back(Stream{fd, {}, kind});
  }
  child->pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  return child;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !reaped_) {
    ::kill(-pid_, SIGKILL);
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
  }
  for (auto& s : streams_) close_fd(s.fd);
  close_fd(pidfd_);
  close_fd(log_fd_);
}

std::vector<int> ChildProcess::poll_fds() const {
  std::vector<int> fds;
  for (const auto& s : streams_) {
    if (s.fd >= 0) fds.push_back(s.fd);
  }
  if (pidfd_ >= 0 && !reaped_) fds.push_back(pidfd_);
  return fds;
}

std::optional<SteadyClock::time_point> ChildProcess::next_deadline() const {
  if (exit_) return std::nullopt;
  std::optional<SteadyClock::time_point> d;
  auto consider = [&](SteadyClock::time_point t) {
    if (!d || t < *d) d = t;
  };
  if (spec_.timeout_seconds > 0 && !timed_out_ && !stop_requested_) {
    consider(started_ + std::chrono::duration_cast<SteadyClock::duration>(
                            std::chrono::duration<double>(spec_.timeout_seconds)));
  }
  if (kill_at_) consider(*kill_at_);
  if (drain_until_) consider(*drain_until_);
  if (pidfd_ < 0 && !reaped_) consider(SteadyClock::now() + kNoPidfdPoll);
  return d;
}

void ChildProcess::signal_group(int sig) {
  if (pid_ > 0) ::kill(-pid_, sig);
}

void ChildProcess::stop(SteadyClock::time_point now) {
  if (exit_ || reaped_ || stop_requested_) return;
  stop_requested_ = true;
  log_line("[hpo] ", "stop requested: SIGTERM to the trial's process group");
  signal_group(SIGTERM);
  if (!kill_at_) {
    kill_at_ = now + std::chrono::duration_cast<SteadyClock::duration>(
                         std::chrono::duration<double>(spec_.kill_grace_s));
  }
}

void ChildProcess::pump(SteadyClock::time_point now) {
  if (exit_) return;
  for (auto& s : streams_) {
    if (s.fd >= 0) read_stream(s, now);
  }
  try_reap(now);
  if (!reaped_) {
    if (spec_.timeout_seconds > 0 && !timed_out_ && !stop_requested_ &&
        seconds_between(started_, now) >= spec_.timeout_seconds) {
      timed_out_ = true;
      log_line("[hpo] ", "timed out after " + format_seconds(spec_.timeout_seconds) +
                             " s: SIGTERM to the trial's process group");
      signal_group(SIGTERM);
      kill_at_ = now + std::chrono::duration_cast<SteadyClock::duration>(
                           std::chrono::duration<double>(spec_.kill_grace_s));
    }
    if (kill_at_ && now >= *kill_at_) {
      log_line("[hpo] ", "still running after the grace period: SIGKILL");
      signal_group(SIGKILL);
      kill_at_.reset();
    }
    return;
  }
  bool open =
      std::any_of(streams_.begin(), streams_.end(), [](const Stream& s) { return s.fd >= 0; });
  if (!open || now >= *drain_until_) finish(now);
}

void ChildProcess::try_reap(SteadyClock::time_point now) {
  if (reaped_) return;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r != pid_) return;
  reaped_ = true;
  wait_status_ = st;
  exited_at_ = now;
  kill_at_.reset();
  close_fd(pidfd_);
  // The trial is over when its main process is: stragglers it left in its group
  // would hold our pipes open, so they go too.
  signal_group(SIGKILL);
  drain_until_ = now + kDrainLimit;
  for (auto& s : streams_) {
    if (s.fd >= 0) read_stream(s, now);
  }
}

void ChildProcess::read_stream(Stream& s, SteadyClock::time_point now) {
  char buf[65536];
  size_t total = 0;
  while (total < kMaxReadPerPump) {
    ssize_t n = ::read(s.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        close_fd(s.fd);
      }
      break;
    }
    if (n == 0) {
      close_fd(s.fd);
      break;
    }
    if (!first_output_) first_output_ = now;
    total += static_cast<size_t>(n);
    s.partial.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    while (true) {
      size_t nl = s.partial.find('\n', start);
      if (nl == std::string::npos) break;
      handle_line(s.kind, std::string_view(s.partial).substr(start, nl - start), now);
      start = nl + 1;
    }
    s.partial.erase(0, start);
    if (s.partial.size() > kMaxLine) {
      log_line("[hpo] ", "line longer than 1 MiB cut here");
      log_line("", s.partial);
      s.partial.clear();
    }
  }
  if (s.fd < 0 && !s.partial.empty()) {
    handle_line(s.kind, s.partial, now);
    s.partial.clear();
  }
}

void ChildProcess::handle_line(OutputStream kind, std::string_view line,
                               SteadyClock::time_point now) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  log_line(kind == OutputStream::kMetricsFd ? "[metric] " : "", line);
  MetricLine m = read_metric_line(kind, line, spec_.bare_json_metrics);
  switch (m.kind) {
    case MetricLine::Kind::kText:
      break;
    case MetricLine::Kind::kRecord:
      metrics_.push_back(MetricRecord{std::move(m.record), now});
      break;
    case MetricLine::Kind::kMalformed:
      log_line("[hpo] ", m.warning);
      break;
  }
}

void ChildProcess::log_line(std::string_view prefix, std::string_view line) {
  std::string text;
  text.reserve(prefix.size() + line.size() + 1);
  text.append(prefix).append(line).push_back('\n');
  if (log_fd_ >= 0) {
    const char* p = text.data();
    size_t left = text.size();
    while (left > 0) {
      ssize_t n = ::write(log_fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // a full disk must not stop the trial; the tail still travels
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  text.pop_back();
  if (text.size() > 1000) text = text.substr(0, 1000) + "...";
  tail_.push_back(std::move(text));
  while (tail_.size() > spec_.log_tail_lines) tail_.pop_front();
}

std::vector<MetricRecord> ChildProcess::take_metrics() {
  std::vector<MetricRecord> out;
  out.swap(metrics_);
  return out;
}

void ChildProcess::finish(SteadyClock::time_point now) {
  for (auto& s : streams_) {
    if (s.fd >= 0) {
      read_stream(s, now);
      close_fd(s.fd);
    }
    if (!s.partial.empty()) {
      handle_line(s.kind, s.partial, now);
      s.partial.clear();
    }
  }
  ChildExit e;
  e.seconds = seconds_between(started_, exited_at_);
  if (WIFEXITED(wait_status_)) {
    e.status = WEXITSTATUS(wait_status_);
  } else if (WIFSIGNALED(wait_status_)) {
    e.status = -WTERMSIG(wait_status_);
  }
  if (timed_out_) {
    e.kind = ChildExit::Kind::kTimedOut;
    e.error = "timed out after " + format_seconds(spec_.timeout_seconds) + " s";
  } else if (stop_requested_) {
    e.kind = ChildExit::Kind::kStopped;
    e.error = "stopped";
  } else if (e.status == 0 && WIFEXITED(wait_status_)) {
    e.kind = ChildExit::Kind::kOk;
  } else {
    e.kind = ChildExit::Kind::kFailed;
    if (e.status > 0) {
      e.error = "exited with status " + std::to_string(e.status);
    } else {
      int sig = -e.status;
      e.error = "killed by signal " + std::to_string(sig) + " (" + ::strsignal(sig) + ")";
    }
  }
  if (e.kind != ChildExit::Kind::kOk) log_line("[hpo] ", "trial " + e.error);
  for (const auto& l : tail_) {
    e.log_tail += l;
    e.log_tail += '\n';
  }
  close_fd(log_fd_);
  drain_until_.reset();
  exit_ = std::move(e);
}

}  // namespace hpo::agent
