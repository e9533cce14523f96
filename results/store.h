// The results store: one SQLite file that holds every study, trial, metric,
// agent and event of a search. This is the only code in hpo that speaks SQL.
//
// Contract in brief
// - One writer, many readers. Store::open(path, kWriter) takes an exclusive
//   lock on "<path>.lock" (flock, released by the kernel when the process
//   dies, even by SIGKILL); a second writer of the same file, in this process
//   or another, gets "database X is already being written by pid N" at once.
//   Readers (kReadOnly) never block the writer and never see a half-written
//   transaction (WAL mode). The lock file holds the writer's pid; a writer
//   that closes cleanly removes it, and checkpoints the WAL (TRUNCATE) so
//   that SQLite removes the -wal/-shm files when no reader has the database
//   open; after a crash they stay, which is harmless. The lock fd is
//   close-on-exec, but a child forked without exec
//   inherits it and keeps the lock while it lives: fork agents before
//   opening the writer, or exec them.
// - kReadOnly never creates a database nor changes its content (SQLite may
//   add the -wal/-shm side files beside it): a missing file, a file that is
//   not an hpo database, or a schema older or newer than this build are
//   errors that say so. kWriter creates a missing file and applies forward
//   migrations to an older one; a newer schema is refused by both.
// - Durability: WAL with synchronous=NORMAL. A crash of the process (SIGKILL,
//   abort) loses only the transaction that was open; committed ones survive
//   and the file is never corrupted. A power loss or kernel crash may also
//   roll back the last few committed transactions (never a partial one and
//   never a corrupted file). We accept that trade because the scheduler
//   commits once per loop turn, and an fsync per turn ties its loop to the
//   disk's flush latency (cheap on this machine's SSD, see
//   experiments/results/store.txt; milliseconds on HDDs and network disks);
//   a rolled-back turn is recovered like a crash (trials shown
//   RUNNING become INTERRUPTED and are requeued). OpenOptions::durable selects
//   synchronous=FULL for users who want the other trade.
// - Every write either runs in its own implicit transaction, or inside the
//   Transaction returned by begin(): the scheduler batches all writes of one
//   loop turn in one Transaction.
// - Lifecycle events are logged by the store itself, in the same transaction
//   as the change: start_trial logs "assigned", requeue_trial "requeued",
//   finish_trial the lower-case state ("completed", "pruned", "failed",
//   "interrupted"), mark_running_interrupted "interrupted". Callers log
//   everything else (agent joined/lost, lease expired, study started...) with
//   append_event.
// - Metrics belong to an attempt: record_metric stores the trial's current
//   attempt, and every read (history, metrics, leaderboard by metric) sees
//   only the current attempt's values, so a retried trial starts clean once
//   start_trial gives it its next attempt (while requeued it still shows
//   the values of the attempt that was given up). A resumed attempt starts
//   with the values of the one it resumes (carry_metrics).
// - Threads: a Store (and its Transaction) is used by one thread at a time.
//   Store is move-only; a Transaction stays valid if its Store is moved,
//   and must not outlive it.
// - Times are double seconds since the Unix epoch, given by the caller (the
//   scheduler's injected clock). Ids are the database's int64 row ids; a
//   trial's `number` is its 0-based index within its study.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "search/trial.h"

