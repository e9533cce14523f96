// What a trial's messages mean for the store and its study: the metrics of a
// REPORT and the pruner's verdict, the end of a FINISH (completed, pruned,
// failed with retries left or not, interrupted), and requeueing a trial whose
// run was lost. Fencing is done before: these are called for live leases only.
//
// Contract
// - Every write goes through the caller's open transaction; a returned error
//   is a store error and fatal for the loop turn.
// - A trial that goes back to the queue goes to the front, and runs again
//   with the same config under attempt + 1.
//
// Threads: the scheduler's one loop thread.
#pragma once

#include <cstdint>
#include <string>

#include "base/error.h"
#include "results/store.h"
#include "scheduler/agents.h"
#include "scheduler/leases.h"
#include "scheduler/protocol.h"
#include "scheduler/study.h"

namespace hpo::scheduler {

// A trial that lost its run (agent lost or left, lease dropped, interrupted
// on the agent): INTERRUPTED in the store and back in the queue. A `counted`
// interruption is charged to the trial (trials.interruptions, in the store so
// that a restart does not reset it); once there are more than the study's
// max_interruptions the trial is FAILED instead, with a reason that says so,
// and its config is not suggested again. Not counted: runs the trial is not to
// blame for (a refused ASSIGN).
Status interrupt_and_requeue(results::Store& store, StudyRuntime& study, std::int64_t number,
                             const std::string& why, double now, bool counted = true);

// A study that is ending (StudyRuntime::ending): its QUEUED trials become
// CANCELLED with `why` ("study finished: target reached") as their error.
Status cancel_queued(results::Store& store, StudyRuntime& study, const std::string& why,
                     double now);

// Records the metrics of a REPORT on live lease `lease` (`study` is the
// lease's) and advances its last step. Returns what the trial is to do: stop
// (the pruner said so, or the study is ending), pause (its trial scheduler
// said so, now or at an earlier report: the lease is marked pausing), or go on.
Result<StudyRuntime::Verdict> record_report(results::Store& store, StudyRuntime& study,
                                            Lease& lease, const protocol::Report& report,
                                            double now, bool verbose);

// The run of `lease` (released) ended short of completing (`why`): PAUSED when its trial
// scheduler had paused it (resumable from its last complete checkpoint), else
// interrupt_and_requeue.
Status end_run(results::Store& store, StudyRuntime& study, const Lease& lease,
               const std::string& why, double now, bool counted = true);

// The study ends with trials still paused (`why`: "study finished: ..."): each becomes
// PRUNED with its last value and `why` as its error.
Status end_paused(results::Store& store, StudyRuntime& study, const std::string& why,
                  double now);

// Records the FINISH of `lease`, already released: its final metrics (at the
// last reported step), then the outcome. An ok FINISH without the objective
// counts as a failed attempt; a failed attempt is requeued while the study's
// max_retries allow (failures counted in the store), else the trial is FAILED
// for good. A start failure (FINISH start_failed) or a refusal is requeued
// without charging the trial. A lease the study stopped (lease.cancelled)
// ends CANCELLED unless it completed first. A FINISH paused of a pausing lease
// ends it PAUSED; of another lease, the trial is requeued uncharged.
Status record_finish(results::Store& store, StudyRuntime& study, const Lease& lease,
                     const protocol::Finish& finish, double now, bool verbose);

// Start failures count against the agent, not the trial: a FINISH start_failed adds one to
// `agent`'s run of them, any other FINISH (but a refusal) ends the run. At `drain_after` in a
// row the agent is drained (AgentRegistry::drain), logged "agent X drained: N trials failed to
// start: <last error>", recorded in agents.drained and an "agent_drained" event. Returns whether
// this FINISH drained it.
Result<bool> count_start(results::Store& store, AgentRegistry& agents, Agent& agent,
                         const protocol::Finish& finish, int drain_after, double now);

}  // namespace hpo::scheduler
