// The agent's side of checkpoint transfer (scheduler/protocol.h, "Pause and resume" and
// "Checkpoint transfer"): one state machine per lease, driven from the agent's loop, so that
// heartbeats, reports and other trials go on while a checkpoint travels.
//  - Upload (a paused trial): its checkpoint directory is packed (base/pack.h) into one file
//    and hashed at once; pump() then sends PUT chunks from offset 0, at most kTransferCredit
//    of them unacknowledged. The PUT_ACK that says `done` ends it with FINISH paused carrying
//    `checkpoint` {bytes, sha256}; an empty directory, a pack that cannot be made or a PUT_ACK
//    `error` end it with FINISH paused without one (logged: the scheduler then resumes the
//    trial from an older checkpoint or from the start).
//  - Fetch (an ASSIGN with `resume`): pump() sends GETs, kTransferCredit at most unanswered;
//    each CHUNK is appended to the pack file in order. Once all `bytes` are there and their
//    SHA-256 matches, the pack is unpacked into the trial's resume directory and the trial
//    may start (a Fetched event). Any failure (a CHUNK error, a chunk out of order or past
//    the size, a digest mismatch, an unpack error, a file that cannot be written) is FINISH
//    interrupted with start_failed and an error naming the lease and the cause.
//  - A shared checkpoint directory (a WELCOME's `checkpoints`, once share() found its token
//    there): upload() writes the pack to <dir>/incoming/ itself and returns FINISH paused
//    {bytes, sha256, shared} at once; fetch() of a `resume` with a `path` reads the pack there
//    and returns Fetched at once. When either cannot, it logs why and uses the network.
//  - restart() starts every transfer again at offset 0: the agent calls it on each WELCOME,
//    since a (re)started scheduler has dropped uploads in progress and its answers to the
//    old connection are lost.
// Packing and hashing run in the caller (one pass over the checkpoint); the network part
// reads or writes one chunk per message. The agent's thread only.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "trainer/agent/agent.h"

namespace hpo::agent {

// A resumed trial whose checkpoint is unpacked in files.resume_from: start it now.
struct Fetched {
  protocol::Assign assign;
  TrialFiles files;
};
using TransferEvent = std::variant<protocol::Finish, Fetched>;

class Transfers {
 public:
  explicit Transfers(std::function<void(const std::string&)> log) : log_(std::move(log)) {}

  // The scheduler's shared checkpoint directory from its WELCOME (nullopt: none). It is used
  // when <dir>/shared-id holds the token and <dir>/incoming is there; the agent logs when
  // that changes.
  void share(const std::optional<protocol::SharedCheckpoints>& shared);
  bool shared() const { return shared_root_.has_value(); }

  // A trial ended paused (`paused`, without checkpoint): packs `checkpoint_dir` into `pack`
  // and starts its upload. Returns the FINISH to send at once when there is nothing to upload
  // or the pack went to the shared directory.
  std::optional<protocol::Finish> upload(protocol::Finish paused,
                                         const std::string& checkpoint_dir,
                                         const std::filesystem::path& pack);
  // Starts fetching `assign.resume` into `pack`, to unpack into files.resume_from. Returns
  // the failure FINISH at once when it cannot even start, and Fetched when the checkpoint was
  // read from the shared directory.
  std::optional<TransferEvent> fetch(const protocol::Assign& assign, TrialFiles files,
                                     const std::filesystem::path& pack);

  // The PUTs and GETs the credit allows now (send them only to a scheduler that WELCOMEd us).
  std::vector<protocol::Message> pump();
  // Uploads pump() gave up (their pack could not be read): FINISH paused without a checkpoint.
  std::vector<protocol::Finish> take_failed() { return std::exchange(failed_, {}); }
  // The answers; an event when they end a transfer. Answers for no transfer are ignored.
  std::optional<TransferEvent> on_put_ack(const protocol::PutAck& ack);
  std::optional<TransferEvent> on_chunk(const protocol::Chunk& chunk);

  void restart();
  // Forgets the lease's transfer (the scheduler dropped the lease); false when it had none.
  bool drop(const std::string& lease);
  // Ends every transfer now (the agent is stopping): uploads FINISH paused without a
  // checkpoint, fetches FINISH interrupted refused, both with `why` as the error.
  std::vector<protocol::Finish> abandon(const std::string& why);

  std::size_t count() const { return uploads_.size() + fetches_.size(); }
  // The checkpoint the lease's fetch brings (nullopt: no fetch for it).
  std::optional<protocol::CheckpointRef> fetching(const std::string& lease) const;

 private:
  struct Upload {
    protocol::Finish finish;
    std::filesystem::path pack;
    protocol::CheckpointRef ref;
    std::ifstream in;
    std::int64_t offset = 0;  // next byte to send
    int unacked = 0;
  };
  struct Fetch {
    protocol::Assign assign;
    TrialFiles files;
    std::filesystem::path pack;
    std::ofstream out;
    std::int64_t requested = 0;  // next offset to ask for
    std::int64_t received = 0;   // bytes written, in order
    int unanswered = 0;
  };
  protocol::Finish fetch_failed(const protocol::Assign& assign, const std::string& cause);
  std::optional<protocol::Finish> upload_shared(protocol::Finish& paused,
                                                const std::string& checkpoint_dir);
  std::optional<std::string> fetch_shared(const protocol::Assign& assign, const TrialFiles& files);
  std::optional<std::string> take_chunk(Fetch& f, const protocol::Chunk& chunk);
  std::optional<std::string> complete(Fetch& f);

  std::function<void(const std::string&)> log_;
  std::optional<std::filesystem::path> shared_root_;
  std::string shared_said_;  // the last thing share() logged, so it is said once
  std::map<std::string, Upload> uploads_;  // by lease
  std::map<std::string, Fetch> fetches_;   // by lease
  std::vector<protocol::Finish> failed_;
};

}  // namespace hpo::agent
