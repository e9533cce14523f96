// base/base64.h: RFC 4648's test vectors, any bytes round-trip, and strict decoding.
#include "base/base64.h"

#include <catch2/catch.hpp>

namespace hpo {
namespace {

TEST_CASE("base64 encodes RFC 4648's vectors and decodes them back", "[base][base64]") {
  const std::vector<std::pair<std::string, std::string>> vectors = {
      {"", ""},         {"f", "Zg=="},        {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, coded] : vectors) {
    CHECK(base64_encode(plain) == coded);
    auto back = base64_decode(coded);
    REQUIRE(back);
    CHECK(*back == plain);
  }
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n <= all.size(); n += 37) {
    auto back = base64_decode(base64_encode(all.substr(0, n)));
    REQUIRE(back);
    CHECK(*back == all.substr(0, n));
  }
}

TEST_CASE("base64 decoding is strict and says where it stopped", "[base][base64]") {
  auto says = [](const std::string& text) {
    auto r = base64_decode(text);
    REQUIRE_FALSE(r);
    return r.error().message;
  };
  CHECK(says("Zm9") == "base64: length 3 is not a multiple of 4");
  CHECK(says("Zm9v!m9v") == "base64: bad character at offset 4");
  CHECK(says("Zg==Zm9v") == "base64: bad character at offset 2");  // padding mid-stream
  CHECK(says("Z===") == "base64: bad character at offset 1");
  CHECK(says("Zm=v") == "base64: bad character at offset 2");
  CHECK(says("Zh==") == "base64: non-zero bits after the last byte at offset 0");
  CHECK(says("Zm9 ") == "base64: bad character at offset 3");
}

}  // namespace
}  // namespace hpo
