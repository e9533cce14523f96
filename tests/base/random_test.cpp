// Random names from the OS: their shape, and that no two are alike.
#include "base/random.h"

#include <catch2/catch.hpp>
#include <set>

TEST_CASE("random_hex gives two lower-case hex digits a byte and never the same twice",
          "[random]") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto r = hpo::random_hex(16);
    REQUIRE(r);
    REQUIRE(r->size() == 32);
    CHECK(r->find_first_not_of("0123456789abcdef") == std::string::npos);
    seen.insert(*r);
  }
  CHECK(seen.size() == 1000);
  auto none = hpo::random_hex(0);
  REQUIRE(none);
  CHECK(none->empty());
}
