// The compute backend of the training engine: a small interface (ggml style) that the CPU
// (oneDNN) and CUDA (cuDNN + cuBLAS) backends implement.
//
// CUDA implementation: trainer/nn/cuda/ (other helper). CPU implementation: trainer/nn/cpu/.
//
// Model. A Backend owns a device (the CPU, or one GPU) and makes three kinds of objects:
//   - Tensor: a float buffer in device memory with a logical shape, freed by its destructor.
//   - op plans (ConvOp, PoolOp, ...): created ONCE per layer and shape, reused every step. A plan
//     owns whatever the op needs between forward and backward (max-pool workspace, dropout mask,
//     batch-norm batch statistics, softmax probabilities) and any scratch, all allocated when
//     the plan is made, so that a training step allocates nothing.
//   - solver updates (Backend::update), elementwise, so the parameters never leave the device.
// The engine (trainer/nn/net.h) calls only this interface; it never touches device memory
// except through upload()/download().
//
// Layouts. Logical shapes: activations {N, C, H, W} or {N, C}; conv weights {O, I, KH, KW};
// dense weights {O, I}; biases, batch-norm vectors {C}; labels {N} (class index as float).
// TensorDesc::layout 0 is plain row-major in that order (NCHW, NC, OIHW, OI). Any other value is
// private to the backend that returned it (the CPU backend uses it for oneDNN's blocked formats,
// e.g. nChw16c); the engine only passes such descs from a plan's *_desc() to Backend::alloc and to
// the next plan. upload()/download() always speak plain layout on the host side. A backend that
// has no private layouts (CUDA) returns layout 0 everywhere. Tensor::size() is the PHYSICAL
// number of floats (>= logical count when a blocked layout pads channels; padding stays zero).
// Elementwise ops (update, dropout) work on the physical floats.
//
// Gradients: every backward OVERWRITES its outputs (diff_src, diff_weights, diff_bias); nothing
// accumulates. A plan's backward must be called after its forward in the same step, with the
// same tensors (plans keep per-step state).
//
// Threading: a Backend and everything it made belong to one thread at a time (the training loop).
// The CPU backend uses `threads` OpenMP threads inside each op. Plans and tensors must be destroyed
// before the Backend that made them.
//
// Errors: make_* and alloc report a refused shape or an out-of-memory as a Result. Once plans
// exist, forward/backward/update do not fail on valid input (a device fault aborts: it is a
// programmer or hardware error, not an input error).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"

namespace hpo::nn {

struct TensorDesc {
  std::vector<int64_t> dims;  // logical shape, see the layout note above
  int layout = 0;             // 0 = plain row-major; other values are backend-private

  int64_t count() const {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return n;
  }
  friend bool operator==(const TensorDesc&, const TensorDesc&) = default;
};

// A float buffer in device memory, owned (RAII): the destructor returns it to its backend.
// Move-only. data() is a device pointer (a host pointer on the CPU backend).
class Tensor {
 public:
  using Release = std::function<void(float*)>;

  Tensor() = default;
  Tensor(TensorDesc desc, float* data, size_t size, Release release)
      : desc_(std::move(desc)), data_(data), size_(size), release_(std::move(release)) {}
  Tensor(Tensor&& other) noexcept { swap(other); }
  Tensor& operator=(Tensor&& other) noexcept {
    Tensor tmp(std::move(other));
    swap(tmp);
    return *this;
  }
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;
  ~Tensor() {
    if (data_ && release_) release_(data_);
  }

  const TensorDesc& desc() const { return desc_; }
  float* data() const { return data_; }
  size_t size() const { return size_; }  // physical floats
  bool empty() const { return data_ == nullptr; }

