// The agents the scheduler knows: who is connected on which ROUTER routing id,
// how many slots each has and how many it may still be given, and when each
// was last heard from and last sent to (the ZeroMQ guide's liveness counters).
//
// Contract
// - An agent is keyed by the routing id of the connection it said HELLO on;
//   its name (from HELLO) maps to the latest such connection. An agent that
//   reconnects shows up under a new routing id with the same name.
// - Slots: `free` is what READY allowed minus what was leased since, never
//   more than slots - leases; a draining agent (READY draining) gets no free
//   slot from that READY and is not refilled when a trial of it finishes.
// - Draining: an agent that failed to start trials too often in a row is
//   drained (drain()): no free slot from then on, for this process of it (its
//   name and pid), even after it reconnects; a new process under the same name
//   starts afresh.
// - Liveness: an agent is lost when it has been silent for more than
//   window() = heartbeat_s * liveness seconds; any message counts as heard.
// - Pure bookkeeping: no I/O, no clock of its own (every time is passed in,
//   monotonic seconds), no failures. Leases and the store are the caller's.
//
// Threads: owned and used by the scheduler's one loop thread.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace hpo::scheduler {

struct Agent {
  std::string routing_id;
  std::string name;
  std::string key;       // the CURVE public key it authenticated with ("" on plaintext):
                         // its leases are bound to it
  std::string host;      // from HELLO: with pid, tells a reconnect of the same process
  std::int64_t pid = 0;  // from another process that took the same name
  int slots = 0;
  int free = 0;           // slots the scheduler may still lease on this agent
  bool stopping = false;  // said READY draining: do not refill
  std::int64_t leases = 0;
  int start_failures = 0;  // trials in a row it could not start (FINISH start_failed)
  std::string drained;     // why it gets no more trials (too many start failures); "" = it does
  double last_heard = 0;   // monotonic
  double last_sent = 0;
  std::string joined;      // what its last logged HELLO said (re-sent HELLOs that say the
                           // same are not logged again)
};

class AgentRegistry {
 public:
  // heartbeat_s: the interval told to agents; liveness: beats missed before
  // an agent is lost. Both are taken as given (the daemon clamps them).
  AgentRegistry(double heartbeat_s, int liveness);

  double heartbeat_s() const { return heartbeat_s_; }
  // Silence after which an agent is lost.
  double window() const { return heartbeat_s_ * liveness_; }

  // The agent on `routing_id`, or nullptr. The pointer is valid until the
  // next join() or remove().
  Agent* find(const std::string& routing_id);
  bool contains(const std::string& routing_id) const { return agents_.count(routing_id) != 0; }
  // The routing id the agent called `name` last joined on; empty if none.
  std::string routing_of(const std::string& name) const;

  // Why a HELLO from `routing_id` as `name` (host, pid) is refused, or "" when
  // it may join: the connection already joined under another name (a new name
  // needs a new connection); the name is held by a live connection of another
  // process (another host or pid: two agents were given the same name, and
  // taking it over would requeue the other's trials, and then it ours); or
  // max_agents are connected already. A reconnect of the same process (same
  // host and pid, new connection) may join: its old connection is the caller's
  // to drop.
  std::string refusal(const std::string& routing_id, const std::string& name,
                      const std::string& host, std::int64_t pid, std::size_t max_agents) const;

  // Registers the agent on `routing_id` (replacing any there), heard and sent
  // to at `now`, holding `leases` trials and no free slot until its READY.
  // `pid` (from HELLO) tells a reconnect of a drained process from a new one.
  Agent& join(const std::string& routing_id, const std::string& name, int slots,
              std::int64_t leases, double now, std::int64_t pid = 0);
  // Gives `a` no more trials, for `why`; remembered across its reconnects.
  void drain(Agent& a, const std::string& why);
  // Forgets the agent on `routing_id` (and its name, if the name still maps
  // here). Nothing when unknown.
  void remove(const std::string& routing_id);

  // READY: how many slots it offers now (clamped to slots - leases) and
  // whether it is draining.
  static void ready(Agent& a, std::int64_t free_slots, bool draining);
  // A trial leased to it / one of its trials ended.
  static void leased(Agent& a);
  static void released(Agent& a);

  // Routing ids of the agents silent for more than window() at `now`.
  std::vector<std::string> silent(double now) const;
  // The agents with a free slot, for the dispatcher.
  std::vector<Agent*> with_free_slots();
  // Routing ids of the agents sent nothing for a heartbeat interval.
  std::vector<std::string> heartbeat_due(double now) const;
  // Something was sent to `routing_id` at `now` (nothing when unknown).
  void sent(const std::string& routing_id, double now);
  // When the next heartbeat or loss is due, at most a heartbeat after `now`.
  double next_deadline(double now) const;

  // The agents heard from at or after `since` (monotonic seconds).
  std::vector<const Agent*> heard_since(double since) const;

  std::size_t size() const { return agents_.size(); }
  // The names of the connected agents.
  std::vector<std::string> names() const;

 private:
  double heartbeat_s_;
  int liveness_;
  std::unordered_map<std::string, Agent> agents_;         // by routing id
  std::unordered_map<std::string, std::string> names_;    // name -> routing id
  std::unordered_map<std::string, std::string> drained_;  // "name/pid" -> why
};

}  // namespace hpo::scheduler
