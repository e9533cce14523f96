// What the chaos test (chaos_test.cpp) reads back besides the trials: the
// trial processes alive now (found by a marker in their command line, since
// a SIGKILLed agent's children are no longer anybody's we could wait for),
// SQLite's own integrity check, and a tally of the lifecycle events that say
// why work was interrupted and requeued.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace hpo::e2e::chaos {

struct TrialProcess {
  pid_t pid = 0;
  pid_t ppid = 0;                 // the agent that started it; 1 (or a subreaper) once orphaned
  std::vector<std::string> args;  // its command line, argv[0] first
};

// Every live process (zombies excluded) whose command line contains `marker`.
std::vector<TrialProcess> trial_processes(const std::string& marker);

// How many of `procs` are children of `parent`.
std::size_t children_of(const std::vector<TrialProcess>& procs, pid_t parent);

// The first row of PRAGMA integrity_check on `db` ("ok" when sound), or the
// error that kept it from running.
std::string integrity_check(const std::filesystem::path& db);

// The study's lifecycle events, counted by why they happened.
struct Tally {
  // "interrupted" events, by the reason they carry.
  std::int64_t interrupted = 0;
  std::int64_t interrupted_by_restart = 0;     // the scheduler stopped while it ran
  std::int64_t interrupted_agent_lost = 0;     // its agent went silent past the liveness window
  std::int64_t interrupted_reconnected = 0;    // its agent came back with a new connection
  std::int64_t interrupted_not_announced = 0;  // a repeated HELLO no longer announced it
  std::int64_t interrupted_other = 0;
  // "requeued" events, by the event that came before on the same trial.
  std::int64_t requeued = 0;
  std::int64_t requeued_after_agent = 0;    // after an agent-side interruption (the three above)
  std::int64_t requeued_after_restart = 0;  // the recovery window closed without its agent
  std::int64_t requeued_after_retry = 0;    // a failed attempt retried
  std::int64_t requeued_other = 0;
  // "assigned" events that repeat the trial's last attempt: re-adoptions.
  std::int64_t readopted = 0;
  std::int64_t assigned = 0;
  // Trial number -> how many "completed" events it has.
  std::map<std::int64_t, int> completed;
  // Every requeue: the attempt given up, and what came before it on that trial
  // ("agent", "restart", "retry" or "other").
  struct Requeue {
    std::int64_t number = 0;
    std::int64_t attempt = 0;
    std::string after;
    std::string agent;       // the agent that held the attempt
    double assigned_at = 0;  // when the attempt was assigned (or last re-adopted)
    double at = 0;           // when it was requeued
  };
  std::vector<Requeue> requeues;
  // Reasons of "interrupted_other" and "requeued_other", for the report.
  std::vector<std::string> unexplained;
};

Tally tally_events(const std::filesystem::path& db, const std::string& study);

// What the driver saw of its agents' lives.
struct Kills {
  using Attempt = std::pair<std::int64_t, std::int64_t>;  // (trial number, attempt)
  std::set<Attempt> held;  // a trial process of a killed agent ran it at the kill
  std::multimap<std::string, double> started;  // agent name -> when a process of it started
  std::multimap<std::string, double> at;       // agent name -> when one was killed (Unix time)
};

// Why each requeued attempt was given up.
struct RequeueCauses {
  int held = 0;    // its process ran when its agent was killed
  int killed = 0;  // the agent process it was leased to was killed before the requeue,
                   // while the attempt had no process: its ASSIGN not yet acted on (or
                   // sent to an agent already dead), or it had ended and its FINISH was
                   // not ACKed yet (a scheduler outage)
  int unsent = 0;  // never started anywhere: the scheduler was killed after committing
                   // the lease and before its ASSIGN left (the recovery window requeues it)
  std::vector<std::string> unexplained;  // none of these: work thrown away for nothing
};

// `started(number, attempt)`: whether an agent ever started that attempt.
RequeueCauses explain_requeues(const Tally& tally, const Kills& kills,
                               const std::function<bool(std::int64_t, std::int64_t)>& started);

}  // namespace hpo::e2e::chaos