 private:
  void swap(Tensor& o) noexcept {
    std::swap(desc_, o.desc_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(release_, o.release_);
  }
  TensorDesc desc_;
  float* data_ = nullptr;
  size_t size_ = 0;
  Release release_;
};

// Activations: fused into conv/dense plans, or standalone through EltwiseOp.
enum class Activation { kNone, kRelu, kLeakyRelu, kTanh, kSigmoid, kElu };
struct ActivationSpec {
  Activation kind = Activation::kNone;
  float alpha = 0.0f;  // leaky relu negative slope; elu alpha
};

// Convolution, NCHW, square or rectangular kernel, symmetric padding. dst = act(conv(src) + b).
struct ConvParams {
  int64_t filters = 0;
  int64_t kernel_h = 0, kernel_w = 0;
  int64_t stride = 1;
  int64_t pad = 0;
  ActivationSpec fused;  // applied after the bias; backward undoes it using dst
};

class ConvOp {
 public:
  virtual ~ConvOp() = default;
  virtual const TensorDesc& dst_desc() const = 0;
  virtual const TensorDesc& weights_desc() const = 0;  // {O, I, KH, KW}
  virtual const TensorDesc& bias_desc() const = 0;     // {O}
  virtual void forward(const Tensor& src, const Tensor& weights, const Tensor& bias,
                       Tensor& dst) = 0;
  // diff_dst is the gradient w.r.t. dst (after the fused activation); it may be overwritten
  // (with the gradient before the activation). diff_src may be null (first layer).
  virtual void backward(const Tensor& src, const Tensor& weights, const Tensor& dst,
                        Tensor& diff_dst, Tensor* diff_src, Tensor& diff_weights,
                        Tensor& diff_bias) = 0;
};

// Dense (inner product): src {N, ...} is read as {N, K}; dst {N, units}. Same contract as ConvOp.
struct DenseParams {
  int64_t units = 0;
  ActivationSpec fused;
};

class DenseOp {
 public:
  virtual ~DenseOp() = default;
  virtual const TensorDesc& dst_desc() const = 0;
  virtual const TensorDesc& weights_desc() const = 0;  // {units, K}
  virtual const TensorDesc& bias_desc() const = 0;     // {units}
  virtual void forward(const Tensor& src, const Tensor& weights, const Tensor& bias,
                       Tensor& dst) = 0;
  virtual void backward(const Tensor& src, const Tensor& weights, const Tensor& dst,
                        Tensor& diff_dst, Tensor* diff_src, Tensor& diff_weights,
                        Tensor& diff_bias) = 0;
};

// Pooling, NCHW. Average pooling excludes padding from the divisor.
enum class PoolMode { kMax, kAvg };
struct PoolParams {
  PoolMode mode = PoolMode::kMax;
  int64_t size = 2;
  int64_t stride = 2;
  int64_t pad = 0;
};

class PoolOp {
 public:
  virtual ~PoolOp() = default;
  virtual const TensorDesc& dst_desc() const = 0;
  virtual void forward(const Tensor& src, Tensor& dst) = 0;  // keeps the argmax for backward
  virtual void backward(const Tensor& diff_dst, Tensor& diff_src) = 0;
};

// Standalone activation; dst has src's desc. backward reads src (relu, leaky relu, elu) or
// dst (tanh, sigmoid); pass both.
class EltwiseOp {
 public:
  virtual ~EltwiseOp() = default;
  virtual const TensorDesc& dst_desc() const = 0;
  virtual void forward(const Tensor& src, Tensor& dst) = 0;
  virtual void backward(const Tensor& src, const Tensor& dst, const Tensor& diff_dst,
                        Tensor& diff_src) = 0;
};

// Batch normalization over N (and H, W) per channel. gamma/beta/running stats are {C} tensors
// (plain). training=true normalizes with the batch statistics and updates the running ones:
// running = momentum * running + (1 - momentum) * batch (variance unbiased, n/(n-1)), as PyTorch
// with its momentum = 1 - ours. training=false uses the running statistics.
struct BatchNormParams {
  float eps = 1e-5f;
  float momentum = 0.9f;
};

class BatchNormOp {
 public:
  virtual ~BatchNormOp() = default;
  virtual const TensorDesc& dst_desc() const = 0;
  virtual void forward(const Tensor& src, const Tensor& gamma, const Tensor& beta,
                       Tensor& running_mean, Tensor& running_var, Tensor& dst, bool training) = 0;
  // After a training forward only (uses that step's batch statistics).
  virtual void backward(const Tensor& src, const Tensor& diff_dst, const Tensor& gamma,
                        const Tensor& beta, Tensor& diff_src, Tensor& diff_gamma,
                        Tensor& diff_beta) = 0;
};

// Inverted dropout: in training, dst = src * mask / (1 - rate), where element i (physical index)
// is kept iff dropout_keep(seed, i, rate) below is true: every backend draws the same mask for
// the same seed, and a resumed run draws the same masks. Not training: dst = src.
class DropoutOp {
 public:
  virtual ~DropoutOp() = default;
  virtual const TensorDesc& dst_desc() const = 0;
  virtual void forward(const Tensor& src, Tensor& dst, uint64_t seed, bool training) = 0;
  virtual void backward(const Tensor& diff_dst, Tensor& diff_src) = 0;
};

// The counter-based draw shared by all backends (splitmix64 of seed and index).
inline constexpr uint64_t dropout_hash(uint64_t seed, uint64_t index) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
inline constexpr bool dropout_keep(uint64_t seed, uint64_t index, float rate) {
  // 24 bits of the hash as a uniform in [0, 1).
  return static_cast<float>(dropout_hash(seed, index) >> 40) * (1.0f / 16777216.0f) >= rate;
}

// Converts between a backend-private layout and plain (used for flatten: {N,C,H,W} -> {N,C*H*W}).
// dst_desc() is plain with the requested dims (same count). On a plain src it is a copy.
class ReshapeOp {
 public:
  virtual ~ReshapeOp() = default;
  virtual const TensorDesc& dst_desc() const = 0;
  virtual void forward(const Tensor& src, Tensor& dst) = 0;
  virtual void backward(const Tensor& diff_dst, Tensor& diff_src) = 0;
};

// Softmax + cross-entropy, mean over the batch. logits {N, K} (plain), labels {N} floats holding
// class indices 0..K-1.
class SoftmaxXentOp {
 public:
  virtual ~SoftmaxXentOp() = default;
  // Returns the SUM of per-sample losses over the first `valid` rows (a last partial batch
  // is padded by the engine) and adds the number of correct argmax predictions to *correct.
  virtual double forward(const Tensor& logits, const Tensor& labels, int64_t valid,
                         int64_t* correct) = 0;
  // diff_logits = (softmax - onehot) / valid for rows < valid, 0 for the padding rows.
  virtual void backward(const Tensor& labels, Tensor& diff_logits) = 0;
};

// One solver step on one parameter tensor, elementwise over the physical floats:
//   g = grad + weight_decay * param                      (not for AdamW: decoupled)
//   SGD:      v = momentum * v + g; param -= lr * (nesterov ? g + momentum * v : v)    (state1=v)
//   Adam(W):  m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
//             param -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
//             AdamW also: param -= lr * weight_decay * param (before the Adam step)
//   RMSProp:  s = alpha s + (1-alpha) g^2; param -= lr * g / (sqrt(s) + eps)           (state1=s)
// as PyTorch's SGD/Adam/AdamW/RMSprop (defaults: momentum 0, b1 .9, b2 .999, alpha .99).
// state1/state2 have param's desc; zero them before the first step (Backend::fill).
enum class Optimizer { kSgd, kAdam, kAdamW, kRmsProp };
struct UpdateRule {
  Optimizer kind = Optimizer::kSgd;
  float lr = 0.01f;
  float weight_decay = 0.0f;
  float momentum = 0.0f;               // sgd
  bool nesterov = false;               // sgd
  float beta1 = 0.9f, beta2 = 0.999f;  // adam, adamw
  float alpha = 0.99f;                 // rmsprop smoothing
  float eps = 1e-8f;                   // adam, adamw, rmsprop
  int64_t step = 1;                    // 1-based step count t (adam bias correction)
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string name() const = 0;  // "cpu", "cuda:0"

