#include "base/json.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "tests/support/temp_dir.h"

using Catch::Matchers::Contains;
using Catch::Matchers::EndsWith;
using Catch::Matchers::Equals;
using Catch::Matchers::StartsWith;

TEST_CASE(
    "bounded JSON: a plain document parses, and a syntax error names source, line and column") {
  auto ok = hpo::parse_json(R"({"a": [1, 2, {"b": "x]"}]})", "t.json");
  REQUIRE(ok.has_value());
  CHECK((*ok)["a"][2]["b"] == "x]");

  auto bad = hpo::parse_json("{\n  \"a\": 1,\n  \"b\" 2\n}", "t.json");
  REQUIRE_FALSE(bad.has_value());
  CHECK_THAT(bad.error().message, StartsWith("t.json:3:7: invalid JSON: "));
  CHECK_THAT(bad.error().message, EndsWith(" (at /b)"));
  CHECK(bad.error().code == hpo::ErrorCode::kInvalidInput);

  // The JSON path names the value being read: array indexes and escaped keys (RFC 6901).
  auto in_array = hpo::parse_json(R"({"p": [{"x": 1}, {"a/b": tru}]})", "t.json");
  REQUIRE_FALSE(in_array.has_value());
  CHECK_THAT(in_array.error().message, EndsWith(" (at /p/1/a~1b)"));
  auto top = hpo::parse_json("nope", "");
  REQUIRE_FALSE(top.has_value());
  CHECK_THAT(top.error().message, StartsWith("1:2: invalid JSON: "));
  CHECK_THAT(top.error().message, !Contains("(at"));
}

TEST_CASE("bounded JSON: nesting past the depth limit is refused without recursion") {
  // 200,000 levels would overflow the stack of a recursive reader.
  for (std::string opener : {"[", "{\"a\":"}) {
    std::string deep;
    for (int i = 0; i < 200000; ++i) deep += opener;
    auto r = hpo::parse_json(deep, "deep.json");
    REQUIRE_FALSE(r.has_value());
    CHECK_THAT(r.error().message,
               Equals("deep.json:1:" + std::to_string(129 * opener.size() - opener.size() + 1) +
                      ": nested deeper than 128 levels"));
  }
  // Exactly at the limit is fine; brackets inside strings and comments do not count.
  std::string at_limit(128, '[');
  at_limit += std::string(128, ']');
  CHECK(hpo::parse_json(at_limit, "x").has_value());
  std::string text = "{\"s\": \"" + std::string(500, '[') + "\"}";
  CHECK(hpo::parse_json(text, "x").has_value());
  hpo::JsonLimits comments;
  comments.allow_comments = true;
  CHECK(hpo::parse_json("// " + std::string(500, '{') + "\n/* " + std::string(500, '[') + " */ 1",
                        "x", comments)
            .has_value());
}

TEST_CASE("bounded JSON: a number that overflows a double is an error, not an abort") {
  auto r = hpo::parse_json(R"({"a": 1e99999})", "big.json");
  REQUIRE_FALSE(r.has_value());
  REQUIRE_FALSE(r.has_value());
  CHECK_THAT(r.error().message,
             Equals("big.json:1:7: number overflow parsing '1e99999' (at /a)"));
}

TEST_CASE("bounded JSON: a text over the size limit is refused before parsing") {
  hpo::JsonLimits small;
  small.max_bytes = 1000;
  std::string text = std::string(2000, ' ') + "{}";
  auto r = hpo::parse_json(text, "ws.json", small);
  REQUIRE_FALSE(r.has_value());
  CHECK_THAT(r.error().message, Equals("ws.json: too large: 2002 bytes (the limit is 1000)"));
}

TEST_CASE(
    "bounded JSON: files: missing is not-found, too large is refused, comments when allowed") {
  const hpo::test::TempDir dir("json-test");
  auto missing = hpo::read_json_file(dir / "nope.json");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code == hpo::ErrorCode::kNotFound);
  CHECK_THAT(missing.error().message, Contains("nope.json: cannot read: "));

  auto path = dir / "c.json";
  std::ofstream(path) << "{\"a\": 1 // one\n}";
  CHECK_FALSE(hpo::read_json_file(path).has_value());
  hpo::JsonLimits comments;
  comments.allow_comments = true;
  auto with = hpo::read_json_file(path, comments);
  REQUIRE(with.has_value());
  CHECK((*with)["a"] == 1);

  comments.max_bytes = 4;
  auto big = hpo::read_json_file(path, comments);
  REQUIRE_FALSE(big.has_value());
  CHECK_THAT(big.error().message, Contains("too large"));
}
