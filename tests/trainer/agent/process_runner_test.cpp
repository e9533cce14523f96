#include "trainer/agent/process_runner.h"

#include <poll.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/support/temp_dir.h"

using hpo::agent::ProcessRunner;
using hpo::agent::ProcessRunnerOptions;
using hpo::agent::StopReason;
using hpo::agent::TrialEvent;
namespace protocol = hpo::scheduler::protocol;
using nlohmann::json;

namespace {

// The trials' directory for the whole run, removed at exit.
std::string workdir() {
  static const hpo::test::TempDir dir("runner-test");
  return dir.path.string();
}

protocol::Assign command_trial(std::int64_t number, const std::string& command,
                               json config = json::object()) {
  protocol::Assign a;
  a.study = "s";
  a.trial = number;
  a.attempt = 1;
  a.lease = "lease-" + std::to_string(number);
  a.config = std::move(config);
  a.spec = {{"kind", "command"}, {"command", command}, {"timeout_seconds", 5}};
  return a;
}

// Runs the agent's loop on the runner alone until every trial finished.
std::vector<TrialEvent> run_all(ProcessRunner& runner, double limit_seconds = 10) {
  std::vector<TrialEvent> events;
  auto give_up =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(int(limit_seconds * 1000));
  while (runner.running() > 0 && std::chrono::steady_clock::now() < give_up) {
    std::vector<pollfd> fds;
    for (int fd : runner.wait_fds()) fds.push_back(pollfd{fd, POLLIN, 0});
    ::poll(fds.data(), fds.size(), static_cast<int>(runner.wait_hint().count()));
    auto more = runner.poll();
    std::move(more.begin(), more.end(), std::back_inserter(events));
  }
  return events;
}

std::vector<protocol::Report> reports(const std::vector<TrialEvent>& events) {
  std::vector<protocol::Report> out;
  for (const auto& e : events) {
    if (auto* r = std::get_if<protocol::Report>(&e)) out.push_back(*r);
  }
  return out;
}

std::vector<protocol::Finish> finishes(const std::vector<TrialEvent>& events) {
  std::vector<protocol::Finish> out;
  for (const auto& e : events) {
    if (auto* f = std::get_if<protocol::Finish>(&e)) out.push_back(*f);
  }
  return out;
}

ProcessRunnerOptions options(int slots) {
  ProcessRunnerOptions o;
  o.slots.resize(static_cast<size_t>(slots));
  o.workdir = workdir();
  o.kill_grace_s = 0.5;
  return o;
}

}  // namespace

TEST_CASE("stepped metric lines become reports and the last values the final metrics", "[runner]") {
  ProcessRunner runner(options(1));
  REQUIRE(
      runner.start(command_trial(1,
                                 "for s in 1 2 3; do echo \"HPO_METRIC {\\\"epoch\\\": $s, "
                                 "\\\"val_accuracy\\\": 0.$s, \\\"phase\\\": \\\"x\\\"}\"; done; "
                                 "echo 'HPO_METRIC {\"test_accuracy\": 0.77}'"), {}));
  auto events = run_all(runner);
  auto r = reports(events);
  REQUIRE(r.size() == 3);
  CHECK(r[2].step == 3);
  CHECK(r[2].metrics == protocol::Metrics{{"val_accuracy", 0.3}});
  CHECK(r[0].lease == "lease-1");
  auto f = finishes(events);
  REQUIRE(f.size() == 1);
  CHECK(f[0].outcome == protocol::Outcome::kOk);
  CHECK(f[0].metrics == protocol::Metrics{{"test_accuracy", 0.77}, {"val_accuracy", 0.3}});
  CHECK(std::filesystem::exists(workdir() + "/s/trial-1-attempt-1/log.txt"));
  CHECK(std::filesystem::exists(workdir() + "/s/trial-1-attempt-1/config.json"));
}

