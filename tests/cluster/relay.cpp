#include "tests/cluster/relay.h"

#include <catch2/catch.hpp>

namespace hpo::cluster {

Relay::Relay(const std::string& ns, int listen_port, const std::string& to_address, int to_port,
             RelayOptions options) {
  auto relay = netbed::Relay::start(ns, listen_port, to_address, to_port, options);
  INFO((relay ? std::string() : relay.error().message));
  REQUIRE(relay);
  relay_ = std::move(*relay);
}

}  // namespace hpo::cluster
