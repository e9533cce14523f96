// The lease table: which trial attempt runs on which agent connection, and
// the trials awaiting re-adoption after a scheduler restart.
//
// Contract
// - A lease id is 128 bits from the OS's CSPRNG as 32 hex digits (new_id()): nobody can
//   name a lease they were not sent, and an id is never reused (a requeued trial runs again
//   under a new id and attempt + 1; a collision with a live or waiting id is drawn again).
// - A lease is bound to the CURVE public key of the agent it was granted to (agent_key; ""
//   on plaintext). Only a connection with that key may act on it: fencing, transfer to a
//   reconnected connection and re-adoption after a restart all require the same key, so an
//   agent that announces someone else's lease under another key is told to stop it.
// - Fencing: a REPORT or FINISH counts only when its lease is live, held by the sending
//   connection with the lease's key, and names the same study, trial and attempt
//   (fenced()); anything else comes from an old attempt or an old connection.
// - Recovery: trials that were RUNNING when the scheduler started wait here
//   (by lease id) until the deadline set_recovery_deadline() gives; one an agent with the
//   lease's key re-announces with the same study, trial and attempt is re-adopted
//   (readopt()), the rest are handed back by close_recovery() to be requeued.
// - Pure bookkeeping: no clock of its own (deadlines are monotonic seconds passed in); the
//   only I/O is the OS's random source in new_id(). The store and the studies are the
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

#include "base/error.h"
#include "scheduler/study.h"

namespace hpo::scheduler {

struct Lease {
  std::size_t study = 0;  // index into Studies
  std::int64_t number = 0;
  std::int64_t attempt = 0;
  std::string agent;      // routing id of the holding connection
  std::string agent_key;  // CURVE public key of the holding agent ("" on plaintext)
  std::int64_t last_step = 0;
  // Why the study stopped this run ("study finished: target reached"); empty while it is
  // wanted. Set once, when its DECISION STOP is sent: its FINISH then ends it CANCELLED.
  std::string cancelled;
  // Its trial scheduler said PAUSE: the run ends PAUSED, however it ends short of completing
  // (its FINISH paused, interrupted, or its agent lost).
  bool pausing = false;

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
  // A fresh lease id: 32 random hex digits (base/random.h), none of the live or waiting ones.
  // Errors (kIo): the OS gave no random bytes.
  Result<std::string> new_id() const;

  // --- live leases ---
  void grant(const std::string& id, Lease lease) { leases_[id] = std::move(lease); }
  // The live lease `id`, or nullptr; valid until the next grant or release.
  Lease* find(const std::string& id);
  // The live lease `id` if connection `agent`, with key `agent_key`, holds it for that
  // study, trial and attempt; nullptr when any of them differs (the message is to be
  // ignored). `study` is nullopt for a study name the scheduler does not know.
  Lease* fenced(const std::string& id, const std::string& agent, const std::string& agent_key,
                std::optional<std::size_t> study, std::int64_t trial, std::int64_t attempt);
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
  // The live leases of connection `previous` that are bound to `agent_key` and announced
  // with the same study, trial and attempt move to connection `agent`; their ids are
  // returned and taken out of `announced`. The other leases of `previous` (another key,
  // not announced, announced differently) stay where they are, for the caller to drop.
  std::vector<std::string> transfer(const std::string& previous, const std::string& agent,
                                    const std::string& agent_key, Announcements& announced);
  // What is left of `announced`: the trials of the recovery window that match, key
  // included (the caller records each RUNNING, then readopt()s it), and the lease ids
  // the agent must stop (neither such a trial nor held by `agent`).
  struct Sorted {
    std::vector<Recovering> readopt;
    std::vector<std::string> stop;
  };
  Sorted sort(const std::string& agent, const std::string& agent_key,
              const Announcements& announced) const;

  // --- the recovery window ---
  // `r` waits, under its lease id, for re-adoption until the deadline.
  void await(Recovering r) {
    std::string id = r.trial.lease;
    recovering_[id] = std::move(r);
  }
  void set_recovery_deadline(double deadline) { recovery_deadline_ = deadline; }
  // The recovering trial under lease `id`, or nullptr.
  const Recovering* recovering(const std::string& id) const;
  // Moves recovering `id` to a live lease of connection `agent`; the caller has sorted it
  // into Sorted::readopt and recorded it RUNNING. False (nothing moves) when `id` is not
  // waiting or is bound to another key than `agent_key`.
  bool readopt(const std::string& id, const std::string& agent, const std::string& agent_key);
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