  // A zero-filled tensor of `desc` (a plan's desc, or a plain one).
  virtual Result<Tensor> alloc(const TensorDesc& desc) = 0;
  // Host <-> device. `host` holds desc.count() floats in PLAIN layout.
  virtual void upload(Tensor& dst, const float* host) = 0;
  virtual void download(const Tensor& src, float* host) = 0;
  virtual void fill(Tensor& t, float value) = 0;  // every physical float, padding included
  // Waits until every op issued so far is done (no-op on the CPU).
  virtual void synchronize() = 0;

  virtual Result<std::unique_ptr<ConvOp>> make_conv(const TensorDesc& src, const ConvParams&) = 0;
  virtual Result<std::unique_ptr<DenseOp>> make_dense(const TensorDesc& src,
                                                      const DenseParams&) = 0;
  virtual Result<std::unique_ptr<PoolOp>> make_pool(const TensorDesc& src, const PoolParams&) = 0;
  virtual Result<std::unique_ptr<EltwiseOp>> make_eltwise(const TensorDesc& src,
                                                          const ActivationSpec&) = 0;
  virtual Result<std::unique_ptr<BatchNormOp>> make_batch_norm(const TensorDesc& src,
                                                               const BatchNormParams&) = 0;
  virtual Result<std::unique_ptr<DropoutOp>> make_dropout(const TensorDesc& src, float rate) = 0;
  virtual Result<std::unique_ptr<ReshapeOp>> make_reshape(const TensorDesc& src,
                                                          std::vector<int64_t> dims) = 0;
  virtual Result<std::unique_ptr<SoftmaxXentOp>> make_softmax_xent(const TensorDesc& logits) = 0;

