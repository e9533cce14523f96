// RAII owners for every CUDA, cuDNN and cuBLAS handle the backend uses (ggml
// habit: no raw create/destroy pairs outside this file).
//
// Each owner is move-only; destruction releases the handle and ignores the
// status (there is nobody to report it to, and a failing destroy means the
// context is already gone). The make_* functions return an Error naming the
// failing call. None of these objects is thread-safe: one backend, one thread.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <cstddef>
#include <utility>

#include "base/error.h"

namespace hpo::nn::gpu {

// Owns one opaque pointer handle `T`, released by `Destroy`.
template <class T, auto Destroy>
class Owned {
 public:
  Owned() = default;
  explicit Owned(T handle) : handle_(handle) {}
  ~Owned() { reset(); }
  Owned(Owned&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Owned& operator=(Owned&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;

  T get() const { return handle_; }
  explicit operator bool() const { return handle_ != nullptr; }
  void reset() {
    if (handle_ != nullptr) (void)Destroy(handle_);
    handle_ = nullptr;
  }

 private:
  T handle_ = nullptr;
};

using CudnnHandle = Owned<cudnnHandle_t, cudnnDestroy>;
using CublasHandle = Owned<cublasHandle_t, cublasDestroy>;
using Stream = Owned<cudaStream_t, cudaStreamDestroy>;
using Event = Owned<cudaEvent_t, cudaEventDestroy>;
using TensorDescriptor = Owned<cudnnTensorDescriptor_t, cudnnDestroyTensorDescriptor>;
using FilterDescriptor = Owned<cudnnFilterDescriptor_t, cudnnDestroyFilterDescriptor>;
using ConvDescriptor = Owned<cudnnConvolutionDescriptor_t, cudnnDestroyConvolutionDescriptor>;
using PoolDescriptor = Owned<cudnnPoolingDescriptor_t, cudnnDestroyPoolingDescriptor>;
using ActivationDescriptor = Owned<cudnnActivationDescriptor_t, cudnnDestroyActivationDescriptor>;
using DropoutDescriptor = Owned<cudnnDropoutDescriptor_t, cudnnDestroyDropoutDescriptor>;

// Handles bound to `stream` (nullptr = the legacy default stream). cuBLAS is
// set to keep scalars (alpha, beta) on the host.
Result<CudnnHandle> make_cudnn(cudaStream_t stream);
Result<CublasHandle> make_cublas(cudaStream_t stream);
// A non-blocking stream (does not synchronise with the legacy default stream).
Result<Stream> make_stream();
Result<Event> make_event();

// Fully packed float NCHW tensor. Dense activations are n x c x 1 x 1.
Result<TensorDescriptor> make_tensor(int n, int c, int h, int w);
// Float KCRS filter (k output channels, c input channels, r x s kernel).
Result<FilterDescriptor> make_filter(int k, int c, int r, int s);
// Cross-correlation (what every framework calls convolution), float maths;
// tensor-core maths is allowed (TF32 on sm_80+) only when `allow_tf32`.
Result<ConvDescriptor> make_conv(int pad_h, int pad_w, int stride_h, int stride_w, bool allow_tf32);
// Max pooling (deterministic variant) or average pooling; average excludes the padding.
Result<PoolDescriptor> make_pool(bool max, int window_h, int window_w, int pad_h, int pad_w,
                                 int stride_h, int stride_w);
// `mode` is a cudnnActivationMode_t; `coef` is ELU's alpha (ignored otherwise).
Result<ActivationDescriptor> make_activation(cudnnActivationMode_t mode, double coef);

// Device memory owned by one object: cudaMalloc on create, cudaFree on
// destruction. Contents are uninitialised. size 0 holds no memory.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      reset();
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  // Fails with the cudaMalloc message (out of memory names the size).
  static Result<DeviceBuffer> allocate(std::size_t bytes);

  // Grows to at least `bytes` (old contents are lost when it grows); never shrinks.
  Status reserve(std::size_t bytes);

  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  void reset();

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

// Copies between host and device on `stream`; synchronous with respect to the
// host for device-to-host (the host buffer is valid on return).
Status copy_to_device(void* device_dst, const void* host_src, std::size_t bytes,
                      cudaStream_t stream);
Status copy_to_host(void* host_dst, const void* device_src, std::size_t bytes, cudaStream_t stream);
Status copy_on_device(void* device_dst, const void* device_src, std::size_t bytes,
                      cudaStream_t stream);
// Waits for the stream, reporting any error of an earlier kernel.
Status synchronize(cudaStream_t stream);

}  // namespace hpo::nn::gpu
