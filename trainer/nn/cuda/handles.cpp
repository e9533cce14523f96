#include "trainer/nn/cuda/handles.h"

#include <string>

#include "trainer/nn/cuda/check.h"

namespace hpo::nn::gpu {

Result<CudnnHandle> make_cudnn(cudaStream_t stream) {
  cudnnHandle_t raw = nullptr;
  HPO_GPU_TRY(cudnnCreate(&raw));
  CudnnHandle handle(raw);
  HPO_GPU_TRY(cudnnSetStream(raw, stream));
  return handle;
}

Result<CublasHandle> make_cublas(cudaStream_t stream) {
  cublasHandle_t raw = nullptr;
  HPO_GPU_TRY(cublasCreate(&raw));
  CublasHandle handle(raw);
  HPO_GPU_TRY(cublasSetStream(raw, stream));
  HPO_GPU_TRY(cublasSetPointerMode(raw, CUBLAS_POINTER_MODE_HOST));
  return handle;
}

Result<Stream> make_stream() {
  cudaStream_t raw = nullptr;
  HPO_GPU_TRY(cudaStreamCreateWithFlags(&raw, cudaStreamNonBlocking));
  return Stream(raw);
}

Result<Event> make_event() {
  cudaEvent_t raw = nullptr;
  HPO_GPU_TRY(cudaEventCreate(&raw));
  return Event(raw);
}

Result<TensorDescriptor> make_tensor(int n, int c, int h, int w) {
  cudnnTensorDescriptor_t raw = nullptr;
  HPO_GPU_TRY(cudnnCreateTensorDescriptor(&raw));
  TensorDescriptor desc(raw);
  HPO_GPU_TRY(cudnnSetTensor4dDescriptor(raw, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
  return desc;
}

Result<FilterDescriptor> make_filter(int k, int c, int r, int s) {
  cudnnFilterDescriptor_t raw = nullptr;
  HPO_GPU_TRY(cudnnCreateFilterDescriptor(&raw));
  FilterDescriptor desc(raw);
  HPO_GPU_TRY(cudnnSetFilter4dDescriptor(raw, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, k, c, r, s));
  return desc;
}

Result<ConvDescriptor> make_conv(int pad_h, int pad_w, int stride_h, int stride_w,
                                 bool allow_tf32) {
  cudnnConvolutionDescriptor_t raw = nullptr;
  HPO_GPU_TRY(cudnnCreateConvolutionDescriptor(&raw));
  ConvDescriptor desc(raw);
  HPO_GPU_TRY(cudnnSetConvolution2dDescriptor(raw, pad_h, pad_w, stride_h, stride_w, 1, 1,
                                              CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  // FP32 results that match the CPU backend unless the caller opts in to TF32.
  HPO_GPU_TRY(cudnnSetConvolutionMathType(raw, allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
  return desc;
}

Result<PoolDescriptor> make_pool(bool max, int window_h, int window_w, int pad_h, int pad_w,
                                 int stride_h, int stride_w) {
  cudnnPoolingDescriptor_t raw = nullptr;
  HPO_GPU_TRY(cudnnCreatePoolingDescriptor(&raw));
  PoolDescriptor desc(raw);
  HPO_GPU_TRY(cudnnSetPooling2dDescriptor(
      raw, max ? CUDNN_POOLING_MAX_DETERMINISTIC : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING,
      CUDNN_NOT_PROPAGATE_NAN, window_h, window_w, pad_h, pad_w, stride_h, stride_w));
  return desc;
}

Result<ActivationDescriptor> make_activation(cudnnActivationMode_t mode, double coef) {
  cudnnActivationDescriptor_t raw = nullptr;
  HPO_GPU_TRY(cudnnCreateActivationDescriptor(&raw));
  ActivationDescriptor desc(raw);
  HPO_GPU_TRY(cudnnSetActivationDescriptor(raw, mode, CUDNN_NOT_PROPAGATE_NAN, coef));
  return desc;
}

Result<DeviceBuffer> DeviceBuffer::allocate(std::size_t bytes) {
  DeviceBuffer buffer;
  HPO_GPU_PROPAGATE(buffer.reserve(bytes));
  return buffer;
}

Status DeviceBuffer::reserve(std::size_t bytes) {
  if (bytes <= bytes_) return {};
  reset();
  void* raw = nullptr;
  if (auto status = check(cudaMalloc(&raw, bytes), "cudaMalloc"); !status) {
    return fail(status.error().message + " allocating " + std::to_string(bytes) + " bytes");
  }
  data_ = raw;
  bytes_ = bytes;
  return {};
}

void DeviceBuffer::reset() {
  if (data_ != nullptr) (void)cudaFree(data_);
  data_ = nullptr;
  bytes_ = 0;
}

Status copy_to_device(void* device_dst, const void* host_src, std::size_t bytes,
                      cudaStream_t stream) {
  if (bytes == 0) return {};
  HPO_GPU_TRY(cudaMemcpyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice, stream));
  // The host buffer may be pageable and reused by the caller at once.
  HPO_GPU_TRY(cudaStreamSynchronize(stream));
  return {};
}

Status copy_to_host(void* host_dst, const void* device_src, std::size_t bytes,
                    cudaStream_t stream) {
  if (bytes == 0) return {};
  HPO_GPU_TRY(cudaMemcpyAsync(host_dst, device_src, bytes, cudaMemcpyDeviceToHost, stream));
  HPO_GPU_TRY(cudaStreamSynchronize(stream));
  return {};
}

Status copy_on_device(void* device_dst, const void* device_src, std::size_t bytes,
                      cudaStream_t stream) {
  if (bytes == 0) return {};
  HPO_GPU_TRY(cudaMemcpyAsync(device_dst, device_src, bytes, cudaMemcpyDeviceToDevice, stream));
  return {};
}

Status synchronize(cudaStream_t stream) {
  HPO_GPU_TRY(cudaStreamSynchronize(stream));
  return {};
}

}  // namespace hpo::nn::gpu
