// The `hpo` binary's top-level contract: help, version, exit codes.
#include <catch2/catch.hpp>
#include <string>

#include "tests/support/process.h"

namespace {

hpo::test::RunResult run(const std::string& args) { return hpo::test::run_hpo(args); }

}  // namespace

TEST_CASE("hpo --help lists every command and exits 0") {
  auto r = run("--help");
  CHECK(r.code == 0);
  for (const char* c : {"run", "scheduler", "agent", "train", "space", "leaderboard", "studies"}) {
    CHECK(r.out.find(std::string("  ") + c + " ") != std::string::npos);
  }
}

TEST_CASE("an unknown command is a usage error with exit code 2") {
  CHECK(run("frobnicate").code == 2);
  CHECK(run("").code == 2);
}

namespace {

// Both streams in `out`, for the notes on stderr.
hpo::test::RunResult run_both(const std::string& args) {
  return hpo::test::run_hpo(args + " 2>&1");
}

// cxxopts prints an option as "--name arg" or "--name   description".
bool lists_option(const std::string& help, const std::string& name) {
  return help.find("--" + name + " ") != std::string::npos;
}

}  // namespace

TEST_CASE("--help shows each duration and slot option under its one name, not the old ones") {
  auto agent = run("agent --help");
  CHECK(agent.code == 0);
  CHECK(lists_option(agent.out, "shutdown-grace-seconds"));
  CHECK(lists_option(agent.out, "kill-grace-seconds"));
  CHECK(lists_option(agent.out, "slots-per-gpu"));
  CHECK(lists_option(agent.out, "cpu-slots"));
  CHECK_FALSE(lists_option(agent.out, "grace-ms"));
  CHECK_FALSE(lists_option(agent.out, "kill-grace-ms"));
  for (const char* command : {"scheduler", "resume", "run"}) {
    INFO(command);
    auto r = run(std::string(command) + " --help");
    CHECK(r.code == 0);
    CHECK(lists_option(r.out, "shutdown-grace-seconds"));
    CHECK(lists_option(r.out, "recovery-seconds"));
    CHECK_FALSE(lists_option(r.out, "grace-seconds"));
  }
  auto hpo_run = run("run --help");
  CHECK(lists_option(hpo_run.out, "slots-per-gpu"));
  CHECK(lists_option(hpo_run.out, "cpu-slots"));
  CHECK_FALSE(lists_option(hpo_run.out, "slots"));
}

TEST_CASE("an old option spelling is still accepted, with a one-line deprecation note") {
  auto agent = run_both("agent --grace-ms 1500 --kill-grace-ms 500");  // no --connect: exit 2
  CHECK(agent.code == 2);
  CHECK(agent.out.find("--connect is required") != std::string::npos);
  CHECK(agent.out.find("hpo agent: --grace-ms is deprecated; use --shutdown-grace-seconds") !=
        std::string::npos);
  CHECK(agent.out.find("hpo agent: --kill-grace-ms is deprecated; use --kill-grace-seconds") !=
        std::string::npos);
  auto scheduler = run_both("scheduler --grace-seconds 3");  // no --db: exit 2
  CHECK(scheduler.code == 2);
  CHECK(scheduler.out.find("--db is required") != std::string::npos);
  CHECK(scheduler.out.find("hpo scheduler: --grace-seconds is deprecated; use "
                           "--shutdown-grace-seconds") != std::string::npos);
  auto hpo_run = run_both("run --slots 2");  // no study file: exit 2
  CHECK(hpo_run.code == 2);
  CHECK(hpo_run.out.find("hpo run: --slots is deprecated; use --slots-per-gpu") !=
        std::string::npos);
}

TEST_CASE("an old spelling's value reaches the new option, milliseconds read as seconds") {
  // A negative duration is refused under the new name, quoting the value it was read as.
  const std::string agent = "agent --connect tcp://127.0.0.1:9 --gpus none ";
  auto grace = run_both(agent + "--grace-ms=-1500");
  CHECK(grace.code == 2);
  CHECK(grace.out.find("--shutdown-grace-seconds must be >= 0 (got -1.5)") != std::string::npos);
  auto kill = run_both(agent + "--kill-grace-ms=-250");
  CHECK(kill.code == 2);
  CHECK(kill.out.find("--kill-grace-seconds must be >= 0 (got -0.25)") != std::string::npos);
  // The database's directory does not exist: nothing is opened before the options are read.
  auto scheduler = run_both("scheduler --db /nonexistent-hpo-dir/s.db --grace-seconds=-2");
  CHECK(scheduler.code == 2);
  CHECK(scheduler.out.find("--shutdown-grace-seconds must be >= 0 (got -2)") != std::string::npos);
  auto hpo_run = run_both("run " HPO_SOURCE_DIR
                          "/experiments/fashion-mnist-cnn.json --db /nonexistent-hpo-dir/r.db "
                          "--slots 0");
  CHECK(hpo_run.code == 2);
  CHECK(hpo_run.out.find("--slots-per-gpu >= 1") != std::string::npos);
}

TEST_CASE("the new spellings are read") {
  const std::string agent = "agent --connect tcp://127.0.0.1:9 --gpus none ";
  auto grace = run_both(agent + "--shutdown-grace-seconds=-2");
  CHECK(grace.code == 2);
  CHECK(grace.out.find("--shutdown-grace-seconds must be >= 0 (got -2)") != std::string::npos);
  CHECK(grace.out.find("deprecated") == std::string::npos);
  auto kill = run_both(agent + "--kill-grace-seconds=-0.5");
  CHECK(kill.code == 2);
  CHECK(kill.out.find("--kill-grace-seconds must be >= 0 (got -0.5)") != std::string::npos);
  auto scheduler = run_both("scheduler --db /nonexistent-hpo-dir/s.db --shutdown-grace-seconds=-1");
  CHECK(scheduler.code == 2);
  CHECK(scheduler.out.find("--shutdown-grace-seconds must be >= 0 (got -1)") != std::string::npos);
  auto hpo_run = run_both("run " HPO_SOURCE_DIR
                          "/experiments/fashion-mnist-cnn.json --db /nonexistent-hpo-dir/r.db "
                          "--slots-per-gpu 0");
  CHECK(hpo_run.code == 2);
  CHECK(hpo_run.out.find("--slots-per-gpu >= 1") != std::string::npos);
}