namespace hpo::results {

using search::Direction;
using search::TrialState;

// The schema version this build writes (PRAGMA user_version of the file).
inline constexpr int kSchemaVersion = 6;
// PRAGMA application_id of every hpo database ("HPO1").
inline constexpr std::int32_t kApplicationId = 0x48504F31;

enum class OpenMode { kReadOnly, kWriter };

struct OpenOptions {
  bool durable = false;        // synchronous=FULL (fsync per commit) instead of NORMAL
  int busy_timeout_ms = 5000;  // how long to wait on SQLite locks (checkpoints, WAL recovery)
  bool background_checkpoints = true;  // writer: checkpoint the WAL on a thread of its own
                                       // (false: inside commits, SQLite's default)
};

struct StudyRow {
  std::int64_t id = 0;
  std::string name;     // unique in a database
  nlohmann::json spec;  // the full study file, as given
  std::string metric;   // objective metric name
  Direction direction = Direction::kMinimize;
  std::int64_t seed = 0;
  std::string status = "running";  // "running" | "finished" | "interrupted"
  double created = 0.0;
  double updated = 0.0;
  // Bytes of the paused trials' checkpoints the scheduler keeps for this study (issue 14).
  std::int64_t checkpoint_bytes = 0;
};

struct TrialRow {
  std::int64_t id = 0;
  std::int64_t study = 0;
  std::int64_t number = 0;
  TrialState state = TrialState::kQueued;
  nlohmann::json config;
  std::string hash;
  std::optional<double> value;  // objective
  std::int64_t attempt = 0;     // 0 until first started; start_trial sets it
  std::string lease;            // empty when none
  std::string agent;            // empty when none
  std::string agent_key;        // CURVE public key the lease is bound to; empty when none or
                                // on plaintext (and for leases written before schema 4)
  double queued = 0.0;
  std::optional<double> started;
  std::optional<double> finished;
  std::string error;
  std::string log_tail;
  std::int64_t failures = 0;       // failed attempts so far (count_failure)
  std::int64_t interruptions = 0;  // runs lost so far (count_interruption)
  // PBT's lineage: the trial (number) this one was made from by an exploit, and the step of
  // the parent's checkpoint it started from; nullopt for a trial sampled afresh.
  std::optional<std::int64_t> parent;
  std::optional<std::int64_t> parent_step;
};

struct MetricRow {
  std::int64_t trial = 0;   // trial id
  std::int64_t number = 0;  // trial number within its study
  std::int64_t step = 0;
  std::string name;
  double value = 0.0;
  double time = 0.0;
};

struct AgentRow {
  std::string id;
  std::string host;
  nlohmann::json gpus;
  int slots = 0;
  double first_seen = 0.0;
  double last_seen = 0.0;
  std::string drained;         // why the scheduler gives it no more trials; empty when it does
  std::string state = "live";  // as the scheduler last wrote it: "live", "draining" (it said
                               // it takes no more trials), "left", "lost" or "revoked"
  double stale_after = 0;      // seconds after last_seen when a live row is out of date
                               // (the scheduler stopped writing); 0 = never
  std::int64_t running = 0;    // RUNNING trials whose agent it is (read by agents())
};

// What `hpo agents` calls an agent at wall time `now`: its stored state, except "drained" for
// a connected agent the scheduler gives no more trials (drained set), and "lost" for a
// live or draining row past its stale_after (the scheduler that wrote it stopped writing).
std::string agent_status(const AgentRow& agent, double now);

struct EventRow {
  std::int64_t id = 0;
  std::optional<std::int64_t> study;
  std::optional<std::int64_t> trial;
  std::string kind;
  nlohmann::json detail;
  double time = 0.0;
};

// A trial without its config, error and log tail: what the dashboard's charts read, cheap
// at 100,000 trials (trial_briefs).
struct TrialBrief {
  std::int64_t id = 0;
  std::int64_t number = 0;
  TrialState state = TrialState::kQueued;
  std::optional<double> value;
  std::int64_t attempt = 0;
  std::string agent;
  double queued = 0.0;
  std::optional<double> started;
  std::optional<double> finished;
  std::optional<std::int64_t> parent;  // PBT's lineage (TrialRow::parent)
  std::optional<std::int64_t> parent_step;
};

// One `--where` condition: the config value at a dotted path (lists as [i],
// e.g. "net.conv[0].filters") equals `value` (numbers compare by value, so
// 128 matches 128.0; true/false match JSON booleans).
struct Filter {
  std::string path;
  nlohmann::json value;
};

// Parses "path=value"; the value is read as JSON when it is valid JSON
// (1e-3, true, "x", null) and as a plain string otherwise (adam).
Result<Filter> parse_filter(std::string_view text);

// How a trial scores on a metric other than the objective.
enum class Aggregate { kBest, kLast };

struct LeaderboardQuery {
  std::size_t top = 10;                    // 0 = all
  std::vector<Filter> where;               // all must hold
  std::string metric;                      // empty = the objective value (trials.value); a name
                                           // (even the objective's) ranks by reported values
  Aggregate aggregate = Aggregate::kBest;  // for a non-objective metric
  std::optional<Direction> direction;      // default: the study's direction
  std::vector<TrialState> states = {TrialState::kCompleted};  // which trials are ranked
};

struct LeaderboardEntry {
  std::int64_t rank = 0;  // 1-based
  double score = 0.0;     // the value ranked on
  TrialRow trial;
};

class Store {
 public:
  // See the contract above. Errors name the path and say what is wrong.
  static Result<Store> open(const std::string& path, OpenMode mode, OpenOptions options = {});

  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  ~Store();  // releases the writer lock

  const std::string& path() const;
  OpenMode mode() const;

  struct Impl;

  // Rolls back on destruction unless committed. Only one may be open at a time.
  class Transaction {
   public:
    Transaction(Transaction&&) noexcept;
    Transaction& operator=(Transaction&&) noexcept;
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    ~Transaction();
    Status commit();
    void rollback();