TEST_CASE("a crashing trial finishes failed with its last line in the error", "[runner]") {
  ProcessRunner runner(options(1));
  REQUIRE(runner.start(command_trial(2, "echo 'ValueError: bad lr' >&2; exit 3"), {}));
  auto f = finishes(run_all(runner));
  REQUIRE(f.size() == 1);
  CHECK(f[0].outcome == protocol::Outcome::kFailed);
  CHECK(f[0].error == "exited with status 3: ValueError: bad lr");
  CHECK(f[0].log_tail.find("ValueError: bad lr") != std::string::npos);
}

TEST_CASE("a trial that exits 0 without any metric is failed with a hint", "[runner]") {
  ProcessRunner runner(options(1));
  REQUIRE(runner.start(command_trial(3, "echo hi"), {}));
  auto f = finishes(run_all(runner));
  REQUIRE(f.size() == 1);
  CHECK(f[0].outcome == protocol::Outcome::kFailed);
  CHECK(f[0].error.find("HPO_METRIC") != std::string::npos);
}

TEST_CASE("stop ends a trial pruned or interrupted as asked", "[runner]") {
  ProcessRunner runner(options(2));
  REQUIRE(runner.start(command_trial(4, "echo 'HPO_METRIC {\"step\": 1, \"v\": 1}'; sleep 30"), {}));
  REQUIRE(runner.start(command_trial(5, "sleep 30"), {}));
  runner.poll();
  runner.stop("lease-4", StopReason::kPruned);
  runner.stop("lease-5", StopReason::kInterrupted);
  runner.stop("no-such-lease", StopReason::kPruned);
  auto f = finishes(run_all(runner, 3));
  REQUIRE(f.size() == 2);
  for (const auto& x : f) {
    CHECK(x.outcome ==
          (x.trial == 4 ? protocol::Outcome::kPruned : protocol::Outcome::kInterrupted));
  }
}

TEST_CASE(
    "a trial killed by SIGTERM from outside fails, but is interrupted once the agent is "
    "stopping too (a batch system's cancel signals every process of the job)",
    "[runner]") {
  // The trial's shell signals itself: the runner never sent it anything.
  auto outcome = [](bool agent_stopping, const std::string& signal) {
    ProcessRunner runner(options(1));
    if (agent_stopping) runner.agent_stopping();
    REQUIRE(runner.start(command_trial(
        6, "echo 'HPO_METRIC {\"step\": 1, \"v\": 1}'; kill -" + signal + " $$; sleep 5"), {}));
    auto f = finishes(run_all(runner, 5));
    REQUIRE(f.size() == 1);
    INFO(f[0].error);
    return f[0].outcome;
  };
  CHECK(outcome(false, "TERM") == protocol::Outcome::kFailed);
  CHECK(outcome(true, "TERM") == protocol::Outcome::kInterrupted);
  CHECK(outcome(true, "KILL") == protocol::Outcome::kInterrupted);
  // A crash is the trial's own, stopping or not.
  CHECK(outcome(true, "SEGV") == protocol::Outcome::kFailed);
}

TEST_CASE("a trial that cannot start is an error, and slots are limited", "[runner]") {
  ProcessRunner runner(options(1));
  auto bad = runner.start(command_trial(6, "train {missing}"), {});
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message.find("{missing}") != std::string::npos);
  CHECK(runner.running() == 0);
  REQUIRE(runner.start(command_trial(7, "sleep 30"), {}));
  auto full = runner.start(command_trial(8, "true"), {});
  REQUIRE_FALSE(full.has_value());
  CHECK(full.error().message.find("no free slot") != std::string::npos);
  runner.stop("lease-7", StopReason::kInterrupted);
  CHECK(finishes(run_all(runner, 3)).size() == 1);
  CHECK(runner.start(command_trial(8, "echo 'HPO_METRIC {\"v\": 1}'"), {}).has_value());
  CHECK(finishes(run_all(runner, 3)).size() == 1);
}
