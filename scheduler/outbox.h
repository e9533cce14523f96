// The replies of one loop turn. They are held until the turn's store
// transaction commits and only then sent (DaemonOptions contract: an agent
// never holds a lease the file does not know); with them go the scheduler's
// heartbeats to every agent sent nothing for a heartbeat interval.
//
// Contract
// - Messages go out in the order they were pushed.
// - A message that cannot be sent (the peer is gone, its queue is full) is
//   logged and dropped: the agent's liveness, or its re-sent FINISH, deals
//   with it. flush() never fails.
//
// Threads: owned and used by the scheduler's one loop thread.
#pragma once

#include <string>
#include <utility>
#include <vector>
#include <zmq.hpp>

#include "scheduler/agents.h"
#include "scheduler/protocol.h"

namespace hpo::scheduler {

class Outbox {
 public:
  // Queues `message` for the peer with routing id `to`.
  void push(std::string to, protocol::Message message);
  // Queues `error` for `to`, unless `max_per_s` such
  // answers were queued already in the current one-second window (`now`,
  // monotonic seconds): an answer to a bad message or an unknown peer must not
  // let a flood of them fill the peers' queues. Dropped answers are counted
  // and logged once per window. Returns whether it was queued.
  bool push_error(std::string to, protocol::ErrorReply error, double now, int max_per_s);
  // How many messages are queued; drop_after(n) forgets those queued after the first n (the
  // replies of a message whose handling was rolled back).
  std::size_t size() const { return queue_.size(); }
  void drop_after(std::size_t n) {
    if (n < queue_.size()) queue_.resize(n);
  }

  // Sends everything queued on `router`, then a HEARTBEAT to each agent sent
  // nothing for a heartbeat; records in `agents` when each was sent to
  // (`now`, monotonic seconds).
  void flush(zmq::socket_t& router, AgentRegistry& agents, double now);

 private:
  std::vector<std::pair<std::string, protocol::Message>> queue_;
  double error_window_ = -1;  // start of the current second of ERROR answers
  int errors_in_window_ = 0;  // queued in it
  long errors_dropped_ = 0;   // dropped in it
};

}  // namespace hpo::scheduler
