// Why a client's connection to the scheduler does not get through: a ZeroMQ socket monitor
// on the client's socket, read between polls. ZeroMQ itself only retries silently; a user
// with a wrong key deserves a sentence that names it.
//
// Contract
// - Attach before connect(). read() never blocks; it returns one sentence per failed
//   handshake, saying the likely cause: the scheduler refused this client's key (ZAP), the
//   scheduler's key is not the one pinned (the server closes the connection mid-handshake),
//   or one side uses keys and the other does not (mechanism mismatch).
// - failures() counts failed handshakes since the last one that succeeded; succeeded() says
//   whether any ever did.
//
// Threads: the client's thread only, like the socket it watches.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "base/error.h"

namespace hpo::scheduler {

class HandshakeWatch {
 public:
  // `curve`: whether the client was given keys (for the wording). `context` and `socket`
  // outlive the watch.
  static Result<std::unique_ptr<HandshakeWatch>> attach(zmq::context_t& context,
                                                        zmq::socket_t& socket, bool curve);
  ~HandshakeWatch();

  void* socket() { return monitor_.handle(); }  // for zmq::poll (POLLIN)
  std::vector<std::string> read();
  int failures() const { return failures_; }
  bool succeeded() const { return succeeded_; }

 private:
  HandshakeWatch(zmq::context_t& context, zmq::socket_t& socket, bool curve);
  zmq::socket_t& watched_;
  zmq::socket_t monitor_;
  bool curve_;
  bool connected_ = false;  // TCP up, handshake not yet done
  int failures_ = 0;
  bool succeeded_ = false;
};

// What a client that reconnects (a new socket and watch each time) remembers of its
// handshakes: the failures in a row across watches, and which failure lines are news.
class HandshakeHistory {
 public:
  // Reads `watch`; returns the lines worth logging (a new reason, or the same after 30 s).
  std::vector<std::string> update(HandshakeWatch& watch);
  int failures() const { return failures_; }
  const std::string& last() const { return last_; }

 private:
  int failures_ = 0;
  std::string last_;
  std::chrono::steady_clock::time_point logged_{};
};

}  // namespace hpo::scheduler
