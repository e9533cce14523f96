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
#include "scheduler/leases.h"
#include "scheduler/protocol.h"
#include "scheduler/study.h"

namespace hpo::scheduler {

// A trial that lost its run (agent lost or left, lease dropped, interrupted
// on the agent): INTERRUPTED in the store and back in the queue.
Status interrupt_and_requeue(results::Store& store, StudyRuntime& study, std::int64_t number,
                             const std::string& why, double now);

// Records the metrics of a REPORT on live lease `lease` (`study` is the
// lease's) and advances its last step. Returns whether the trial is to stop:
// the pruner said so, or the study's max_seconds is spent.
Result<bool> record_report(results::Store& store, StudyRuntime& study, Lease& lease,
                           const protocol::Report& report, double now, bool verbose);

// Records the FINISH of `lease`, already released: its final metrics (at the
// last reported step), then the outcome. An ok FINISH without the objective
// counts as a failed attempt; a failed attempt is requeued while the study's
// max_retries allow, else the trial is FAILED for good.
Status record_finish(results::Store& store, StudyRuntime& study, const Lease& lease,
                     const protocol::Finish& finish, double now, bool verbose);

}  // namespace hpo::scheduler
