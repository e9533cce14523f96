// The scheduler's side of checkpoint transfer (protocol.h: PUT and GET): each PUT chunk goes
// into the checkpoint store (checkpoints.h) and is answered with a PUT_ACK; each GET is
// answered with a CHUNK of the trial's stored checkpoint. The daemon fences both by lease
// first (only the live lease's holder may PUT or GET) and keys them by (study id, trial).
#pragma once

#include "scheduler/checkpoints.h"
#include "scheduler/protocol.h"

namespace hpo::scheduler {

class Transfers {
 public:
  explicit Transfers(CheckpointStore store) : store_(std::move(store)) {}

  // Offset 0 starts (or restarts) the trial's upload; the chunk that reaches `total`
  // commits it (size and SHA-256 checked). Any refusal drops the upload and says why in
  // PutAck::error, with next = 0.
  protocol::PutAck put(CheckpointKey key, const protocol::Put& m);
  // The chunk at m.offset of the trial's checkpoint (empty data at its end), or an error.
  protocol::Chunk get(CheckpointKey key, const protocol::Get& m) const;

  CheckpointStore& store() { return store_; }

 private:
  CheckpointStore store_;
};

}  // namespace hpo::scheduler
