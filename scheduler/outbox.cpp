#include "scheduler/outbox.h"

#include "scheduler/log.h"

namespace hpo::scheduler {

void Outbox::push(std::string to, protocol::Message message) {
  queue_.emplace_back(std::move(to), std::move(message));
}

bool Outbox::push_error(std::string to, protocol::ErrorReply error, double now, int max_per_s) {
  if (error_window_ < 0 || now - error_window_ >= 1.0) {
    if (errors_dropped_ > 0) {
      log_line("dropped " + std::to_string(errors_dropped_) + " ERROR answer(s) over the cap of " +
               std::to_string(max_per_s) + " per second");
    }
    error_window_ = now;
    errors_in_window_ = 0;
    errors_dropped_ = 0;
  }
  if (errors_in_window_ >= max_per_s) {
    ++errors_dropped_;
    return false;
  }
  ++errors_in_window_;
  push(std::move(to), std::move(error));
  return true;
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
