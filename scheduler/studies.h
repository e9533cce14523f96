// The studies the scheduler runs: every loaded StudyRuntime, by index (what
// leases and the dispatcher hold) and by name (what messages carry), and the
// two ways a study's lifecycle reaches the store: SUBMIT, which adds or
// continues a study, and the "finished" mark once it has nothing left to do.
//
// Contract
// - A study, once loaded, keeps its index for the daemon's lifetime; names
//   are unique (the store's studies.name is UNIQUE).
// - Every store write goes through the caller's open transaction (the
//   daemon's loop turn, or add_study's own); a Result error is a store error
//   and fatal for the turn. A spec that is refused is an answer, not an
//   error.
//
// Threads: owned and used by the scheduler's one loop thread.
#pragma once

#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/error.h"
#include "results/store.h"
#include "scheduler/leases.h"
#include "scheduler/protocol.h"
#include "scheduler/study.h"

namespace hpo::scheduler {

class Studies {
 public:
  // At start: loads every stored study that is not finished (status
  // "running" again) and marks its RUNNING trials INTERRUPTED; returns those
  // trials, for the recovery window. Errors: store errors, a stored spec
  // that no longer parses.
  Result<std::vector<Recovering>> load_unfinished(results::Store& store, double now);

  // Builds the runtime of stored study `row` (see StudyRuntime::load) and
  // appends it. Errors: a stored spec that no longer parses, store errors.
  Result<std::size_t> load(results::Store& store, const results::StudyRow& row,
                           const std::vector<RecoveringTrial>& recovering, double now);

  // SUBMIT {study}: adds the study, or continues the stored one of that name
  // (its spec replaced when different, a finished one running again if the
  // new budget allows). Returns the answer for the submitter: OK {study, id},
  // or ERROR when the spec does not parse or cannot be applied.
  Result<protocol::Message> submit(results::Store& store, const nlohmann::json& study, double now);

  // The end of a study that reached its target or spent its time budget
  // (StudyRuntime::ending): its QUEUED trials become CANCELLED, and every live
  // lease of it not stopped yet is marked (Lease::cancelled, "study finished:
  // <why>") and returned with the DECISION STOP its agent is to get. Called
  // every loop turn; a lease is returned once.
  using Stop = std::pair<std::string, protocol::Decision>;  // routing id, message
  Result<std::vector<Stop>> wind_down(results::Store& store, LeaseTable& leases, double now);

  // Marks every study that has just finished (StudyRuntime::finished) as
  // "finished" in the store, with an event and a log line.
  Status record_finished(results::Store& store, double now);

  // Every study marked finished (true when there is none).
  bool all_done() const;

  // The index of the study called `name`, nullopt when none is loaded.
  std::optional<std::size_t> find(const std::string& name) const;
  StudyRuntime& operator[](std::size_t index) { return *studies_[index]; }
  const StudyRuntime& operator[](std::size_t index) const { return *studies_[index]; }
  std::size_t size() const { return studies_.size(); }
  bool empty() const { return studies_.empty(); }

 private:
  std::vector<std::unique_ptr<StudyRuntime>> studies_;
  std::unordered_map<std::string, std::size_t> index_;  // by name
};

}  // namespace hpo::scheduler
