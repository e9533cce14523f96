// Checkpoints of one training run (DIR/checkpoint.bin): where the run stands, its config, and
// every parameter tensor with its solver state.
//
// Layout: the 8 bytes "HPOCKPT1", the header length (8 bytes, host order), the JSON header
// {"config", "epoch", "step_in_epoch", "global_step", "loss_sum", "correct", "seen", "elapsed",
// "params": [{"name", "count", "trainable"}]}, then each parameter's float tensors (value, then
// the solver's state1 and state2 where present) in net order, then the 8 bytes "HPOEND01".
//
// The reader trusts nothing in the file: a header length beyond the file, a header that is not
// bounded JSON (base/json.h), a missing or mistyped field, a negative position or count is an
// Error naming the file and the field; nothing is allocated from a length the file cannot hold.
#pragma once

#include <cstdint>
#include <istream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/error.h"
#include "trainer/nn/net.h"
#include "trainer/nn/spec.h"

namespace hpo::nn {

// Where a run stands.
struct Position {
  int64_t epoch = 0;          // epochs completed
  int64_t step_in_epoch = 0;  // steps of the current epoch completed
  int64_t global_step = 0;
  double loss_sum = 0;  // over the current epoch's completed steps
  int64_t correct = 0, seen = 0;
  double elapsed = 0;  // seconds of earlier runs (resumed ones)
};

struct CheckpointHeader {
  nlohmann::json config;  // the config the run was started with (TrainConfig::source)
  Position position;
  std::vector<int64_t> param_counts;  // floats in each parameter tensor, in net order
  uint64_t data_offset = 0;           // where the tensors start in the file
};

// A header longer than this is not an hpo checkpoint (a config and a few hundred parameter names).
inline constexpr uint64_t kMaxCheckpointHeaderBytes = 16u << 20;

// Reads the magic, the header length and the header from `in`, the start of a file of
// `file_size` bytes named `path`. Errors start with `path`.
Result<CheckpointHeader> read_checkpoint_header(std::istream& in, uint64_t file_size,
                                                const std::string& path);

// Writes DIR/checkpoint.bin (through a temporary file and a rename, so a crash leaves the old one).
Status save_checkpoint(const std::string& dir, const TrainConfig& cfg, Net& net,
                       const Position& pos);

// Loads DIR/checkpoint.bin into `net` and `pos`: false when there is none. A checkpoint of
// another config (net, data other than data.dir, seed, optimizer type, batch size, epochs) or
// another net shape is refused; the solver's other settings may differ (PBT's explore), and
// `changes`, when given, says which did ("" when none).
Result<bool> load_checkpoint(const std::string& dir, const TrainConfig& cfg, Net& net,
                             Position& pos, std::string* changes = nullptr);

}  // namespace hpo::nn
