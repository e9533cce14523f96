// Kernels declared in kernels.h. Element-wise kernels use grid-stride loops
// with a capped grid; reductions use one block per output and a fixed tree, so
// results do not depend on scheduling.
#include <cmath>

#include "trainer/nn/cuda/kernels.h"

namespace hpo::nn::gpu::kernels {
namespace {

constexpr int kThreads = 256;

unsigned grid_for(std::size_t n) {
  std::size_t blocks = (n + kThreads - 1) / kThreads;
  if (blocks < 1) blocks = 1;
  if (blocks > 4096) blocks = 4096;
  return static_cast<unsigned>(blocks);
}

// Sum over the block of each thread's `v`, in a fixed order; valid in thread 0.
__device__ float block_sum(float v) {
  __shared__ float partial[kThreads];
  partial[threadIdx.x] = v;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride)
      partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  return partial[0];
}

__global__ void softmax_cross_entropy_kernel(const float* logits, const float* labels, int rows,
                                             int valid_rows, int classes, float grad_scale,
                                             float* loss_rows, float* correct_rows, float* grad) {
  const int row = blockIdx.x * blockDim.x + threadIdx.x;
  if (row >= rows) return;
  const std::size_t offset = static_cast<std::size_t>(row) * classes;
  float* dx = grad != nullptr ? grad + offset : nullptr;
  float loss = 0.0f;
  float correct = 0.0f;
  if (row < valid_rows) {
    loss =
        softmax_cross_entropy_row(logits + offset, labels[row], classes, grad_scale, dx, &correct);
  } else if (dx != nullptr) {  // batch padding
    for (int k = 0; k < classes; ++k) dx[k] = 0.0f;
  }
  if (loss_rows != nullptr) loss_rows[row] = loss;
  if (correct_rows != nullptr) correct_rows[row] = correct;
}

__global__ void sum_kernel(const float* x, std::size_t n, float* out) {
  float v = 0.0f;
  for (std::size_t i = threadIdx.x; i < n; i += blockDim.x) v += x[i];
  v = block_sum(v);
  if (threadIdx.x == 0) out[0] = v;
}

__global__ void bias_add_kernel(float* y, const float* bias, std::size_t total, int channels,
                                int inner) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const int c = static_cast<int>((i / inner) % channels);
    y[i] += bias[c];
  }
}

// One block per channel.
__global__ void bias_grad_kernel(const float* dy, float* grad_bias, int outer, int channels,
                                 int inner, float beta) {
  const int c = blockIdx.x;
  const std::size_t count = static_cast<std::size_t>(outer) * inner;
  float v = 0.0f;
  for (std::size_t j = threadIdx.x; j < count; j += blockDim.x) {
    const std::size_t o = j / inner;
    const std::size_t i = j % inner;
    v += dy[(o * channels + c) * inner + i];
  }
  v = block_sum(v);
  if (threadIdx.x == 0) grad_bias[c] = (beta == 0.0f ? 0.0f : beta * grad_bias[c]) + v;
}

#define HPO_GRID_STRIDE(i, n)                                                                    \
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)

__global__ void fill_kernel(float* x, std::size_t n, float value) {
  HPO_GRID_STRIDE(i, n) x[i] = value;
}

__global__ void multiply_kernel(const float* a, const float* b, float* y, std::size_t n) {
  HPO_GRID_STRIDE(i, n) y[i] = a[i] * b[i];
}

__global__ void activation_forward_kernel(Act act, float alpha, const float* x, float* y,
                                          std::size_t n) {
  HPO_GRID_STRIDE(i, n) y[i] = activate(act, alpha, x[i]);
}

__global__ void activation_backward_kernel(Act act, float alpha, const float* y, const float* dy,
                                           float* dx, std::size_t n) {
  HPO_GRID_STRIDE(i, n) dx[i] = dy[i] * activation_slope(act, alpha, y[i]);
}

__global__ void dropout_mask_kernel(float* mask, std::size_t n, float rate, float scale,
                                    std::uint64_t seed, std::uint64_t offset) {
  HPO_GRID_STRIDE(i, n) mask[i] = dropout_uniform(seed, offset + i) < rate ? 0.0f : scale;
}

__global__ void sgd_kernel(float* w, const float* g, float* velocity, std::size_t n, SgdStep s) {
  HPO_GRID_STRIDE(i, n) sgd_element(w[i], g[i], velocity != nullptr ? velocity + i : nullptr, s);
}

