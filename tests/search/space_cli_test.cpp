// `hpo space validate` and `hpo space sample`: exit codes, messages, formats.
#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/search/helpers.h"
#include "tests/support/process.h"

namespace {

// `hpo args`; stderr joins stdout when asked for.
hpo::test::RunResult run(const std::string& args, bool with_stderr = false) {
  return hpo::test::run_hpo(args + (with_stderr ? " 2>&1" : ""));
}

std::string experiment(const char* name) {
  return std::string(HPO_SOURCE_DIR) + "/experiments/" + name;
}

std::string temp_file(const std::string& text) { return hpo::search::test::temp_json_file(text); }

}  // namespace

TEST_CASE("hpo space validate accepts the shipped studies and counts parameters") {
  auto r = run("space validate " + experiment("hartmann6.json"));
  CHECK(r.code == 0);
  CHECK(r.out == "ok: 6 parameters (study hartmann6, sampler tpe)\n");
  auto bare = temp_file(R"({"x": {"type": "int", "low": 1, "high": 3}})");
  r = run("space validate " + bare);
  std::remove(bare.c_str());
  CHECK(r.code == 0);
  CHECK(r.out == "ok: 1 parameters\n");
}

TEST_CASE("hpo space validate reports a bad space with its path and exits 2") {
  auto path = temp_file(R"({"lr": {"type": "float", "low": 1, "high": 0.1}})");
  auto r = run("space validate " + path, true);
  std::remove(path.c_str());
  CHECK(r.code == 2);
  CHECK(r.out == "hpo space validate: " + path + ": space.lr.low: must be < high (got 1 >= 0.1)\n");
  CHECK(run("space validate /nonexistent.json").code == 2);
  CHECK(run("space validate").code == 2);
  CHECK(run("space frobnicate x").code == 2);
  CHECK(run("space validate --help").code == 0);
}

TEST_CASE("hpo space sample prints N configs as JSON, the same for the same seed") {
  auto r =
      run("space sample " + experiment("fashion-mnist-cnn.json") + " -n 4 --format json --seed 3");
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j.size() == 4);
  CHECK(j[0]["config"]["net"]["conv"].is_array());
  CHECK(j[0]["hash"].get<std::string>().size() == 16);
  CHECK(run("space sample " + experiment("fashion-mnist-cnn.json") + " -n 4 --format json --seed 3")
            .out == r.out);
  CHECK(run("space sample " + experiment("fashion-mnist-cnn.json") + " -n 4 --format json --seed 4")
            .out != r.out);
}

TEST_CASE("hpo space sample prints a table and stops when the grid is exhausted") {
  auto path = temp_file(
      R"({"a": {"type": "choice", "values": [1, 2]}, "b": {"type": "choice", "values": ["x", "y"]}})");
  auto r = run("space sample " + path + " -n 10 --sampler grid");
  std::remove(path.c_str());
  CHECK(r.code == 0);
  // Header, then the 4 grid points in order, then the sampler stops.
  std::vector<std::string> lines;
  for (std::size_t at = 0, nl; (nl = r.out.find('\n', at)) != std::string::npos; at = nl + 1) {
    lines.push_back(r.out.substr(at, nl - at));
  }
  REQUIRE(lines.size() == 5);
  CHECK(lines[0] == "number  hash              a  b");
  CHECK(lines[1].starts_with("0       "));
  CHECK(lines[1].ends_with("  1  x"));
  CHECK(lines[2].ends_with("  1  y"));
  CHECK(lines[3].ends_with("  2  x"));
  CHECK(lines[4].ends_with("  2  y"));
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 5);
  CHECK(run("space sample " + experiment("branin.json") + " -n 2 --sampler bayes").code == 2);
  CHECK(run("space sample " + experiment("branin.json") + " -n 2 --format xml").code == 2);
}
