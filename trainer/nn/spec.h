// The trainer config (what `hpo train --config FILE` reads; native trials sample into it), parsed
// and checked before anything is allocated. Every refusal names its JSON path:
//   net.layers[2].kernel: 7 is larger than the input 5x5
// Unknown top-level keys are ignored (a sampled config may carry extra parameters); unknown layer
// types and unknown values of a known field are refused.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/error.h"
#include "trainer/nn/backend.h"

namespace hpo::nn {

struct DataSpec {
  std::string dir = "/usr/share/datasets/fashion-mnist";
  std::string format = "idx";  // idx | cifar10 | csv
  int64_t train_limit = 0;     // 0 = all training examples (after the validation split)
  int64_t validation = 5000;   // taken from the END of the training file
  int64_t test_limit = 0;      // 0 = the whole test set
  bool normalize = true;       // bytes / 255, then (x - mean) / std of the training part
};

enum class LayerKind { kConv, kPool, kDense, kActivation, kDropout, kBatchNorm, kFlatten };

struct LayerSpec {
  LayerKind kind = LayerKind::kDense;
  std::string path;           // JSON path for messages, e.g. "net.layers[2]" or "net.conv[0]"
  ConvParams conv;            // kConv (fused stays kNone here; the net fuses)
  PoolParams pool;            // kPool
  int64_t units = 0;          // kDense
  ActivationSpec activation;  // kActivation
  float rate = 0.0f;          // kDropout
  BatchNormParams batch_norm;
};

struct LrPolicy {
  std::string type = "fixed";  // fixed | step | exp | cosine
  double gamma = 0.1;          // step: factor per step_epochs; exp: factor per epoch
  double step_epochs = 1;
  double warmup_epochs = 0;  // linear warm-up from 0 to lr over these epochs (fractional ok)
};

struct SolverSpec {
  UpdateRule rule;  // kind, momentum, nesterov, betas, eps, alpha, weight_decay
  double lr = 0.05;
  int64_t batch_size = 128;
  int64_t epochs = 2;
  LrPolicy lr_policy;
  int64_t report_every_steps = 0;  // 0 = only per-epoch lines
};

// net.init: "he" (default), "xavier" or "uniform" (PyTorch's default); see Net::init_params.
enum class WeightInit { kHe, kXavier, kUniform };

struct TrainConfig {
  DataSpec data;
  WeightInit init = WeightInit::kHe;
  std::vector<LayerSpec> layers;  // expanded (BLOCKS form -> list); final classifier included
  SolverSpec solver;
  uint64_t seed = 1;
  nlohmann::json source;  // the config as read, for checkpoints (resume refuses another config)
};

// Parses the whole config. The net is expanded but not yet checked against data shapes.
Result<TrainConfig> parse_train_config(const nlohmann::json& config);

// Shape inference: checks every layer against its input {C, H, W} and the class count, returning
// the output shape of each layer ({C, H, W}, H = W = 1 after flatten/dense). Refusals name the
// layer path and field.
Result<std::vector<std::vector<int64_t>>> infer_shapes(const std::vector<LayerSpec>& layers,
                                                       std::vector<int64_t> input_chw,
                                                       int64_t classes);

// Learning rate at fractional epoch `epoch_f` (0-based: 0.5 = halfway through the first).
double learning_rate(const SolverSpec& s, double epoch_f);

}  // namespace hpo::nn
