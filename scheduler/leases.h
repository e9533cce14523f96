// The lease table: which trial attempt runs on which agent connection, and
// the trials awaiting re-adoption after a scheduler restart.
//
// Contract
// - A lease is named "study_id.trial.attempt" (lease_id()), so a lease id is
//   never reused: a requeued trial runs again under attempt + 1.
// - Fencing: a REPORT or FINISH counts only when its lease is live, held by
//   the sending connection, and names the same study, trial and attempt
//   (fenced()); anything else comes from an old attempt or an old connection.
// - Recovery: trials that were RUNNING when the scheduler started wait here
//   (by lease id) until the deadline given to begin_recovery(); one an agent
//   re-announces with the same study, trial and attempt is re-adopted
//   (readopt()), the rest are handed back by close_recovery() to be requeued.
// - Pure bookkeeping: no I/O, no clock of its own (deadlines are monotonic
//   seconds passed in), no failures. The store and the studies are the
//   caller's; studies are named by their index in the daemon's Studies.
//
// Threads: owned and used by the scheduler's one loop thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "scheduler/study.h"

namespace hpo::scheduler {

struct Lease {
  std::size_t study = 0;  // index into Studies
  std::int64_t number = 0;
  std::int64_t attempt = 0;
  std::string agent;  // routing id of the holding connection
  std::int64_t last_step = 0;
  // Why the study stopped this run ("study finished: target reached"); empty while it is
  // wanted. Set once, when its DECISION STOP is sent: its FINISH then ends it CANCELLED.
  std::string cancelled;

  bool is(std::optional<std::size_t> s, std::int64_t trial, std::int64_t a) const {
    return s == study && trial == number && a == attempt;
  }
};

struct Recovering {
  std::size_t study = 0;  // index into Studies
  RecoveringTrial trial;

  bool is(std::optional<std::size_t> s, std::int64_t t, std::int64_t a) const {
    return s == study && t == trial.number && a == trial.attempt;
  }
};

// A trial an agent says in HELLO it is still running, by lease id.
struct Announced {
  std::optional<std::size_t> study;  // nullopt: a study the scheduler does not know
  std::int64_t trial = 0;
  std::int64_t attempt = 0;
};
using Announcements = std::unordered_map<std::string, Announced>;

class LeaseTable {
 public:
  static std::string lease_id(std::int64_t study_id, std::int64_t number, std::int64_t attempt);

  // --- live leases ---
  void grant(const std::string& id, Lease lease) { leases_[id] = std::move(lease); }
  // The live lease `id`, or nullptr; valid until the next grant or release.
  Lease* find(const std::string& id);
  // The live lease `id` if `agent` holds it for that study, trial and
  // attempt; nullptr when any of them differs (the message is to be ignored).
  // `study` is nullopt for a study name the scheduler does not know.
  Lease* fenced(const std::string& id, const std::string& agent, std::optional<std::size_t> study,
                std::int64_t trial, std::int64_t attempt);
  // Whether `agent` holds the live lease `id`.
  bool held(const std::string& id, const std::string& agent) const;
  // Removes the live lease `id` and returns it (nullopt when not live).
  std::optional<Lease> release(const std::string& id);
  // Ids of the live leases `agent` holds.
  std::vector<std::string> held_by(const std::string& agent) const;
  std::size_t size() const { return leases_.size(); }
  bool empty() const { return leases_.empty(); }
  const std::unordered_map<std::string, Lease>& all() const { return leases_; }
  void clear() { leases_.clear(); }

  // --- HELLO: what an agent re-announces ---
  // The live leases of connection `previous` that are announced with the same
  // study, trial and attempt move to connection `agent`; their ids are
  // returned and taken out of `announced`. The other leases of `previous`
  // stay where they are, for the caller to drop.
  std::vector<std::string> transfer(const std::string& previous, const std::string& agent,
                                    Announcements& announced);
  // What is left of `announced`: the trials of the recovery window that match
  // (the caller records each RUNNING, then readopt()s it), and the lease ids
  // the agent must stop (neither recovering nor held by `agent`).
  struct Sorted {
    std::vector<Recovering> readopt;
    std::vector<std::string> stop;
  };
  Sorted sort(const std::string& agent, const Announcements& announced) const;

  // --- the recovery window ---
  // `r` waits, under its lease id, for re-adoption until the deadline.
  void await(Recovering r) {
    std::string id = r.trial.lease;
    recovering_[id] = std::move(r);
  }
  void set_recovery_deadline(double deadline) { recovery_deadline_ = deadline; }
  // The recovering trial under lease `id`, or nullptr.
  const Recovering* recovering(const std::string& id) const;
  // Moves recovering `id` to a live lease of `agent`; the caller has checked
  // recovering(id) and recorded it RUNNING.
  void readopt(const std::string& id, const std::string& agent);
  // Whether the window is open with trials in it and its deadline passed.
  bool recovery_due(double now) const;
  // Closes the window: every trial still waiting, for the caller to requeue.
  std::vector<Recovering> close_recovery();
  // When the window closes, if trials are waiting in it.
  std::optional<double> recovery_deadline() const;
  std::size_t recovering_count() const { return recovering_.size(); }

 private:
  std::unordered_map<std::string, Lease> leases_;           // by lease id
  std::unordered_map<std::string, Recovering> recovering_;  // by lease id
  double recovery_deadline_ = 0;
};

}  // namespace hpo::scheduler
