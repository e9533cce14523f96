// The wire protocol between the scheduler (ZeroMQ ROUTER) and its agents
// (DEALER), and the control client `hpo submit` (DEALER). This is the ONE
// header of scheduler/ that trainer/ includes (DESIGN.md "Wire protocol").
//
// A message is three ZeroMQ frames: [version "hpo/1", type, JSON object body]
// (the ROUTER adds the peer's routing id in front; recv() strips it).
//
//   agent -> scheduler                      scheduler -> agent
//   HELLO  {agent, host, slots, gpus, pid,   WELCOME {scheduler, heartbeat_ms, liveness,
//           running: [RunningTrial]}                  adopted: [lease], stop: [lease],
//                                                     checkpoints?: {dir, token}}
//   READY  {free_slots, draining}            ASSIGN  {study, trial, attempt, lease, config, spec,
//                                                     resume?, pausable?}
//   REPORT {study, trial, attempt, lease,    DECISION {trial, attempt, lease,
//           step, metrics: {name: number}}            decision: "CONTINUE" | "STOP" | "PAUSE"}
//   FINISH {study, trial, attempt, lease,    ACK     {trial, attempt, lease}
//           outcome: ok|failed|pruned|interrupted|paused,
//           metrics, error, log_tail,
//           start_failed?, refused?}
//   HEARTBEAT {}                             HEARTBEAT {}
//   BYE {}                                   ERROR   {message, hello_required}
//   PUT {study, trial, attempt, lease,       PUT_ACK {lease, next, done, error?}
//        offset, total, sha256, data}
//   GET {study, trial, attempt, lease,       CHUNK   {lease, offset, total, data, error?}
//        offset}
//   control client -> scheduler: SUBMIT {study: <study file>} -> OK {study, id} | ERROR {message}
//
// Semantics the two sides rely on
// - Any message counts as a heartbeat (ZeroMQ guide ch. 4, paranoid pirate).
//   Each side sends HEARTBEAT every heartbeat_ms when it has sent nothing
//   else; a peer silent for liveness * heartbeat_ms is gone.
// - A lease is the triple (trial, attempt, lease id) of one ASSIGN. REPORT and
//   FINISH carry it; the scheduler ignores (and logs) any that does not match a
//   live lease, so nothing is counted twice.
// - Slots: an agent has `slots` from HELLO; each ASSIGN takes one, each FINISH
//   gives it back. READY re-states the free count (after WELCOME, and when a
//   trial the scheduler dropped has ended) so both sides agree; READY with
//   draining = true says the agent is shutting down and wants no more work.
// - FINISH is delivered at least once: the agent keeps it until ACKed and
//   re-sends it after a reconnect; the scheduler ACKs every FINISH, counted
//   or not.
// - A trial that never ran on the agent comes back as FINISH interrupted with
//   one of two optional flags (absent = false; an older peer omits or ignores
//   them): `start_failed` when the agent could not start it (its trial
//   directory, the program, fork/exec: the agent's environment, not the
//   config; `error` says why), `refused` when the agent had no free slot or
//   was stopping. Neither is charged to the trial: the scheduler requeues it.
//   Start failures count against the agent: after a few in a row the
//   scheduler drains it (sends it no more trials). A config the agent cannot
//   even turn into a command (a bad placeholder) is an ordinary `failed`.
// - A DECISION STOP may come unasked: the study ended (target reached, time
//   spent) and the trial is no longer wanted; the agent stops it as for a
//   pruner's STOP.
// - A scheduler that does not know the sender (after a restart, or after it
//   declared the agent lost) answers ERROR with hello_required = true; the
//   agent then says HELLO again with its running trials. WELCOME lists which
//   leases the scheduler re-adopted; the agent stops the ones in `stop`.
// - A message the scheduler cannot take (not decodable, over a limit below,
//   a refused HELLO or SUBMIT, or one whose handling failed) is answered
//   ERROR with hello_required = false and a message that names the type and
//   the limit or field; nothing of it is recorded. The agent logs such an
//   ERROR. It never sends a FINISH over the limit (fit_to_limit cuts it
//   first), and a FINISH the scheduler fails to record is still ACKed after
//   its ERROR (the trial FAILED), so a FINISH is never re-sent forever.
// - HELLO: one connection, one agent name. A name held by a live connection
//   of another process (host, pid) is refused; the same process on a new
//   connection takes its leases over.
// - Pause and resume (multi-fidelity schedules, issue 14). DECISION "PAUSE" asks the agent
//   to pause the trial: it stops the trial the way its kind saves a checkpoint (a command
//   trial gets SIGTERM with $HPO_PAUSE=1 in its environment and saves to
//   $HPO_CHECKPOINT_DIR), packs the checkpoint directory (base/pack.h), uploads it with PUT,
//   and then sends FINISH outcome "paused" with `checkpoint` {bytes, sha256} naming the
//   upload the scheduler acknowledged as done (no `checkpoint`: nothing was saved, and a
//   resume starts afresh). The scheduler resumes a paused trial as a new attempt: its ASSIGN
//   carries `resume` {bytes, sha256}; the agent fetches the pack with GET, checks the digest,
//   unpacks it and starts the trial with $HPO_RESUME_FROM set.
// - Checkpoint transfer (the ZeroMQ guide's chapter 7 file transfer, credit-based). A PUT
//   carries up to kMaxChunkBytes of the pack, base64 in `data`, at `offset` of `total`
//   bytes whose SHA-256 is `sha256`; offset 0 starts (or restarts) the upload. The
//   scheduler answers each PUT with PUT_ACK: `next` is the bytes it holds, `done` that the
//   pack is complete and checked; an `error` (an offset out of order, a digest that does not
//   match, the checkpoint store full) drops the upload, and the agent may start again at 0.
//   The agent keeps at most kTransferCredit PUTs unacknowledged. GET asks for the chunk at
//   `offset` of the checkpoint of the trial its `lease` resumes; CHUNK answers with up to
//   kMaxChunkBytes (empty `data` at the end), or an `error`. The agent keeps at most
//   kTransferCredit GETs unanswered. Both are fenced like REPORT: only the live lease's
//   holder may PUT or GET.
// - A shared checkpoint directory (`hpo serve --checkpoint-shared`): WELCOME carries
//   `checkpoints` {dir, token}. An agent that finds `token` in <dir>/shared-id writes a paused
//   trial's pack to <dir>/incoming/<sha256>.pack (a temporary name, fsync, rename) and sends
//   FINISH paused with `checkpoint` {bytes, sha256, shared: true}, no PUT; the scheduler
//   checks the size and digest and moves it into its store. A resumed ASSIGN's `resume` then
//   also names `path`, which such an agent reads directly (digest checked). An agent that
//   cannot write or read there uses PUT or GET instead; a shared pack the scheduler refuses
//   (size, digest, the store full) is as an upload it refused: the trial resumes from what
//   the store holds. An agent that does not find the token uses PUT and GET throughout.
//
// The decoder never throws and never asserts: every malformed frame set is an
// Error naming the message type and the field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>
#include <zmq.hpp>

