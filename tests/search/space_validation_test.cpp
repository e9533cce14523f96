// Every validation error of the space language gives one message that names
// the file and the JSON path; none throws.
#include "tests/search/helpers.h"

using hpo::search::test::space_error;
using nlohmann::json;

namespace {

std::string error_of(const char* text) { return space_error(json::parse(text)); }

}  // namespace

TEST_CASE("low >= high inside a nested choice names the option's path") {
  CHECK(error_of(R"({"optimizer": {"type": "choice", "options": [
      {"type": "sgd"}, {"type": "adam", "beta1": {"type": "float", "low": 0.99, "high": 0.9}}]}})") ==
        "test.json: space.optimizer.options[1].beta1.low: must be < high (got 0.99 >= 0.9)");
  CHECK(error_of(R"({"n": {"type": "int", "low": 5, "high": 3}})") ==
        "test.json: space.n.low: must be <= high (got 5 > 3)");
}

TEST_CASE("an unknown key in a parameter is an error") {
  CHECK(error_of(R"({"lr": {"type": "float", "low": 0, "hi": 1}})") ==
        "test.json: space.lr.hi: unknown key for a float parameter (allowed: high, log, low, step, "
        "when)");
  CHECK(error_of(R"({"c": {"type": "choice", "values": [1], "weights": [1]}})") ==
        "test.json: space.c.weights: unknown key for a choice parameter (allowed: options, values, "
        "when)");
}

TEST_CASE("a misspelt parameter type is an error, not a silent group") {
  CHECK(error_of(R"({"lr": {"type": "flaot", "low": 0, "high": 1}})") ==
        "test.json: space.lr.type: unknown parameter type \"flaot\" (kinds: float, int, choice, "
        "const, blocks)");
}

TEST_CASE("a wrong type for a field is an error") {
  CHECK(error_of(R"({"lr": {"type": "float", "low": "0", "high": 1}})") ==
        "test.json: space.lr.low: must be a number (got \"0\")");
  CHECK(error_of(R"({"lr": {"type": "float", "low": 0, "high": 1, "log": "yes"}})") ==
        "test.json: space.lr.log: must be true or false (got \"yes\")");
  CHECK(error_of(R"({"n": {"type": "int", "low": 0.5, "high": 4}})") ==
        "test.json: space.n.low: must be an integer (got 0.5)");
  CHECK(error_of(R"({"c": {"type": "choice", "values": "abc"}})") ==
        "test.json: space.c.values: must be an array (got \"abc\")");
  CHECK(hpo::search::test::space_error(json::array()) ==
        "test.json: space: must be an object, got []");
}

TEST_CASE("a log range that includes 0 is an error") {
  CHECK(error_of(R"({"lr": {"type": "float", "low": 0, "high": 1, "log": true}})") ==
        "test.json: space.lr.low: a log scale needs low > 0 (got 0)");
  CHECK(error_of(R"({"u": {"type": "int", "low": -4, "high": 8, "log": true}})") ==
        "test.json: space.u.low: a log scale needs low > 0 (got -4)");
}

TEST_CASE("a bad step is an error") {
  CHECK(error_of(R"({"d": {"type": "float", "low": 0, "high": 1, "step": 0}})") ==
        "test.json: space.d.step: must be > 0 (got 0)");
  CHECK(error_of(R"({"d": {"type": "float", "low": 0.1, "high": 1, "log": true, "step": 0.1}})") ==
        "test.json: space.d.step: a step cannot be combined with a log scale");
  CHECK(error_of(R"({"n": {"type": "int", "low": 0, "high": 4, "step": 1.5}})") ==
        "test.json: space.n.step: must be an integer (got 1.5)");
}

TEST_CASE("an empty choice is an error") {
  CHECK(error_of(R"({"c": {"type": "choice", "values": []}})") ==
        "test.json: space.c.values: must not be empty");
  CHECK(error_of(R"({"c": {"type": "choice", "options": []}})") ==
        "test.json: space.c.options: must not be empty");
  CHECK(error_of(R"({"c": {"type": "choice"}})") ==
        "test.json: space.c: a choice needs 'values' (a list) or 'options' (a list of sub-spaces)");
  CHECK(error_of(R"({"c": {"type": "choice", "options": [{"a": 1}, 3]}})") ==
        "test.json: space.c.options[1]: an option must be an object (a sub-space), got 3");
}

TEST_CASE("bad blocks and consts are errors") {
  CHECK(error_of(R"({"b": {"type": "blocks", "min": 3, "max": 2, "block": {}}})") ==
        "test.json: space.b.min: must be <= max (got 3 > 2)");
  CHECK(error_of(R"({"b": {"type": "blocks", "max": 2}})") ==
        "test.json: space.b: blocks need a 'block' (the sub-space of one block)");
  CHECK(
      error_of(
          R"({"b": {"type": "blocks", "max": 2, "block": {"u": {"type": "int", "low": 2, "high": 1}}}})") ==
      "test.json: space.b.block.u.low: must be <= high (got 2 > 1)");
  CHECK(error_of(R"({"k": {"type": "const"}})") == "test.json: space.k: a const needs a 'value'");
}

TEST_CASE("a condition naming a missing parameter is an error") {
  CHECK(error_of(R"({"g": {"type": "float", "low": 0, "high": 1, "when": {"policy": "step"}}})") ==
        "test.json: space.g.when: 'policy' names a missing parameter");
  CHECK(error_of(R"({"opt": {"type": "choice", "options": [{"type": "sgd"}]},
                     "b": {"type": "float", "low": 0, "high": 1, "when": {"opt.beta": 1}}})") ==
        "test.json: space.b.when: 'opt.beta' names a missing parameter");
  CHECK(error_of(R"({"g": {"type": "float", "low": 0, "high": 1, "when": {".x": 1}}})") ==
        "test.json: space.g.when: '.x' is relative (starts with '.') but the parameter is not "
        "inside a block");
}

TEST_CASE("a cycle of conditions is an error") {
  CHECK(error_of(R"({"a": {"type": "choice", "values": [1, 2], "when": {"b": 1}},
                     "b": {"type": "choice", "values": [1, 2], "when": {"a": 1}}})") ==
        "test.json: space.a.when: conditions form a cycle: 'a' -> 'b' -> 'a'");
  CHECK(error_of(R"({"a": {"type": "choice", "values": [1], "when": {"a": 1}}})") ==
        "test.json: space.a.when: conditions form a cycle: 'a' is this parameter or encloses or is "
        "inside it");
}

TEST_CASE("an error message without a file names only the path") {
  auto s = hpo::search::Space::parse(json::parse(R"({"x": {"type": "int", "low": 1}})"), "");
  REQUIRE(!s);
  CHECK(s.error().message == "space.x: missing 'high'");
}
