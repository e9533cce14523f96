#include "trainer/agent/child_process.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/support/temp_dir.h"

using hpo::agent::ChildExit;
using hpo::agent::ChildProcess;
using hpo::agent::ChildSpec;
using hpo::agent::SteadyClock;

namespace {

// Logs live in one directory for the whole run, removed at exit.
std::string temp_log(const std::string& name) {
  static const hpo::test::TempDir dir("child-test");
  auto path = dir / (name + ".txt");
  std::filesystem::remove(path);
  return path;
}

std::string read_file(const std::string& path) { return hpo::test::read_text(path); }

ChildSpec shell(const std::string& script, const std::string& log_name) {
  ChildSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  spec.log_path = temp_log(log_name);
  spec.kill_grace_s = 0.5;
  return spec;
}

// The agent loop in miniature: poll the child's fds until its deadline, pump.
void run_to_end(ChildProcess& child, double limit_seconds = 10) {
  auto give_up = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(
                                          std::chrono::duration<double>(limit_seconds));
  while (!child.finished() && SteadyClock::now() < give_up) {
    std::vector<pollfd> fds;
    for (int fd : child.poll_fds()) fds.push_back(pollfd{fd, POLLIN, 0});
    int timeout_ms = 200;
    if (auto d = child.next_deadline()) {
      auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(*d - SteadyClock::now()).count();
      timeout_ms = static_cast<int>(std::clamp<long long>(ms + 1, 0, 200));
    }
    ::poll(fds.data(), fds.size(), timeout_ms);
    child.pump();
  }
}

std::unique_ptr<ChildProcess> start(const ChildSpec& spec) {
  auto child = ChildProcess::start(spec);
  REQUIRE(child.has_value());
  return std::move(*child);
}

}  // namespace

TEST_CASE("a child that exits 0 is ok and its output lands in the log", "[child]") {
  auto spec = shell("echo hello; echo oops >&2; echo \"var=$HPO_TEST_VAR\"", "ok");
  spec.env = {{"HPO_TEST_VAR", "forty two"}};
  auto child = start(spec);
  run_to_end(*child);
  REQUIRE(child->finished());
  CHECK(child->exit()->kind == ChildExit::Kind::kOk);
  CHECK(child->exit()->status == 0);
  std::string log = read_file(spec.log_path);
  CHECK(log.find("hello\n") != std::string::npos);
  CHECK(log.find("oops\n") != std::string::npos);
  CHECK(log.find("var=forty two\n") != std::string::npos);
  CHECK(child->first_output().has_value());
}

TEST_CASE("a child that exits 3 failed and carries the last lines of its log", "[child]") {
  auto spec = shell(
      "i=1; while [ $i -le 50 ]; do echo line $i; i=$((i+1)); done; "
      "echo 'Traceback: boom' >&2; exit 3",
      "crash");
  auto child = start(spec);
  run_to_end(*child);
  REQUIRE(child->finished());
  const auto& e = *child->exit();
  CHECK(e.kind == ChildExit::Kind::kFailed);
  CHECK(e.status == 3);
  CHECK(e.error == "exited with status 3");
  CHECK(e.log_tail.find("Traceback: boom") != std::string::npos);
  CHECK(e.log_tail.find("line 50\n") != std::string::npos);
  CHECK(e.log_tail.find("line 5\n") == std::string::npos);  // only the tail travels
}

TEST_CASE("a child killed by a signal failed and names the signal", "[child]") {
  auto child = start(shell("kill -SEGV $$", "segv"));
  run_to_end(*child);
  REQUIRE(child->finished());
  CHECK(child->exit()->kind == ChildExit::Kind::kFailed);
  CHECK(child->exit()->status == -SIGSEGV);
  CHECK(child->exit()->error.find("signal 11") != std::string::npos);
}

TEST_CASE("a child that hangs past its timeout is terminated", "[child]") {
  auto spec = shell("echo started; sleep 30", "hang");
  spec.timeout_seconds = 0.3;
  auto begin = SteadyClock::now();
  auto child = start(spec);
  run_to_end(*child);
  double took = std::chrono::duration<double>(SteadyClock::now() - begin).count();
  REQUIRE(child->finished());
  CHECK(child->exit()->kind == ChildExit::Kind::kTimedOut);
  CHECK(child->exit()->error.find("timed out") != std::string::npos);
  CHECK(took < 0.3 + 0.5 + 1.0);
}

TEST_CASE("a child that ignores SIGTERM is killed after the grace period", "[child]") {
  // The shell and its sleep both inherit the ignored SIGTERM.
  auto spec = shell("trap '' TERM; echo started; sleep 30", "stubborn");
  spec.timeout_seconds = 0.2;
  spec.kill_grace_s = 0.3;
  auto begin = SteadyClock::now();
  auto child = start(spec);
  run_to_end(*child);
  double took = std::chrono::duration<double>(SteadyClock::now() - begin).count();
  REQUIRE(child->finished());
  CHECK(child->exit()->kind == ChildExit::Kind::kTimedOut);
  CHECK(child->exit()->status == -SIGKILL);
  CHECK(took >= 0.5);
  CHECK(took < 0.5 + 1.0);
  CHECK(read_file(spec.log_path).find("SIGKILL") != std::string::npos);
}

TEST_CASE("stop terminates the whole process group promptly", "[child]") {
  auto spec = shell("sleep 30 & sleep 30; wait", "stop");
  spec.kill_grace_s = 5;  // so that only SIGTERM can end it in time
  auto child = start(spec);
  child->pump();
  auto begin = SteadyClock::now();
  child->stop();
  run_to_end(*child);
  double took = std::chrono::duration<double>(SteadyClock::now() - begin).count();
  REQUIRE(child->finished());
  CHECK(child->exit()->kind == ChildExit::Kind::kStopped);
  CHECK(child->exit()->status == -SIGTERM);
  CHECK(took < 1.0);
}

