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

  // Sends everything queued on `router`, then a HEARTBEAT to each agent sent
  // nothing for a heartbeat; records in `agents` when each was sent to
  // (`now`, monotonic seconds).
  void flush(zmq::socket_t& router, AgentRegistry& agents, double now);

 private:
  std::vector<std::pair<std::string, protocol::Message>> queue_;
};

}  // namespace hpo::scheduler
