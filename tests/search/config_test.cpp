// Canonical form and hash: equal configs hash equal whatever the key order
// or number type; different configs hash differently.
#include "search/config.h"

#include <catch2/catch.hpp>

using hpo::search::canonical;
using hpo::search::config_hash;
using nlohmann::json;

TEST_CASE("two equal configs hash equal whatever their key order") {
  json a = json::parse(
      R"({"solver": {"lr": 0.1, "optimizer": {"type": "sgd", "momentum": 0.9}}, "net": [1, 2]})");
  json b = json::parse(
      R"({"net": [1, 2], "solver": {"optimizer": {"momentum": 0.9, "type": "sgd"}, "lr": 0.1}})");
  CHECK(canonical(a) == canonical(b));
  CHECK(config_hash(a) == config_hash(b));
  CHECK(canonical(a) ==
        R"({"net":[1,2],"solver":{"lr":0.1,"optimizer":{"momentum":0.9,"type":"sgd"}}})");
}

TEST_CASE("an integral float and an integer are the same config") {
  CHECK(canonical(json::parse(R"({"units": 64.0, "x": -0.0})")) == R"({"units":64,"x":0})");
  CHECK(config_hash(json{{"units", 64}}) == config_hash(json{{"units", 64.0}}));
  CHECK(config_hash(json{{"units", 64u}}) == config_hash(json{{"units", 64}}));
}

TEST_CASE("floats print in the shortest form that reads back exactly") {
  CHECK(canonical(json(0.1)) == "0.1");
  CHECK(canonical(json(1e-7)) == "1e-07");
  CHECK(canonical(json(0.30000000000000004)) == "0.30000000000000004");
  CHECK(canonical(json::parse(R"(["a\"b", true, null])")) == R"(["a\"b",true,null])");
}

TEST_CASE("different configs hash differently and a hash is 16 hex digits") {
  auto h1 = config_hash(json{{"lr", 0.1}});
  auto h2 = config_hash(json{{"lr", 0.10000000000000002}});
  auto h3 = config_hash(json{{"net", json::array({1, 2})}});
  auto h4 = config_hash(json{{"net", json::array({2, 1})}});
  CHECK(h1 != h2);
  CHECK(h3 != h4);
  CHECK(h1.size() == 16);
  CHECK(h1.find_first_not_of("0123456789abcdef") == std::string::npos);
  // Pinned: the hash is stored in databases, so it must never change.
  CHECK(config_hash(json::object()) == "08f44b07b5901a25");
}