   private:
    friend class Store;
    explicit Transaction(Impl* impl) : impl_(impl) {}
    Impl* impl_ = nullptr;  // the Store's state (stable across moves); nullptr once finished
  };
  // BEGIN IMMEDIATE (writer only).
  Result<Transaction> begin();

  // A unit inside the open Transaction that can be undone alone (SQL SAVEPOINT): the scheduler
  // wraps each message of a loop turn in one, so that a message whose handling fails leaves
  // nothing behind while the rest of the turn is kept. Rolls back on destruction unless
  // released; several nest like a stack (release or roll back the newest first). Must not
  // outlive the Transaction it was opened in.
  class Savepoint {
   public:
    Savepoint(Savepoint&&) noexcept;
    Savepoint& operator=(Savepoint&&) = delete;
    Savepoint(const Savepoint&) = delete;
    Savepoint& operator=(const Savepoint&) = delete;
    ~Savepoint();
    // Keeps the writes made since it was opened.
    Status release();
    // Undoes them. An error (code kIo) means the enclosing transaction itself is gone (SQLite
    // rolls back a whole transaction on some I/O errors): the caller cannot go on writing.
    Status rollback();

   private:
    friend class Store;
    explicit Savepoint(Impl* impl) : impl_(impl) {}
    Impl* impl_ = nullptr;  // nullptr once released or rolled back
  };
  // Opens a Savepoint; errors: no Transaction is open, SQLite errors.
  Result<Savepoint> savepoint();

  // --- studies ---
  Result<std::int64_t> create_study(const StudyRow& study);  // id/created/updated from args
  Result<std::optional<StudyRow>> find_study(std::string_view name);
  Result<std::optional<StudyRow>> get_study(std::int64_t id);
  Result<std::vector<StudyRow>> list_studies();  // by id
  Status set_study_status(std::int64_t study, std::string_view status, double time);
  // Replaces the stored spec (e.g. a raised budget on resume); objective,
  // direction and seed stay as created.
  Status update_study_spec(std::int64_t study, const nlohmann::json& spec, double time);
  // The bytes the scheduler's checkpoint store holds for the study (StudyRow).
  Status set_study_checkpoint_bytes(std::int64_t study, std::int64_t bytes);
  // Trials of a study by state (states with no trials are absent).
  Result<std::map<TrialState, std::int64_t>> count_trials(std::int64_t study);

  // --- trials ---
  // A new QUEUED trial, attempt 0. `number` must be unique in the study.
  Result<std::int64_t> add_trial(std::int64_t study, std::int64_t number,
                                 const nlohmann::json& config, std::string_view hash, double time);
  // RUNNING under (attempt, lease) on `agent`, the lease bound to the agent's CURVE public
  // key `agent_key` ("" on plaintext) so that a restarted scheduler re-adopts it only from
  // that key; clears value, error, finish time.
  Status start_trial(std::int64_t trial, std::int64_t attempt, std::string_view lease,
                     std::string_view agent, std::string_view agent_key, double time);
  // Stores one intermediate value for the trial's current attempt; a second
  // value for the same (name, step) replaces the first.
  Status record_metric(std::int64_t trial, std::int64_t step, std::string_view name, double value,
                       double time);
  // The end of a run: COMPLETED, PRUNED, FAILED, INTERRUPTED, CANCELLED or PAUSED (QUEUED and
  // RUNNING are refused). A PAUSED trial's value is its result at the rung it paused at.
  Status finish_trial(std::int64_t trial, TrialState state, std::optional<double> value,
                      std::string_view error, std::string_view log_tail, double time);
  // Back to QUEUED (a retry); lease, agent and agent_key cleared, attempt kept (the next
  // start_trial gives the new attempt).
  Status requeue_trial(std::int64_t trial, double time);
  // A paused trial resumed from its checkpoint as attempt `to`: the metrics of attempt `from`
  // become attempt `to`'s too (kept under `from` as well), so that its curve stays whole; the
  // resumed run then reports the steps after its checkpoint (a step it repeats replaces).
  Status carry_metrics(std::int64_t trial, std::int64_t from, std::int64_t to);
  // PBT's exploit: `child` (a new trial) starts from trial `parent`'s checkpoint at `step`:
  // its lineage is recorded (trials.parent, parent_step) and the parent's metrics of its
  // current attempt up to `step` become the child's, as attempt 1's.
  Status inherit(std::int64_t child, std::int64_t parent_id, std::int64_t parent_number,
                 std::int64_t step);
  // One more failed attempt / lost run of the trial; returns the new count. The counts live
  // here, not in the scheduler's memory, so a restarted scheduler gives a trial only the
  // retries it has left. Errors: no such trial.
  Result<std::int64_t> count_failure(std::int64_t trial);
  Result<std::int64_t> count_interruption(std::int64_t trial);
  // Recovery after a scheduler crash: every RUNNING trial of every study
  // becomes INTERRUPTED. Returns how many.
  Result<std::int64_t> mark_running_interrupted(double time);

