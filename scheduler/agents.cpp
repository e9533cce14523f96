#include "scheduler/agents.h"

#include <algorithm>

namespace hpo::scheduler {

AgentRegistry::AgentRegistry(double heartbeat_s, int liveness)
    : heartbeat_s_(heartbeat_s), liveness_(liveness) {}

Agent* AgentRegistry::find(const std::string& routing_id) {
  auto it = agents_.find(routing_id);
  return it == agents_.end() ? nullptr : &it->second;
}

std::string AgentRegistry::routing_of(const std::string& name) const {
  auto n = names_.find(name);
  return n == names_.end() ? std::string() : n->second;
}

namespace {

std::string process_key(const Agent& a) { return a.name + "/" + std::to_string(a.pid); }

}  // namespace

std::string AgentRegistry::refusal(const std::string& routing_id, const std::string& name,
                                   const std::string& host, std::int64_t pid,
                                   std::size_t max_agents) const {
  if (auto it = agents_.find(routing_id); it != agents_.end()) {
    if (it->second.name == name) return "";
    return "this connection joined as agent '" + it->second.name +
           "'; another name needs another connection";
  }
  if (auto n = names_.find(name); n != names_.end()) {
    const Agent& other = agents_.at(n->second);
    if (other.host == host && other.pid == pid) return "";
    return "agent name '" + name + "' is taken by a connected agent (host " + other.host +
           ", pid " + std::to_string(other.pid) +
           "); give this one another name, or wait until the other has been silent for " +
           std::to_string(window()) + " s";
  }
  if (agents_.size() >= max_agents) {
    return "too many agents connected (the limit is " + std::to_string(max_agents) + ")";
  }
  return "";
}

Agent& AgentRegistry::join(const std::string& routing_id, const std::string& name, int slots,
                           std::int64_t leases, double now, std::int64_t pid) {
  Agent a;
  a.routing_id = routing_id;
  a.name = name;
  a.pid = pid;
  if (auto d = drained_.find(process_key(a)); d != drained_.end()) a.drained = d->second;
  a.slots = slots;
  a.leases = leases;
  a.last_heard = now;
  a.last_sent = now;
  a.free = 0;  // until READY
  Agent& stored = agents_[routing_id] = std::move(a);
  names_[name] = routing_id;
  return stored;
}

void AgentRegistry::remove(const std::string& routing_id) {
  auto it = agents_.find(routing_id);
  if (it == agents_.end()) return;
  auto n = names_.find(it->second.name);
  if (n != names_.end() && n->second == routing_id) names_.erase(n);
  agents_.erase(it);
}

void AgentRegistry::drain(Agent& a, const std::string& why) {
  a.drained = why;
  a.free = 0;
  drained_[process_key(a)] = why;
}

void AgentRegistry::ready(Agent& a, std::int64_t free_slots, bool draining) {
  a.stopping = draining;
  // A draining agent wants no more work, whatever it says is free; a drained one gets none.
  a.free = draining || !a.drained.empty()
               ? 0
               : std::max<std::int64_t>(0, std::min<std::int64_t>(free_slots, a.slots - a.leases));
}

void AgentRegistry::leased(Agent& a) {
  --a.free;
  ++a.leases;
}

void AgentRegistry::released(Agent& a) {
  --a.leases;
  if (!a.stopping && a.drained.empty())
    a.free = std::min<std::int64_t>(a.free + 1, a.slots - a.leases);
}

std::vector<std::string> AgentRegistry::silent(double now) const {
  std::vector<std::string> lost;
  for (const auto& [id, a] : agents_) {
    if (now - a.last_heard > window()) lost.push_back(id);
  }
  return lost;
}

std::vector<Agent*> AgentRegistry::with_free_slots() {
  std::vector<Agent*> free;
  for (auto& [id, a] : agents_) {
    if (a.free > 0) free.push_back(&a);
  }
  return free;
}

std::vector<std::string> AgentRegistry::heartbeat_due(double now) const {
  std::vector<std::string> due;
  for (const auto& [id, a] : agents_) {
    if (now - a.last_sent >= heartbeat_s_) due.push_back(id);
  }
  return due;
}

void AgentRegistry::sent(const std::string& routing_id, double now) {
  if (auto it = agents_.find(routing_id); it != agents_.end()) it->second.last_sent = now;
}

std::vector<const Agent*> AgentRegistry::heard_since(double since) const {
  std::vector<const Agent*> out;
  for (const auto& [id, a] : agents_) {
    if (a.last_heard >= since) out.push_back(&a);
  }
  return out;
}

std::vector<std::string> AgentRegistry::names() const {
  std::vector<std::string> out;
  out.reserve(names_.size());
  for (const auto& [name, id] : names_) out.push_back(name);
  return out;
}

double AgentRegistry::next_deadline(double now) const {
  double next = now + heartbeat_s_;
  for (const auto& [id, a] : agents_) {
    next = std::min(next, a.last_sent + heartbeat_s_);
    next = std::min(next, a.last_heard + window() + 1e-3);
  }
  return next;
}

}  // namespace hpo::scheduler
