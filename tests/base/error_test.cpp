#include "base/error.h"

#include <catch2/catch.hpp>

TEST_CASE("an error keeps its code, and fail() without one means invalid input") {
  hpo::Result<int> plain = hpo::fail("s.json: space.x: bad");
  REQUIRE_FALSE(plain.has_value());
  CHECK(plain.error().code == hpo::ErrorCode::kInvalidInput);
  CHECK(plain.error().message == "s.json: space.x: bad");

  hpo::Result<int> io = hpo::fail(hpo::ErrorCode::kIo, "disk full");
  CHECK(io.error().code == hpo::ErrorCode::kIo);

  // Re-coding keeps the message: a layer says what a callee's failure means to its caller.
  hpo::Result<int> recoded = hpo::fail(hpo::ErrorCode::kRuntime, plain.error());
  CHECK(recoded.error().code == hpo::ErrorCode::kRuntime);
  CHECK(recoded.error().message == plain.error().message);
  CHECK(hpo::to_string(hpo::ErrorCode::kBusy) == "busy");
}