TEST_CASE("a background process holding the output pipe does not keep the trial running",
          "[child]") {
  auto child = start(shell("sleep 30 & echo done", "straggler"));
  auto begin = SteadyClock::now();
  run_to_end(*child);
  double took = std::chrono::duration<double>(SteadyClock::now() - begin).count();
  REQUIRE(child->finished());
  CHECK(child->exit()->kind == ChildExit::Kind::kOk);
  CHECK(took < 1.5);
}

TEST_CASE("metric lines come through the marker and through HPO_METRICS_FD", "[child][metrics]") {
  auto spec = shell(
      "echo 'HPO_METRIC {\"step\": 1, \"loss\": 0.5}'; "
      "echo '{\"step\": 2, \"loss\": 0.4}' >&$HPO_METRICS_FD; "
      "echo 'HPO_METRIC {\"step\": 3, \"loss\": 0.3}' >&$HPO_METRICS_FD; "
      "echo '{\"step\": 4, \"loss\": 0.2}'",  // bare JSON: not a metric for this child
      "metrics");
  auto child = start(spec);
  run_to_end(*child);
  REQUIRE(child->finished());
  auto metrics = child->take_metrics();
  REQUIRE(metrics.size() == 3);
  std::vector<int> steps;
  for (const auto& m : metrics) steps.push_back(m.values["step"].get<int>());
  std::sort(steps.begin(), steps.end());  // two pipes: order between them is not defined
  CHECK(steps == std::vector<int>{1, 2, 3});
  CHECK(child->take_metrics().empty());
}

TEST_CASE("bare JSON lines with a step or epoch are metrics for native trials",
          "[child][metrics]") {
  auto spec = shell(
      "echo '{\"epoch\": 1, \"val_accuracy\": 0.8}'; echo '{\"note\": \"no step\"}'; "
      "echo '{\"final\": true, \"test_accuracy\": 0.85}'; echo '{not json'",
      "native");
  spec.bare_json_metrics = true;
  auto child = start(spec);
  run_to_end(*child);
  auto metrics = child->take_metrics();
  REQUIRE(metrics.size() == 2);
  CHECK(metrics[0].values["val_accuracy"] == 0.8);
  CHECK(metrics[1].values["final"] == true);
  CHECK(child->exit()->kind == ChildExit::Kind::kOk);
}

TEST_CASE("malformed metric lines are ignored with a warning and the trial still counts",
          "[child][metrics]") {
  auto spec = shell(
      "echo 'HPO_METRIC {\"step\": 1, \"loss\": 0.5'; "  // truncated
      "echo 'HPO_METRIC [1, 2]'; "
      "echo 'HPO_METRIC {\"step\": \"two\", \"loss\": 1}'; "
      "echo 'garbage' >&$HPO_METRICS_FD; "
      "echo 'HPO_METRIC {\"step\": 5, \"loss\": 0.1}'",
      "malformed");
  auto child = start(spec);
  run_to_end(*child);
  REQUIRE(child->finished());
  CHECK(child->exit()->kind == ChildExit::Kind::kOk);
  auto metrics = child->take_metrics();
  REQUIRE(metrics.size() == 1);
  CHECK(metrics[0].values["step"] == 5);
  std::string log = read_file(spec.log_path);
  size_t warnings = 0;
  for (size_t pos = 0; (pos = log.find("warning: malformed", pos)) != std::string::npos; ++pos)
    ++warnings;
  CHECK(warnings == 4);
}

TEST_CASE("a program that cannot be executed fails to start with the reason", "[child]") {
  ChildSpec spec;
  spec.argv = {"/nonexistent/trainer"};
  spec.log_path = temp_log("noexec");
  auto child = ChildProcess::start(spec);
  REQUIRE_FALSE(child.has_value());
  CHECK(child.error().message.find("cannot execute /nonexistent/trainer") != std::string::npos);

  spec.argv = {"/bin/true"};
  spec.cwd = "/nonexistent-dir";
  child = ChildProcess::start(spec);
  REQUIRE_FALSE(child.has_value());
  CHECK(child.error().message.find("cannot enter directory") != std::string::npos);
}

TEST_CASE("the child dies when the process that started it dies", "[child]") {
  int pipefd[2];
  REQUIRE(::pipe(pipefd) == 0);
  pid_t agent = ::fork();
  REQUIRE(agent >= 0);
  if (agent == 0) {
    ChildSpec spec;
    spec.argv = {"/bin/sleep", "30"};
    auto child = ChildProcess::start(spec);
    pid_t pid = child ? (*child)->pid() : -1;
    ssize_t n = ::write(pipefd[1], &pid, sizeof pid);
    (void)n;
    ::_exit(0);  // no destructor: only PR_SET_PDEATHSIG can take the child down
  }
  pid_t child_pid = -1;
  REQUIRE(::read(pipefd[0], &child_pid, sizeof child_pid) == sizeof child_pid);
  ::close(pipefd[0]);
  ::close(pipefd[1]);
  ::waitpid(agent, nullptr, 0);
  REQUIRE(child_pid > 0);
  auto alive = [&] {
    std::ifstream stat("/proc/" + std::to_string(child_pid) + "/stat");
    std::string pid, comm, state;
    if (!(stat >> pid >> comm >> state)) return false;
    return state != "Z" && state != "X";
  };
  for (int i = 0; i < 100 && alive(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK_FALSE(alive());
}