  // One solver step on `param` (see UpdateRule). state2 is used by Adam/AdamW only; pass null
  // otherwise (state1 is null for plain SGD without momentum).
  virtual void update(const UpdateRule& rule, Tensor& param, const Tensor& grad, Tensor* state1,
                      Tensor* state2) = 0;
};

// ---- Registry ----

// "cpu", plus "cuda:0".. for each GPU found when the CUDA backend is compiled in.
std::vector<std::string> available_backends();

// device: "cpu", "cuda" (= cuda:0), "cuda:N", or "auto" (cuda:0 when a GPU is usable, else cpu).
// threads: host threads for the CPU backend (0 = all cores); the CUDA backend ignores it.
// Fails with a message for an unknown device, a CUDA device on a build without CUDA, or a GPU that
// is absent or unusable.
Result<std::unique_ptr<Backend>> make_backend(std::string_view device, int threads);

// True for the device names make_backend understands (auto, cpu, cuda, cuda:N), whether or not
// that device can be served here: callers tell bad usage from a missing GPU with it.
bool is_device_name(std::string_view device);

// The CPU backend directly (tests use it as the reference for other backends).
std::unique_ptr<Backend> make_cpu_backend(int threads);

#ifdef HPO_WITH_CUDA
// THE one registration point of the CUDA backend, defined in trainer/nn/cuda/ (target
// hpo_nn_cuda, compiled only when HPO_CUDA is on; hpo_nn then gets HPO_WITH_CUDA).
struct CudaRegistration {
  // Number of usable GPUs (0 when the driver or device is absent; never fails).
  int (*device_count)();
  // The backend on GPU `index`; fails with a message when it cannot be used.
  Result<std::unique_ptr<Backend>> (*create)(int index);
};
CudaRegistration cuda_registration();
#endif

}  // namespace hpo::nn