#include "base/error.h"

namespace hpo::scheduler::protocol {

inline constexpr std::string_view kVersion = "hpo/1";

// --- limits. A message over one is refused whole with an Error that names the limit and the
// message type; the scheduler answers it with ERROR (see "Semantics" above).
// Largest message body accepted (1 MiB).
inline constexpr std::size_t kMaxBodyBytes = 1 << 20;
// Largest message, all frames together (the body and a little for version and type).
inline constexpr std::size_t kMaxMessageBytes = kMaxBodyBytes + 4096;
// Largest single frame ZeroMQ lets in at all (ZMQ_MAXMSGSIZE of the scheduler's socket). A
// frame over it makes libzmq close the connection before any of it is read, so no ERROR can
// answer it. libzmq also queues a multipart message whole until its last frame has arrived;
// receive() then reads the frames past the third one by one and drops them.
inline constexpr std::size_t kMaxFrameBytes = 4 * kMaxBodyBytes;
// Frames of one message: version, type, body.
inline constexpr std::size_t kFrameCount = 3;
// Field limits: slots of one agent (HELLO.slots, READY.free_slots); bytes of an agent name, host
// or lease id; entries and bytes of HELLO.gpus. Trial numbers, attempts, steps and pids are
// integers from 0 to 2^53 (exact in a double).
inline constexpr int kMaxSlots = 4096;
inline constexpr std::size_t kMaxNameBytes = 256;
inline constexpr std::size_t kMaxGpus = 256;
inline constexpr std::size_t kMaxGpusBytes = 64 * 1024;
inline constexpr std::int64_t kMaxInteger = std::int64_t{1} << 53;
// Checkpoint bytes in one PUT or CHUNK (before base64, which makes them 4/3 larger), and how
// many of them may be on the way at once.
inline constexpr std::size_t kMaxChunkBytes = 256 * 1024;
inline constexpr int kTransferCredit = 4;

// A trial an agent holds: running, or finished with its FINISH not yet ACKed.
struct RunningTrial {
  std::string study;
  std::int64_t trial = 0;
  std::int64_t attempt = 0;
  std::string lease;
  bool finished = false;  // FINISH pending (will be re-sent after WELCOME)
};

struct Hello {
  std::string agent;  // stable agent name (one per process)
  std::string host;
  int slots = 1;
  nlohmann::json gpus = nlohmann::json::array();
  std::int64_t pid = 0;
  std::vector<RunningTrial> running;
};

// The scheduler's checkpoint directory, when it is shared: the same directory at `dir` on
// every machine (NFS, a cluster file system). `token` is what dir/shared-id holds: an agent
// whose dir/shared-id says the same sees the scheduler's directory and uses it.
struct SharedCheckpoints {
  std::string dir;    // absolute
  std::string token;  // 32 lowercase hex digits
  bool operator==(const SharedCheckpoints&) const = default;
};

struct Welcome {
  std::string scheduler;  // instance id of this scheduler run
  int heartbeat_ms = 1000;
  int liveness = 5;
  std::vector<std::string> adopted;  // leases re-adopted from HELLO.running
  std::vector<std::string> stop;     // leases the agent must stop (not counted any more)
  std::optional<SharedCheckpoints> checkpoints{};  // set: checkpoints may skip the network
};

struct Ready {
  int free_slots = 0;
  bool draining = false;  // the agent is stopping: no more work, even as slots free up
};

// A packed checkpoint directory (base/pack.h) as the scheduler's checkpoint store holds it.
// Through a shared directory (Welcome::checkpoints): FINISH paused says `shared` when the
// agent wrote the pack to <dir>/incoming/<sha256>.pack instead of uploading it; an ASSIGN's
// `resume` names the pack's `path` under <dir> (relative, without "..") for an agent that
// reads it there instead of fetching it.
struct CheckpointRef {
  std::int64_t bytes = 0;
  std::string sha256;  // 64 lowercase hex digits
  bool shared = false;
  std::string path{};
  bool operator==(const CheckpointRef&) const = default;
};

// The file under <dir>/incoming/ of a pack an agent writes for the scheduler to adopt: its
// digest and a digest of the lease, so two trials with identical packs never collide.
std::string shared_pack_name(const std::string& sha256, const std::string& lease);

struct Assign {
  std::string study;
  std::int64_t trial = 0;  // trial number within the study
  std::int64_t attempt = 0;
  std::string lease;
  nlohmann::json config;  // the sampled config
  nlohmann::json spec;    // the study's "trial" object (what to run)
  std::optional<CheckpointRef> resume{};  // a paused trial's checkpoint to start from
  // The study's trial scheduler may PAUSE this trial: the agent tells the trial so
  // ($HPO_PAUSE=1), so that it saves a checkpoint when it is stopped.
  bool pausable = false;
};

using Metrics = std::map<std::string, double>;

struct Report {
  std::string study;
  std::int64_t trial = 0;
  std::int64_t attempt = 0;
  std::string lease;
  std::int64_t step = 0;
  Metrics metrics;
};

struct Decision {
  std::int64_t trial = 0;
  std::int64_t attempt = 0;
  std::string lease;
  bool stop = false;   // "STOP" on the wire
  bool pause = false;  // "PAUSE"; neither: "CONTINUE"
};

enum class Outcome { kOk, kFailed, kPruned, kInterrupted, kPaused };
std::string_view to_string(Outcome outcome);
std::optional<Outcome> outcome_from_string(std::string_view name);

struct Finish {
  std::string study;
  std::int64_t trial = 0;
  std::int64_t attempt = 0;
  std::string lease;
  Outcome outcome = Outcome::kOk;
  Metrics metrics;  // final metrics (the objective among them when ok)
  std::string error;
  std::string log_tail;
  bool start_failed = false;  // interrupted: it could not start on this agent (see above)
  bool refused = false;       // interrupted: the agent had no slot or was stopping
  std::optional<CheckpointRef> checkpoint{};  // paused: the upload the scheduler holds
};

struct Ack {
  std::int64_t trial = 0;
  std::int64_t attempt = 0;
  std::string lease;
};

struct Heartbeat {};
struct Bye {};

struct Submit {
  nlohmann::json study;  // a study file's JSON object
};

struct Ok {
  nlohmann::json body = nlohmann::json::object();
};

struct ErrorReply {
  std::string message;
  bool hello_required = false;
  // The scheduler will take nothing more from this agent (its key lost the agent role): the
  // agent stops its trials and exits. Optional on the wire (false when absent).
  bool fatal = false;
};

// A chunk of a paused trial's checkpoint, agent to scheduler.
struct Put {
  std::string study;
  std::int64_t trial = 0;
  std::int64_t attempt = 0;
  std::string lease;
  std::int64_t offset = 0;
  std::int64_t total = 0;
  std::string sha256;  // of all `total` bytes
  std::string data;    // the bytes (base64 on the wire), at most kMaxChunkBytes
};

struct PutAck {
  std::string lease;
  std::int64_t next = 0;  // bytes the scheduler holds
  bool done = false;      // complete and checked
  std::string error;      // non-empty: the upload was dropped, and why
};

// A request for the chunk at `offset` of the checkpoint the lease's trial resumes from.
struct Get {
  std::string study;
  std::int64_t trial = 0;
  std::int64_t attempt = 0;
  std::string lease;
  std::int64_t offset = 0;
};

struct Chunk {
  std::string lease;
  std::int64_t offset = 0;
  std::int64_t total = 0;
  std::string data;   // at most kMaxChunkBytes; empty at or past the end
  std::string error;  // non-empty: there is no such checkpoint (or it cannot be read)
};

using Message = std::variant<Hello, Welcome, Ready, Assign, Report, Decision, Finish, Ack,
                             Heartbeat, Bye, Submit, Ok, ErrorReply, Put, PutAck, Get, Chunk>;

// The wire name of a message's type ("HELLO", ...).
std::string_view type_name(const Message& message);

// A frame as it may appear in a log line or an ERROR: at most 32 bytes (then "..."), and
// anything but printable ASCII as '?' (a hostile peer's bytes must not reach a terminal).
std::string shown_frame(std::string_view frame);

// The three frames of `message`: version, type, JSON body.
struct Frames {
  std::string version;
  std::string type;
  std::string body;
};
Frames encode(const Message& message);

// Decodes [version, type, body]. Errors: wrong frame count, unknown version,
// unknown type, body over kMaxBodyBytes, body not a JSON object, a missing or
// mistyped field ("REPORT: field 'step': missing"), a value out of its range
// ("HELLO: field 'slots': out of range [0, 4096] (got -1)"). Never throws.
Result<Message> decode(std::span<const std::string_view> frames);

// Makes `finish` fit in kMaxBodyBytes once encoded, so that the scheduler can take it: the
// log tail is cut from the front (its last lines kept) and, if that is not enough, final
// metrics are dropped (last names first); a line at the start of log_tail says what was cut.
// Returns a description of the cut ("" when it fitted as it was).
std::string fit_to_limit(Finish& finish);

// --- socket helpers (cppzmq). They catch zmq::error_t and return it as an Error.

// Sends `message` on a DEALER (no routing id) or, with `routing_id`, on a ROUTER.
// Never blocks: a full pipe, or a DEALER with no connection yet, is an Error with code kBusy
// (the message is dropped).
Status send(zmq::socket_t& socket, const Message& message,
            std::optional<std::string_view> routing_id = std::nullopt);

struct Received {
  std::string routing_id;     // ROUTER only; empty on a DEALER
  std::string key;            // the peer's CURVE public key (Z85), the User-Id its ZAP
                              // handshake gave; empty on a plaintext socket
  Result<Message> message;    // a decode error for a bad frame set
  bool socket_error = false;  // the error is the socket's, not the peer's message
};

// Receives one message without blocking; nullopt when none is waiting ("no
// message yet" is not an error). `router` strips the routing id frame. A
// message over kMaxMessageBytes or with more than kFrameCount frames is read
// to its end, one frame at a time (only the first frames are kept), and comes
// back as an Error naming its type and the limit. A socket error (other than
// EAGAIN) comes back as a Received with an Error and socket_error set.
std::optional<Received> receive(zmq::socket_t& socket, bool router);

}  // namespace hpo::scheduler::protocol
