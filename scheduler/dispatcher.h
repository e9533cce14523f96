// The dispatcher: which trial goes to which free slot.
//
// Contract
// - Free slots go round-robin over the studies that can lease now (budget,
//   max_parallel, not finished: StudyRuntime::can_lease); the cursor carries
//   over from one call to the next, so two studies share slots evenly.
// - One lease per agent per pass, passes repeated until no agent has a free
//   slot or no study has a trial to give; a study's requeued trials go
//   before new ones from its sampler (StudyRuntime::next_trial).
// - Each lease gets a fresh random id (LeaseTable::new_id) bound to the agent's key
//   (Agent::key), and is recorded RUNNING in the store (through the caller's open
//   transaction) and in the lease table, the study and the agent's slots
//   before its ASSIGN is returned. An error is a store error (or no random bytes from the
//   OS), fatal for the loop turn: what was leased before it is not sent.
// - A trial whose checkpoint the checkpoint store holds (it was paused, or lost a run that
//   had resumed from one) resumes from it: its ASSIGN carries `resume` and its new attempt
//   starts with the metrics of the last (Store::carry_metrics). A study with a trial
//   scheduler leases its trials `pausable`. A PBT child gets a copy of its parent's
//   checkpoint first.
//
// Threads: owned and used by the scheduler's one loop thread.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "results/store.h"
#include "scheduler/agents.h"
#include "scheduler/checkpoints.h"
#include "scheduler/leases.h"
#include "scheduler/protocol.h"
#include "scheduler/studies.h"

namespace hpo::scheduler {

class Dispatcher {
 public:
  // verbose: log every lease.
  explicit Dispatcher(bool verbose = false) : verbose_(verbose) {}

  // An ASSIGN and the routing id of the agent it is for.
  using Assignment = std::pair<std::string, protocol::Assign>;

  // Leases trials to the agents' free slots at wall time `now`; returns the
  // ASSIGNs to send, in the order they were leased.
  // `checkpoints` may be null (the scheduler keeps none: every run starts afresh).
  Result<std::vector<Assignment>> fill(results::Store& store, Studies& studies,
                                       AgentRegistry& agents, LeaseTable& leases, double now,
                                       CheckpointStore* checkpoints = nullptr);

 private:
  bool verbose_;
  std::size_t next_study_ = 0;  // round-robin cursor into Studies
};

}  // namespace hpo::scheduler
