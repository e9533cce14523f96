// A network built from a checked layer list on one Backend (Caffe's shape: set up once for a
// batch size, then forward / backward / update every step). All tensors and op plans are made in
// build(); a step allocates nothing.
//
// A conv or dense layer directly followed by an activation runs them as one fused op.
// The loss (softmax cross-entropy) is implicit after the last layer.
//
// Ownership: the Net keeps a reference to the Backend, which must outlive it. One thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "trainer/nn/backend.h"
#include "trainer/nn/spec.h"

namespace hpo::nn {

// One learnable (or running-statistics) tensor with its gradient and solver state.
struct Param {
  std::string name;  // "net.layers[0].weights", for checkpoints and messages
  Tensor value, grad, state1, state2;
  bool trainable = true;  // false: batch-norm running statistics (saved, not updated)
  enum class Init { kHe, kXavier, kZero, kOne, kNone } init = Init::kZero;
  int64_t fan_in = 1, fan_out = 1;
};

class Net {
 public:
  // input_chw: one example's shape; batch: the fixed batch size of every step.
  static Result<std::unique_ptr<Net>> build(Backend& backend, const std::vector<LayerSpec>& layers,
                                            const std::vector<int64_t>& input_chw, int64_t batch,
                                            int64_t classes);
  ~Net();

  int64_t batch() const { return batch_; }
  // Filled by the caller (upload) before forward: {batch, C, H, W} plain and {batch}.
  Tensor& input() { return input_; }
  Tensor& labels() { return labels_; }

  // Runs the net and the loss on the first `valid` rows; returns the summed loss and adds the
  // number of right predictions to *correct. training: dropout on, batch norm on batch stats.
  double forward(int64_t valid, bool training, uint64_t dropout_seed, int64_t* correct);
  // Gradients of every parameter for the last training forward.
  void backward();
  // One solver step on every trainable parameter (rule.lr and rule.step set by the caller).
  void update(const UpdateRule& rule);

  // kHe: He normal weights (relu family, linear) or Xavier uniform (tanh, sigmoid), zero biases;
  // kXavier: Xavier uniform weights, zero biases; kUniform: PyTorch's default, weights and
  // biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)). Always: batch norm gamma 1, beta 0, running
  // mean 0, variance 1; solver state zero. Drawn from `seed`.
  void init_params(uint64_t seed, WeightInit scheme = WeightInit::kHe);
  std::vector<Param>& params() { return params_; }
  Backend& backend() { return backend_; }

  struct Node {  // one executed layer (a fused activation is part of its conv/dense)
    LayerKind kind;
    std::string path;
    std::unique_ptr<ConvOp> conv;
    std::unique_ptr<DenseOp> dense;
    std::unique_ptr<PoolOp> pool;
    std::unique_ptr<EltwiseOp> eltwise;
    std::unique_ptr<BatchNormOp> bn;
    std::unique_ptr<DropoutOp> dropout;
    std::unique_ptr<ReshapeOp> reshape;
    // Parameter indices into Net::params_: weights, bias / gamma, beta, running mean, running var.
    std::vector<size_t> p;
    Tensor out, diff;
  };

 private:
  explicit Net(Backend& b) : backend_(b) {}
  Backend& backend_;
  int64_t batch_ = 0;
  Tensor input_, labels_;
  std::vector<Param> params_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::unique_ptr<SoftmaxXentOp> loss_;
  Tensor loss_diff_;
};

}  // namespace hpo::nn
