// The relay of tests/netbed/relay.h for the Catch tests: one that cannot start fails the test.
#pragma once

#include <memory>
#include <string>

#include "tests/netbed/relay.h"

namespace hpo::cluster {

using netbed::RelayOptions;

class Relay {
 public:
  // Listening on 127.0.0.1:<listen_port> in namespace `ns` when it returns (REQUIRE).
  Relay(const std::string& ns, int listen_port, const std::string& to_address, int to_port,
        RelayOptions options = {});

  int connections() const { return relay_->connections(); }  // accepted and forwarded so far
  int cuts() const { return relay_->cuts(); }                // connections the relay cut

 private:
  std::unique_ptr<netbed::Relay> relay_;
};

}  // namespace hpo::cluster
