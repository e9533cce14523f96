#include "scheduler/outbox.h"

#include "scheduler/log.h"

namespace hpo::scheduler {

void Outbox::push(std::string to, protocol::Message message) {
  queue_.emplace_back(std::move(to), std::move(message));
}

void Outbox::flush(zmq::socket_t& router, AgentRegistry& agents, double now) {
  for (auto& [to, message] : queue_) {
    if (auto s = protocol::send(router, message, to); !s) {
      log_line(s.error().message);
    } else {
      agents.sent(to, now);
    }
  }
  queue_.clear();
  for (const auto& id : agents.heartbeat_due(now)) {
    (void)protocol::send(router, protocol::Heartbeat{}, id);
    agents.sent(id, now);
  }
}

}  // namespace hpo::scheduler
