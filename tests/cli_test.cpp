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
