// The `hpo` binary's top-level contract: help, version, exit codes.
#include <catch2/catch.hpp>

#include <array>
#include <cstdio>
#include <string>
#include <sys/wait.h>

namespace {

struct Run {
  int code;
  std::string out;
};

Run run(const std::string& args) {
  std::string cmd = std::string(HPO_BINARY) + " " + args + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  std::array<char, 4096> buf{};
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

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
