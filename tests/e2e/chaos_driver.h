// The chaos test's driver (chaos_test.cpp): a scheduler and agents of the real
// `hpo` binary on 127.0.0.1, a seeded schedule of SIGKILLs and restarts, and
// what the driver sees while it plays it (kills, the trials the killed agents
// ran, orphans, crashes, the parallelism reached).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/e2e/chaos.h"
#include "tests/e2e/harness.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace hpo::e2e::chaos {

constexpr int kAgents = 3;
constexpr int kSlots = 2;
constexpr int kParallel = kAgents * kSlots;
// harness.h runs everything with 200 ms heartbeats and liveness 5.
constexpr double kLivenessWindow = 1.0;

// One step of the schedule: what is killed, and for how long it stays down.
struct Event {
  enum Kind { kScheduler, kAgent, kBoth } kind = kScheduler;
  int agent = 0;          // kAgent, kBoth: which agent
  double outage = 0;      // kScheduler, kBoth: seconds until the scheduler restarts
  double agent_down = 0;  // kAgent, kBoth: seconds until the agent restarts
};

// Ten events, each kind at least twice, in a seeded order with seeded delays:
// long scheduler outages outlast the liveness window (agents reconnect with
// back-off, the restarted scheduler waits for them to re-announce), long agent
// outages are noticed as "lost", short ones as "reconnected"; kBoth kills an
// agent during a long scheduler outage.
std::vector<Event> schedule(std::uint32_t seed);

struct Summary {
  int scheduler_kills = 0, agent_kills = 0, restarts = 0;
  int scheduler_crashes = 0, agent_crashes = 0;  // exits nobody asked for
  std::size_t held_by_killed_agents = 0;         // their trial processes at the kill
  std::size_t running_at_scheduler_kills = 0;    // all trial processes at the kill
  Kills kills;
  std::size_t orphans = 0;  // trial processes alive 2 s after their agent's SIGKILL
  int peak = 0, peak_after_last_restart = 0;  // RUNNING trials that also had a process
  bool finished = false;                      // the scheduler exited 0 on its own
  std::vector<std::string> notes;             // what went wrong, for the report
};

// The scheduler (--exit-when-done) and kAgents agents of kSlots slots, all
// logging into `dir`, agents' trials under dir/work. Trial processes are
// those whose command line holds `marker`.
class Cluster {
 public:
  Cluster(const test::TempDir& dir, std::filesystem::path study_file, std::string study,
          std::string marker);

  const std::filesystem::path& db() const { return db_; }
  const std::string& marker() const { return marker_; }
  Summary& summary() { return summary_; }
  bool finished() const { return summary_.finished; }

  // Polls for `seconds`: notices exits nobody asked for (restarting what
  // crashed) and samples the parallelism.
  void run_for(double seconds);
  // Polls until `count` trials are COMPLETED; false if the study ended or
  // `limit` seconds passed first.
  bool run_until_completed(std::int64_t count, double limit);

  void kill_scheduler();
  // SIGKILL once it runs a trial (or after 3 s), then waits up to 2 s for its
  // trial processes to die with it; the survivors count as orphans.
  void kill_agent(int i);
  void start_scheduler();
  void start_agent(int i);

  // Plays one event: kills, waits out the outage (polling all the while), restarts.
  void play(const Event& e);

  // From now on the peak counts toward peak_after_last_restart.
  void all_restarted() { calm_ = true; }

  // Waits up to `limit` s for the scheduler to end the study, then stops the
  // agents with SIGTERM.
  void finish(double limit);

 private:
  void tick();

  const test::TempDir& dir_;
  std::filesystem::path db_;
  ClusterKeys keys_;  // the cluster runs with CURVE on, as a real one does
  std::filesystem::path study_file_;
  std::string study_;
  std::string marker_;
  int port_;
  std::unique_ptr<test::Process> scheduler_;
  std::vector<std::unique_ptr<test::Process>> agents_;
  int scheduler_starts_ = 0, agent_starts_ = 0;
  bool calm_ = false;
  Summary summary_;
};

}  // namespace hpo::e2e::chaos
