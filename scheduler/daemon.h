// The scheduler daemon: one single-threaded poll loop over a ZeroMQ ROUTER,
// the only writer of the results store (DESIGN.md "Data flow", "Wire protocol").
//
// Contract
// - Each loop turn (turn()) reads every waiting message (up to max_batch),
//   handles it, expires agents and recovery windows, leases trials to free
//   slots, and writes all of it in ONE store transaction; replies are sent
//   only after that transaction commits, so an agent never holds a lease the
//   file does not know.
// - Leases and fencing: every ASSIGN is (trial, attempt, lease id); a REPORT
//   or FINISH that does not match a live lease of the sending agent is logged
//   and ignored (answered STOP / ACK), never counted.
// - Liveness: an agent silent for liveness * heartbeat_ms is lost: its trials
//   become INTERRUPTED and are requeued (same config, attempt + 1), and any
//   later message from it is answered ERROR hello_required.
// - Start failures (FINISH start_failed): the trial is requeued uncharged;
//   an agent that fails drain_after_start_failures trials in a row is drained
//   (no more ASSIGNs; logged "agent X drained: ...", an "agent_drained" event,
//   agents.drained in the store).
// - Study end: once a study reaches its target or spends its time budget,
//   its QUEUED trials are CANCELLED and its running ones get DECISION STOP
//   and end CANCELLED, each with the reason as its error.
// - Shutdown hands running trials over (hand_over_on_stop): after the grace
//   they stay RUNNING in the store, and their agents, which keep running them,
//   re-announce them to the next scheduler. We keep the work rather than stop
//   it: a restart (an upgrade, a moved host) should cost nothing, and a
//   scheduler that never comes back costs nothing more than one that crashed.
// - Recovery: on start, RUNNING trials are marked INTERRUPTED and kept aside
//   for recovery_window_s seconds, and so are INTERRUPTED ones that still hold
//   their lease (a restart inside the window of the one before, or a stop
//   that left them to their agents); one an agent re-announces in HELLO (same
//   study, trial, attempt, lease) is re-adopted (RUNNING again, same lease),
//   the rest are requeued when the window closes. They keep their place in
//   max_parallel meanwhile, so max_parallel holds across restarts.
// - Fair sharing: free slots go round-robin over the studies that can lease.
// - Control: SUBMIT {study} (no HELLO needed; a submitter key when keys are on)
//   adds or updates a study (`hpo submit`), answered OK or ERROR.
// - Security (keys.h, zap.h): with server_keys the ROUTER is a CURVE server and
//   only clients whose keys are on the lists connect. Every message is checked
//   against its key's role: SUBMIT needs a submitter key, everything else an
//   agent key; a refused one writes nothing and is answered ERROR (fatal for
//   agent messages: the agent stops). A lease is bound to the key that took it.
//   A reload (options.reload_keys, SIGHUP) replaces the lists; a connected agent
//   whose key is gone is dropped (its trials requeued, an "agent_revoked"
//   event) and told so with a fatal ERROR. Without server_keys, create() refuses
//   a bind that is not loopback-only unless `insecure`, which is logged loudly
//   at start and every minute.
// - One message is one unit: its store writes go in a savepoint inside the
//   turn's transaction and its replies are held with the turn's. A message
//   that cannot be decoded, is over a limit, or whose handling fails (an
//   Error or an exception) is logged with its type and peer, its writes and
//   replies are undone, and the peer is answered ERROR naming why; the loop
//   goes on with the next message. Handlers check their input before they
//   change anything, so what is undone in the store was not yet done in
//   memory. A FINISH that cannot be recorded still ends its trial (FAILED,
//   with why) and is ACKed, so that the agent does not resend it forever.
//   ERROR answers to bad messages and unknown peers are capped per second
//   (max_refusals_per_s); past the cap they are dropped, with a log line.
// - Fatal (turn() returns the Error; the process exits, and a restart
//   recovers from the file, which is always consistent): the store itself
//   failing (code kIo: disk full, I/O error, corruption, the transaction lost),
//   a commit that fails, and socket errors other than EINTR/EAGAIN.
// - The agents rows tell `hpo agents` the truth while the loop runs, at a bounded cost
//   (agent_records.h): state on each change (live, draining, left, lost, revoked) and
//   last_seen swept at most every few seconds, never a write per heartbeat.
// - Bounds against floods: at most max_agents connected agents; an agent
//   name held by a live connection of another process (other host or pid)
//   is refused rather than taken over; a repeated HELLO on the same
//   connection adds no event; agents rows and agent_* events beyond
//   agent_records are pruned (those of connected agents are kept).
//
// Threads: one thread creates the Daemon and calls everything; `stop` may be
// set from a signal handler.
//
// Inside, the loop asks its pieces, each a header of its own: agents.h (the
// agent registry and liveness), agent_records.h (what the agents rows say), leases.h (leases, fencing, the recovery
// window), dispatcher.h (free slots to trials), studies.h (the loaded studies
// and SUBMIT), outcomes.h (what REPORT and FINISH write), outbox.h (replies
// sent after the commit, heartbeats).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "base/clock.h"
#include "base/error.h"
#include "results/store.h"
#include "scheduler/keys.h"
#include "scheduler/zap.h"
#include "search/study.h"

