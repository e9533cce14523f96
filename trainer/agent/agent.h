// The trainer agent: the client side of the wire protocol (scheduler/protocol.h).
// One agent process connects a DEALER to the scheduler, says HELLO with its
// slots and the trials it still holds, runs what it is ASSIGNed through a
// TrialRunner, forwards reports, keeps every FINISH until it is ACKed, sends
// heartbeats, and reconnects with back-off when the scheduler goes quiet
// (ZeroMQ guide ch. 4, "paranoid pirate"), re-announcing its trials so that a
// restarted scheduler re-adopts them instead of running them again. It pauses
// a trial on DECISION PAUSE and uploads its checkpoint before the FINISH, and
// fetches a resumed trial's checkpoint before starting it (transfer.h), without
// holding up the rest of its loop.
//
// Threads: an Agent runs on the thread that calls run(); nothing else may
// touch it, except `stop` (an atomic flag) that any thread or a signal
// handler may set. Several Agents may share one zmq::context_t (the
// dispatch benchmark runs 64 of them in one process).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>
#include <zmq.hpp>

#include "base/error.h"
#include "scheduler/keys.h"
#include "scheduler/protocol.h"

namespace hpo::agent {

namespace protocol = hpo::scheduler::protocol;

// What a running trial produced since the last poll.
using TrialEvent = std::variant<protocol::Report, protocol::Finish>;

// Why a trial is stopped: the scheduler's STOP (the trial ends PRUNED), the
// agent shutting down / the scheduler dropping the lease (it ends INTERRUPTED),
// or the scheduler's PAUSE (it ends PAUSED, having saved its checkpoint the way
// its kind does: a child gets SIGTERM, a builtin trial's state is already saved).
enum class StopReason { kPruned, kInterrupted, kPaused };

// Where a trial keeps its checkpoint (trial_spec.h has the contract): the agent chooses
// both directories, under its workdir, and packs checkpoint_dir when the trial is paused.
struct TrialFiles {
  std::string checkpoint_dir;  // absolute; the runner creates it empty ("": none)
  std::string resume_from;     // the unpacked checkpoint of a resumed trial ("": a fresh start)
  bool pausable = false;       // ASSIGN.pausable: a SIGTERM may be a pause ($HPO_PAUSE=1)
};

// Runs the trials of one agent. The agent calls it from its one thread only.
// Contract:
//  - start() takes ownership of one lease, with the directories in `files`. An Error means the trial could not
//    start (start must not also emit a Finish for it). Its code says whose
//    fault: ErrorCode::kIo = this agent's (the trial directory cannot be
//    made, the program cannot be executed, fork fails): the agent FINISHes it
//    interrupted with start_failed, and the scheduler runs it elsewhere; any
//    other code = the trial's own (a bad spec or placeholder): FINISH failed.
//  - Every started lease eventually yields exactly one Finish from poll(),
//    carrying the assign's (study, trial, attempt, lease); Reports carry the
//    same fields.
//  - stop() asks a trial to end soon; its Finish (outcome pruned, interrupted
//    or paused per `reason`, or whatever it ended with first: a trial that
//    exited 0 with its results before the pause reached it ends ok) comes from
//    a later poll(). A paused Finish carries no checkpoint: the agent uploads
//    files.checkpoint_dir and adds it. Stopping an unknown or finished lease does nothing.
//  - poll() never blocks. The agent sleeps in zmq::poll between calls, for at
//    most wait_hint(), and wakes early when one of wait_fds() is readable
//    (e.g. a child's stdout pipe), so a runner with children returns its pipes
//    here and a cooperative runner returns a deadline.
class TrialRunner {
 public:
  virtual ~TrialRunner() = default;
  virtual Status start(const protocol::Assign& assign, const TrialFiles& files) = 0;
  virtual void stop(const std::string& lease, StopReason reason) = 0;
  virtual std::vector<TrialEvent> poll() = 0;
  virtual std::chrono::milliseconds wait_hint() const { return std::chrono::milliseconds(100); }
  virtual std::vector<int> wait_fds() const { return {}; }
  // The agent itself was told to stop (SIGTERM): from now on a trial that dies of a signal
  // that ends jobs (SIGTERM, SIGINT, SIGHUP, SIGKILL) without the runner having sent it ends
  // interrupted, not failed. A batch system ending the job (Slurm's scancel, or --signal
  // before its time limit) signals every process of it, the trials with the agent.
  virtual void agent_stopping() {}
  // Leases started and not yet finished.
  virtual std::size_t running() const = 0;
};

struct AgentOptions {
  std::string endpoint = "tcp://127.0.0.1:5555";  // the scheduler's ROUTER
  std::string name;                               // agent id; default "<host>-<pid>"
  // Root of the trial directories (the ProcessRunner's workdir): a trial's checkpoint and
  // resume directories, and the packs that carry them, are <trial dir>/checkpoint, /resume,
  // /checkpoint.pack and /resume.pack (trial_spec.h, trial_dir()).
  std::string workdir = "hpo-work";
  int slots = 1;                                  // trials run at once
  nlohmann::json gpus = nlohmann::json::array();  // advertised in HELLO (issue 6)
  int heartbeat_ms = 1000;                        // until WELCOME says otherwise
  int liveness = 5;             // heartbeats missed before the scheduler counts as gone
  int reconnect_min_ms = 100;   // first back-off after the scheduler went quiet
  int reconnect_max_ms = 4000;  // back-off doubles up to this, and to the liveness window
  double shutdown_grace_s = 5;  // on stop: how long running trials may take to end
  bool verbose = false;         // log every assignment
  // Keys for a CURVE scheduler (scheduler/keys.h); none: plaintext. With keys, the agent
  // proves itself with its pair and accepts only the scheduler holding `keys->server`.
  std::optional<scheduler::ClientKeys> keys;
  // Handshakes that fail in a row, before this agent ever got through, after which run()
  // gives up with the reason (a wrong key does not fix itself). 0: never give up.
  int give_up_after_handshake_failures = 3;
};

class Agent {
 public:
  // `runner` must not be null. `context` outlives the Agent.
  Agent(zmq::context_t& context, AgentOptions options, std::unique_ptr<TrialRunner> runner);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Exception boundary: an exception out of one message's handling or one
  // trial's start or poll is caught in the loop, logged with its source
  // (message type, study#trial, lease); a trial whose start threw ends FAILED
  // with the reason, and the agent goes on.
  //
  // Runs until `stop` becomes true, then stops taking work, lets running
  // trials end (up to shutdown_grace_s, then stops them as INTERRUPTED),
  // delivers their FINISH messages (waiting up to one second for ACKs), says
  // BYE and returns. Once `drain` (when given) becomes true, it takes no new work (READY
  // draining), lets running trials end however long they take, and says BYE and returns
  // once each one's FINISH is ACKed; a stop during a drain takes over (winddown.h). Errors: a bad endpoint; give_up_after_handshake_failures failed
  // handshakes before any succeeded (the message names the likely cause: a wrong key); a
  // fatal ERROR from the scheduler (its key was revoked: its trials are stopped first).
  Status run(const std::atomic<bool>& stop, const std::atomic<bool>* drain = nullptr);

  // Counters for tests and the benchmark (read after run() returns).
  struct Stats {
    std::int64_t assigned = 0;
    std::int64_t finished = 0;
    std::int64_t reconnects = 0;
  };
  Stats stats() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Default agent name: "<hostname>-<pid>".
std::string default_agent_name();

}  // namespace hpo::agent
