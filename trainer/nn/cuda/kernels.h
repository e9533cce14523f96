// The few GPU kernels of our own (everything else is cuDNN or cuBLAS): the
// softmax cross-entropy loss and its gradient, deterministic sums, bias add
// and bias gradient, the activations (cuDNN has no leaky ReLU, and its ELU
// backward wants the pre-activation input), dropout, and the solver updates. Shared by kernels.cu
// (nvcc, C++17) and the host code (g++, C++23), so this header uses nothing newer than C++17 and no
// hpo headers.
//
// Every launcher enqueues on `stream` and returns the launch status
// (cudaGetLastError); an error inside the kernel shows at the next sync.
// All pointers are device pointers unless named host_*. Sizes are element
// counts. Results are deterministic: no atomics, fixed reduction order.
#pragma once

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define HPO_HOST_DEVICE __host__ __device__
#else
#define HPO_HOST_DEVICE
#endif

namespace hpo::nn::gpu::kernels {

// ---- loss ----------------------------------------------------------------

// logits is [rows, classes] row-major; labels [rows] hold class indices as
// floats (backend.h). Rows >= valid are batch padding: they get loss 0,
// correct 0 and a zero gradient. For each row r < valid writes
// loss_rows[r] = -log softmax(logits[r])[label] and correct_rows[r] = 1 when
// the first maximal logit is the label (else 0); both may be null. When grad is
// not null, grad[r, k] = (softmax(logits[r])[k] - (k == label)) * grad_scale
// (grad_scale = 1 / valid gives the gradient of the mean loss). A label
// outside [0, classes) gives a NaN loss and a zero gradient row.
// One thread per row (a batch has few rows and few classes), each running:
cudaError_t softmax_cross_entropy(const float* logits, const float* labels, int rows, int valid,
                                  int classes, float grad_scale, float* loss_rows,
                                  float* correct_rows, float* grad, cudaStream_t stream);

// One valid row of the above: x and grad (may be null) point at the row; returns the loss and
// sets *correct. Inline so that host tests check it against the CPU backend.
HPO_HOST_DEVICE inline float softmax_cross_entropy_row(const float* x, float label_value,
                                                       int classes, float grad_scale, float* grad,
                                                       float* correct) {
  const bool valid = label_value >= 0.0f && label_value < static_cast<float>(classes);
  const int label = valid ? static_cast<int>(label_value) : -1;
  int best = 0;  // the first maximal logit is the prediction (the CPU backend's tie rule)
  for (int k = 1; k < classes; ++k) {
    if (x[k] > x[best]) best = k;
  }
  const float max_value = x[best];
  float sum_exp = 0.0f;
  for (int k = 0; k < classes; ++k) sum_exp += expf(x[k] - max_value);
  if (grad != nullptr) {
    const float inv = 1.0f / sum_exp;
    for (int k = 0; k < classes; ++k) {
      const float p = expf(x[k] - max_value) * inv;
      grad[k] = valid ? (p - (k == label ? 1.0f : 0.0f)) * grad_scale : 0.0f;
    }
  }
  *correct = (valid && best == label) ? 1.0f : 0.0f;
  return valid ? logf(sum_exp) - (x[label] - max_value) : NAN;
}

// out[0] = sum of x[0 .. n) (one block, fixed order, so the same input gives
// the same bits). out may alias nothing in x.
cudaError_t sum(const float* x, std::size_t n, float* out, cudaStream_t stream);

// ---- bias ----------------------------------------------------------------

// y viewed as [outer, channels, inner] (NCHW: outer = N, inner = H*W; dense:
// inner = 1): y[o, c, i] += bias[c].
cudaError_t bias_add(float* y, const float* bias, int outer, int channels, int inner,
                     cudaStream_t stream);
// grad_bias[c] = beta * grad_bias[c] + sum over o, i of dy[o, c, i]; beta is 0
// (overwrite) or 1 (accumulate).
cudaError_t bias_grad(const float* dy, float* grad_bias, int outer, int channels, int inner,
                      float beta, cudaStream_t stream);

// ---- element-wise ----------------------------------------------------------

cudaError_t fill(float* x, std::size_t n, float value, cudaStream_t stream);
// y[i] = a[i] * b[i] (dropout: apply the mask forward and backward).
cudaError_t multiply(const float* a, const float* b, float* y, std::size_t n, cudaStream_t stream);
// Activations, as oneDNN's *_use_dst_for_bwd variants: the backward needs
// only the forward's output y, so a fused conv/dense + activation keeps no
// pre-activation copy. Values match backend.h's Activation (kNone = 0 .. kElu).
// The per-element maths is inline here so that host tests check it against the
// CPU backend on machines without a GPU.
enum class Act : int { kNone = 0, kRelu, kLeakyRelu, kTanh, kSigmoid, kElu };

HPO_HOST_DEVICE inline float activate(Act act, float alpha, float x) {
  switch (act) {
    case Act::kRelu:
      return x > 0.0f ? x : 0.0f;
    case Act::kLeakyRelu:
      return x > 0.0f ? x : alpha * x;
    case Act::kTanh:
      return tanhf(x);
    case Act::kSigmoid:
      return 1.0f / (1.0f + expf(-x));
    case Act::kElu:
      return x > 0.0f ? x : alpha * expm1f(x);
    case Act::kNone:
      break;
  }
  return x;
}

// act'(x) written with y = act(x).
HPO_HOST_DEVICE inline float activation_slope(Act act, float alpha, float y) {
  switch (act) {
    case Act::kRelu:
      return y > 0.0f ? 1.0f : 0.0f;
    case Act::kLeakyRelu:
      return y > 0.0f ? 1.0f : alpha;
    case Act::kTanh:
      return 1.0f - y * y;
    case Act::kSigmoid:
      return y * (1.0f - y);
    case Act::kElu:
      return y > 0.0f ? 1.0f : y + alpha;
    case Act::kNone:
      break;
  }
  return 1.0f;
}

// y = act(x); y may alias x. alpha: leaky ReLU slope (> 0 or 0), ELU alpha.
cudaError_t activation_forward(Act act, float alpha, const float* x, float* y, std::size_t n,
                               cudaStream_t stream);
// dx = dy * act'(from y); dx may alias dy.
//   relu: y > 0;  leaky: y > 0 ? 1 : alpha;  tanh: 1 - y^2;  sigmoid: y (1 - y);
//   elu: y > 0 ? 1 : y + alpha.
cudaError_t activation_backward(Act act, float alpha, const float* y, const float* dy, float* dx,
                                std::size_t n, cudaStream_t stream);

// ---- dropout ---------------------------------------------------------------

// A counter-based uniform in [0, 1): the value for (seed, index) is the same on
// host and device, so a CPU test (or the CPU backend) can rebuild any mask.
HPO_HOST_DEVICE inline float dropout_uniform(std::uint64_t seed, std::uint64_t index) {
  // splitmix64 finaliser of seed and index: cheap, and every output bit
  // depends on every input bit.
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (1.0f / 16777216.0f);  // top 24 bits
}

// mask[i] = dropout_uniform(seed, offset + i) < rate ? 0 : 1 / (1 - rate)
// (inverted dropout: inference needs no scaling). rate in [0, 1).
cudaError_t dropout_mask(float* mask, std::size_t n, float rate, std::uint64_t seed,
                         std::uint64_t offset, cudaStream_t stream);

// ---- solver updates ----------------------------------------------------------
// PyTorch's formulas (torch.optim 1.13), so the same settings train the same
// way on both sides of the benchmark. w: weights, g: gradient (not modified),
// n elements. weight_decay is L2 (added to the gradient) except for AdamW.

struct SgdStep {
  float lr = 0.01f;
  float momentum = 0.0f;  // 0: plain SGD, velocity untouched
  float weight_decay = 0.0f;
  bool nesterov = false;
};
// d = g + wd*w; v = momentum*v + d; w -= lr * (nesterov ? d + momentum*v : v).
HPO_HOST_DEVICE inline void sgd_element(float& w, float g, float* velocity, const SgdStep& s) {
  float d = g + s.weight_decay * w;
  if (s.momentum != 0.0f) {
    const float v = s.momentum * *velocity + d;
    *velocity = v;
    d = s.nesterov ? d + s.momentum * v : v;
  }
  w -= s.lr * d;
}
cudaError_t sgd_update(float* w, const float* g, float* velocity, std::size_t n, SgdStep step,
                       cudaStream_t stream);

struct AdamStep {
  float lr = 0.001f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  bool decoupled = false;         // true: AdamW (w -= lr*wd*w before the step)
  float bias_correction1 = 1.0f;  // 1 - beta1^t, t = 1, 2, ... (computed on the host)
  float bias_correction2 = 1.0f;  // 1 - beta2^t
};
// m = b1 m + (1-b1) d; v = b2 v + (1-b2) d^2;
// w -= (lr/bc1) * m / (sqrt(v) * (1/sqrt(bc2)) + eps)  (the CPU backend's float order).
HPO_HOST_DEVICE inline void adam_element(float& w, float g, float& m, float& v, const AdamStep& s) {
  const float step_size = s.lr / s.bias_correction1;
  const float inv_sqrt_bc2 = 1.0f / sqrtf(s.bias_correction2);
  float weight = w;
  float d = g;
  if (s.decoupled) {
    weight -= s.lr * s.weight_decay * weight;
  } else {
    d += s.weight_decay * weight;
  }
  m = s.beta1 * m + (1.0f - s.beta1) * d;
  v = s.beta2 * v + (1.0f - s.beta2) * d * d;
  w = weight - step_size * m / (sqrtf(v) * inv_sqrt_bc2 + s.eps);
}
cudaError_t adam_update(float* w, const float* g, float* m, float* v, std::size_t n, AdamStep step,
                        cudaStream_t stream);

struct RmspropStep {
  float lr = 0.01f;
  float alpha = 0.99f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  float momentum = 0.0f;  // 0: buffer untouched (may be null)
};
// d = g + wd*w; s = alpha s + (1-alpha) d^2; a = sqrt(s) + eps;
// momentum > 0: b = momentum b + d/a, w -= lr b; else w -= lr d/a.
HPO_HOST_DEVICE inline void rmsprop_element(float& w, float g, float& square_avg, float* buffer,
                                            const RmspropStep& s) {
  const float d = g + s.weight_decay * w;
  square_avg = s.alpha * square_avg + (1.0f - s.alpha) * d * d;
  const float scaled = d / (sqrtf(square_avg) + s.eps);
  if (s.momentum > 0.0f) {
    *buffer = s.momentum * *buffer + scaled;
    w -= s.lr * *buffer;
  } else {
    w -= s.lr * scaled;
  }
}
cudaError_t rmsprop_update(float* w, const float* g, float* square_avg, float* buffer,
                           std::size_t n, RmspropStep step, cudaStream_t stream);

}  // namespace hpo::nn::gpu::kernels
