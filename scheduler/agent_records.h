// What the store says about the agents (`hpo agents` reads it), kept true while a search runs
// at a bounded cost: the store is written once per loop turn, and heartbeats must not each
// become a write.
//
// Contract
// - State (results::AgentRow::state): "live" at HELLO (Store::upsert_agent); "draining", or
//   "live" again, when a READY changes the agent's draining flag; "left", "lost" or "revoked"
//   when it is dropped for that reason. A reconnect writes nothing here: its HELLO does. One
//   write per change.
// - last_seen: a sweep at most every refresh_s() writes, for each agent heard since the
//   previous sweep, the wall time it was last heard: at most one write per agent per
//   refresh_s(), whatever the heartbeat rate, in the caller's (the turn's) transaction.
// - stale_after(): how long after last_seen a reader may call a live row out of date (the
//   scheduler stopped writing; results::agent_status shows it "lost"): the liveness window
//   plus two sweeps.
// - Times: `mono` is the loop's monotonic clock (Agent::last_heard), `now` the wall clock
//   the store records; a last-heard time is written as now - (mono - last_heard).
//
// Threads: owned and used by the scheduler's one loop thread.
#pragma once

#include <string_view>

#include "base/error.h"
#include "results/store.h"
#include "scheduler/agents.h"

namespace hpo::scheduler {

class AgentRecords {
 public:
  // `window_s`: the silence after which the scheduler calls an agent lost.
  explicit AgentRecords(double window_s = 5);

  double refresh_s() const { return refresh_s_; }
  double stale_after() const { return stale_after_; }

  // The agent `a` is now in `state` (see the contract); errors: the store's.
  static Status changed(results::Store& store, const Agent& a, std::string_view state, double mono,
                        double now);
  // READY: records "draining" or "live" when the flag differs from `was_draining`.
  static Status after_ready(results::Store& store, const Agent& a, bool was_draining, double mono,
                            double now);
  // The last_seen sweep, when one is due at `mono`.
  Status refresh(results::Store& store, const AgentRegistry& agents, double mono, double now);

 private:
  double refresh_s_;
  double stale_after_;
  double last_sweep_ = -1e18;  // monotonic
};

}  // namespace hpo::scheduler