namespace hpo::scheduler {

struct DaemonOptions {
  std::string bind = "tcp://*:5555";  // ROUTER endpoint; "tcp://127.0.0.1:*" picks a port
  int heartbeat_ms = 1000;            // heartbeat interval told to agents in WELCOME
  int liveness = 5;                   // heartbeats missed before an agent is lost
  double recovery_window_s = -1;      // re-adoption window after start; < 0: 2 * liveness beats
  double shutdown_grace_s = 10;       // on stop: how long to wait for running trials
  bool exit_when_done = false;        // run() returns once every study is finished
  std::size_t max_batch = 4096;       // messages handled per loop turn at most
  std::size_t max_agents = 4096;      // connected agents at most; a HELLO past it is refused
  std::size_t agent_records = 10000;  // agents rows and agent_* events kept in the store
                                      // (besides those of connected agents); older ones pruned
  int max_refusals_per_s = 1000;      // ERROR answers to bad messages and unknown peers per
                                      // second at most; past it they are dropped unanswered
  bool verbose = false;               // log every lease and outcome
  // On stop, trials still running after the grace stay RUNNING in the store: their agents
  // keep running them and re-announce them to the next scheduler, which re-adopts them in its
  // recovery window (no work lost). false: they are recorded INTERRUPTED (`hpo run`, whose
  // agents stop with it, so nobody would re-announce them).
  bool hand_over_on_stop = true;
  // Trials in a row an agent fails to start (FINISH start_failed) before it is drained.
  int drain_after_start_failures = 3;
  // The scheduler's CURVE key pair; none: a plaintext socket (see `insecure`).
  std::optional<Keypair> server_keys;
  // Who may connect, and as what (read at create() and on each reload).
  KeySources keys;
  // Allows a plaintext bind that is not loopback-only (logged as a warning every minute).
  bool insecure = false;
  // When set (a SIGHUP handler may set it), the next turn reloads `keys` and clears it.
  std::atomic<bool>* reload_keys = nullptr;
  // Where paused trials' checkpoints are kept (checkpoints.h), and how many bytes at most;
  // "": none, and PUT and GET are answered with an error.
  std::string checkpoint_dir;
  std::uint64_t checkpoint_max_bytes = std::uint64_t{10} << 30;
  // checkpoint_dir is the same directory, at the same path, on every agent's machine:
  // agents that see it (protocol.h, "A shared checkpoint directory") skip PUT and GET.
  bool checkpoint_shared = false;
};

class Daemon {
 public:
  // Binds the ROUTER, recovers the store (RUNNING -> INTERRUPTED, kept for
  // re-adoption) and loads every study whose status is not "finished".
  // `context`, `clock` must outlive the Daemon. Errors: bind failure, store errors,
  // a stored study whose spec no longer parses.
  static Result<std::unique_ptr<Daemon>> create(zmq::context_t& context, results::Store store,
                                                DaemonOptions options, const Clock& clock);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Adds a study, or continues the stored one of that name: its spec is
  // replaced when different (e.g. a raised budget) and a finished study runs
  // again if the new budget allows. Errors: a store error. Writes in its own
  // transaction; call between turns.
  Status add_study(const search::StudySpec& spec);

  // The endpoint actually bound (with the port chosen for ":*").
  std::string endpoint() const;

  // One loop turn: waits up to `max_wait` for a message (less when a timer is
  // due), then does all the work described above. Errors are fatal.
  Status turn(std::chrono::milliseconds max_wait);

  // Turns until `stop` (then the shutdown of the contract: no new leases, wait
  // up to shutdown_grace_s for running trials, hand the rest over)
  // or, with exit_when_done, until every study is finished.
  Status run(const std::atomic<bool>& stop);

  // Stops leasing; running trials may still report and finish.
  void begin_shutdown();
  // Marks unfinished studies "interrupted"; live leases stay RUNNING for the
  // next scheduler (hand_over_on_stop) or are recorded INTERRUPTED.
  Status finish_shutdown();

  // Every loaded study finished (true when there is none).
  bool all_done() const;

  // For tests, the benchmark and logs.
  struct Stats {
    std::int64_t agents = 0;        // connected now
    std::int64_t leases = 0;        // live leases now
    std::int64_t recovering = 0;    // trials awaiting re-adoption now
    std::int64_t assigned = 0;      // ASSIGNs sent
    std::int64_t completed = 0;     // FINISH counted (any outcome)
    std::int64_t ignored = 0;       // REPORT/FINISH fenced off
    std::int64_t bad_messages = 0;  // dropped by the decoder (or over a size limit)
    std::int64_t refused = 0;       // decoded, but handling failed and was rolled back
    std::int64_t agents_lost = 0;
    std::int64_t readopted = 0;
    std::int64_t start_failures = 0;  // FINISH start_failed counted
    std::int64_t agents_drained = 0;
    std::int64_t handshakes_refused = 0;  // by the ZAP handler (key on no list)
    std::int64_t agents_revoked = 0;      // dropped because a reload removed their key
    std::int64_t turns = 0;
  };
  Stats stats() const;

 private:
  Daemon();
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace hpo::scheduler
