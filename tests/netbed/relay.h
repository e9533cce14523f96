// A user-space TCP relay with latency and cuts, for the bed's "latency and
// loss" scenario (tests/cluster) and the latency benchmark (experiments/):
// the kernel here has no netem qdisc, so the delay is added by a relay
// between an agent host and the scheduler. No Catch: failures are values.
//
// The relay listens on 127.0.0.1:<listen_port> inside a host's network
// namespace (its thread joins it with setns) and forwards every connection to
// <to_address>:<to_port>, reached from that namespace, i.e. over the bed.
// Each chunk read is delivered after delay +- jitter (uniform), never before
// an earlier chunk of the same direction: order is kept. Each connection is
// cut (both sides closed) after a lifetime drawn uniformly from
// [min_life, max_life]; the agent's ZeroMQ socket then reconnects.
//
// Threads: start() and the destructor from one thread; connections() and cuts()
// from any. The relay's own thread does the forwarding.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "base/error.h"

namespace hpo::netbed {

struct RelayOptions {
  std::chrono::milliseconds delay{20};       // one way, each direction
  std::chrono::milliseconds jitter{5};       // +- around delay
  std::chrono::milliseconds min_life{1500};  // of a connection, before the relay cuts it
  std::chrono::milliseconds max_life{3000};  // {0}: never cut
  unsigned seed = 1;
};

class Relay {
 public:
  // Starts the relay's thread; it is listening when start() returns. Errors: the namespace
  // cannot be joined or the port cannot be had (the message names both).
  static Result<std::unique_ptr<Relay>> start(const std::string& ns, int listen_port,
                                              const std::string& to_address, int to_port,
                                              RelayOptions options = {});
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  int connections() const { return connections_; }  // accepted and forwarded so far
  int cuts() const { return cuts_; }                // connections the relay cut

 private:
  Relay(const std::string& to_address, int to_port, RelayOptions options);
  void run(int listener);
  std::string to_address_;
  int to_port_;
  RelayOptions options_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> cuts_{0};
  std::thread thread_;
};

}  // namespace hpo::netbed