__global__ void adam_kernel(float* w, const float* g, float* m, float* v, std::size_t n,
                            AdamStep s) {
  HPO_GRID_STRIDE(i, n) adam_element(w[i], g[i], m[i], v[i], s);
}

__global__ void rmsprop_kernel(float* w, const float* g, float* square_avg, float* buffer,
                               std::size_t n, RmspropStep s) {
  HPO_GRID_STRIDE(i, n) {
    rmsprop_element(w[i], g[i], square_avg[i], buffer != nullptr ? buffer + i : nullptr, s);
  }
}

#undef HPO_GRID_STRIDE

}  // namespace

cudaError_t softmax_cross_entropy(const float* logits, const float* labels, int rows, int valid,
                                  int classes, float grad_scale, float* loss_rows,
                                  float* correct_rows, float* grad, cudaStream_t stream) {
  if (rows <= 0 || classes <= 0) return cudaSuccess;
  const unsigned blocks = static_cast<unsigned>((rows + kThreads - 1) / kThreads);
  softmax_cross_entropy_kernel<<<blocks, kThreads, 0, stream>>>(
      logits, labels, rows, valid, classes, grad_scale, loss_rows, correct_rows, grad);
  return cudaGetLastError();
}

cudaError_t sum(const float* x, std::size_t n, float* out, cudaStream_t stream) {
  sum_kernel<<<1, kThreads, 0, stream>>>(x, n, out);
  return cudaGetLastError();
}

cudaError_t bias_add(float* y, const float* bias, int outer, int channels, int inner,
                     cudaStream_t stream) {
  const std::size_t total = static_cast<std::size_t>(outer) * channels * inner;
  if (total == 0) return cudaSuccess;
  bias_add_kernel<<<grid_for(total), kThreads, 0, stream>>>(y, bias, total, channels, inner);
  return cudaGetLastError();
}

cudaError_t bias_grad(const float* dy, float* grad_bias, int outer, int channels, int inner,
                      float beta, cudaStream_t stream) {
  if (channels <= 0) return cudaSuccess;
  bias_grad_kernel<<<static_cast<unsigned>(channels), kThreads, 0, stream>>>(dy, grad_bias, outer,
                                                                             channels, inner, beta);
  return cudaGetLastError();
}

cudaError_t fill(float* x, std::size_t n, float value, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  fill_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, n, value);
  return cudaGetLastError();
}

cudaError_t multiply(const float* a, const float* b, float* y, std::size_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  multiply_kernel<<<grid_for(n), kThreads, 0, stream>>>(a, b, y, n);
  return cudaGetLastError();
}

cudaError_t activation_forward(Act act, float alpha, const float* x, float* y, std::size_t n,
                               cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  activation_forward_kernel<<<grid_for(n), kThreads, 0, stream>>>(act, alpha, x, y, n);
  return cudaGetLastError();
}

cudaError_t activation_backward(Act act, float alpha, const float* y, const float* dy, float* dx,
                                std::size_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  activation_backward_kernel<<<grid_for(n), kThreads, 0, stream>>>(act, alpha, y, dy, dx, n);
  return cudaGetLastError();
}

cudaError_t dropout_mask(float* mask, std::size_t n, float rate, std::uint64_t seed,
                         std::uint64_t offset, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const float scale = 1.0f / (1.0f - rate);
  dropout_mask_kernel<<<grid_for(n), kThreads, 0, stream>>>(mask, n, rate, scale, seed, offset);
  return cudaGetLastError();
}

cudaError_t sgd_update(float* w, const float* g, float* velocity, std::size_t n, SgdStep step,
                       cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  sgd_kernel<<<grid_for(n), kThreads, 0, stream>>>(w, g, velocity, n, step);
  return cudaGetLastError();
}

cudaError_t adam_update(float* w, const float* g, float* m, float* v, std::size_t n, AdamStep step,
                        cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  adam_kernel<<<grid_for(n), kThreads, 0, stream>>>(w, g, m, v, n, step);
  return cudaGetLastError();
}

cudaError_t rmsprop_update(float* w, const float* g, float* square_avg, float* buffer,
                           std::size_t n, RmspropStep step, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  rmsprop_kernel<<<grid_for(n), kThreads, 0, stream>>>(w, g, square_avg, buffer, n, step);
  return cudaGetLastError();
}

}  // namespace hpo::nn::gpu::kernels