  Result<std::vector<TrialRow>> trials(std::int64_t study,
                                       std::optional<TrialState> state = std::nullopt);
  Result<std::optional<TrialRow>> find_trial(std::int64_t study, std::int64_t number);
  Result<std::optional<TrialRow>> get_trial(std::int64_t trial);

  // Every trial of the study in number order with its objective intermediates
  // (the study's objective metric, by step, current attempt), so a resumed
  // sampler is rebuilt from the file. Two queries; fine at 100,000 trials.
  Result<search::History> history(std::int64_t study);

  // Metrics of one trial's current attempt, by (name, step).
  Result<std::vector<MetricRow>> metrics(std::int64_t trial);
  // Metrics of every trial of a study (current attempts), by (number, name, step).
  Result<std::vector<MetricRow>> study_metrics(std::int64_t study);
  // Metric `name` at the last step each of `trials` (ids) reported it, current
  // attempt; trials without it are absent. A trial's final metrics are stored
  // at its last step, so this is the final value (e.g. test_accuracy).
  Result<std::map<std::int64_t, double>> last_values(const std::vector<std::int64_t>& trials,
                                                     std::string_view name);

  // --- agents and events ---
  // An agent said HELLO at `time`: recorded (or updated) as "live", seen at `time`, out of date
  // `stale_after` seconds later unless touched again (0 = never).
  Status upsert_agent(std::string_view id, std::string_view host, const nlohmann::json& gpus,
                      int slots, double time, double stale_after = 0);
  // By first sighting, each with the count of RUNNING trials it holds.
  Result<std::vector<AgentRow>> agents();
  // The agent's state changed (AgentRow::state), last heard from at `last_seen`.
  // Errors: no such agent.
  Status set_agent_state(std::string_view id, std::string_view state, double last_seen);
  // Moves last_seen forward to the given time of each named agent (unknown names are skipped):
  // one statement per agent, in the caller's transaction.
  Status touch_agents(const std::vector<std::pair<std::string, double>>& seen);
  // Records why the scheduler gives agent `id` no more trials ("" = it does again).
  // Errors: no such agent.
  Status set_agent_drained(std::string_view id, std::string_view reason, double time);
  // Bounds what agents leave behind (a flood of HELLOs under new names): deletes every agents
  // row but the `keep` most recently seen and those named in `connected`, and every agent_*
  // event ("agent_joined", "agent_lost"...) but the newest `keep`. Returns the rows deleted.
  Result<std::int64_t> prune_agent_records(std::size_t keep,
                                           const std::vector<std::string>& connected);
  Status append_event(std::optional<std::int64_t> study, std::optional<std::int64_t> trial,
                      std::string_view kind, const nlohmann::json& detail, double time);
  // Newest last; `limit` 0 = all.
  Result<std::vector<EventRow>> events(std::optional<std::int64_t> study, std::size_t limit = 0);
  // The events of one trial (id), oldest first: its state history.
  Result<std::vector<EventRow>> trial_events(std::int64_t trial);

  // --- dashboard reads (overview.cpp) ---
  // Every trial of the study in number order, without config and logs.
  Result<std::vector<TrialBrief>> trial_briefs(std::int64_t study);
  // The configs of the given trials (ids); unknown ids are absent.
  Result<std::map<std::int64_t, nlohmann::json>> trial_configs(
      const std::vector<std::int64_t>& trials);
  // Metric `name` of the given trials (ids), current attempts, by (trial, step): one index
  // seek per trial, whatever the size of the study.
  Result<std::vector<MetricRow>> trial_metrics(const std::vector<std::int64_t>& trials,
                                               std::string_view name);
  // The metric names the given trials (ids) reported, sorted.
  Result<std::vector<std::string>> metric_names(const std::vector<std::int64_t>& trials);
  // SQLite's PRAGMA data_version of this connection: it changes whenever another connection
  // (the scheduler) commits, so a reader polls it to learn that something changed.
  Result<std::int64_t> data_version();

  // --- leaderboard ---
  // Ranked trials of `study`; ties broken by trial number. Uses the index
  // (study, state, value) for the objective: milliseconds at 100,000 trials.
  Result<std::vector<LeaderboardEntry>> leaderboard(std::int64_t study,
                                                    const LeaderboardQuery& query);

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

using Transaction = Store::Transaction;

}  // namespace hpo::results
