#include "scheduler/agent_records.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace hpo::scheduler {

// Half a liveness window, within [1 s, 5 s]: fresh enough for "last heard 2s ago", and never
// more than a write per agent a second.
AgentRecords::AgentRecords(double window_s)
    : refresh_s_(std::clamp(window_s / 2, 1.0, 5.0)), stale_after_(window_s + 2 * refresh_s_) {}

namespace {

double wall_time_heard(const Agent& a, double mono, double now) {
  return now - std::max(0.0, mono - a.last_heard);
}

}  // namespace

Status AgentRecords::changed(results::Store& store, const Agent& a, std::string_view state,
                             double mono, double now) {
  return store.set_agent_state(a.name, state, wall_time_heard(a, mono, now));
}

Status AgentRecords::after_ready(results::Store& store, const Agent& a, bool was_draining,
                                 double mono, double now) {
  if (a.stopping == was_draining) return {};
  return changed(store, a, a.stopping ? "draining" : "live", mono, now);
}

Status AgentRecords::refresh(results::Store& store, const AgentRegistry& agents, double mono,
                             double now) {
  if (mono - last_sweep_ < refresh_s_) return {};
  std::vector<std::pair<std::string, double>> seen;
  for (const Agent* a : agents.heard_since(last_sweep_)) {
    seen.emplace_back(a->name, wall_time_heard(*a, mono, now));
  }
  last_sweep_ = mono;
  if (seen.empty()) return {};
  return store.touch_agents(seen);
}

}  // namespace hpo::scheduler
