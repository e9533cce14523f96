// The CUDA backend on cuDNN + cuBLAS + kernels.cu (internal to trainer/nn; the engine sees
// only nn::Backend, reached through cuda_registration() in backend.h).
//
// One backend = one GPU, one non-blocking stream, one cuDNN and one cuBLAS handle bound to that
// stream. Every op is enqueued on the stream; download() and SoftmaxXentOp::forward wait for it.
// Layouts: plain only (TensorDesc::layout is always 0, NCHW / NC / OIHW / OI row-major).
//
// Maths: FP32 throughout. TF32 tensor cores stay off so that results match the CPU backend
// within float rounding (set HPO_CUDA_TF32=1 in the environment to allow them for speed).
// Backward convolution algorithms are chosen among the deterministic ones, and our own
// reductions have a fixed order, so the same seed gives the same run.
//
// Threading: one thread at a time (backend.h). The device is made current (cudaSetDevice)
// when the backend and each plan are made; a caller that moves the backend to another thread
// must not use another GPU on that thread meanwhile.
//
// Errors: create() and make_* return an Error naming the failing CUDA/cuDNN/cuBLAS call. After
// that, as backend.h says, a failing call is a device fault: the process prints the call and
// the status to stderr and aborts.
#pragma once

#include <memory>
#include <string>

#include "trainer/nn/backend.h"
#include "trainer/nn/cuda/handles.h"

namespace hpo::nn::gpu {

class CudaBackend final : public Backend {
 public:
  // Fails with "no CUDA device: ..." when there is no driver or GPU, "no CUDA device cuda:N"
  // when N is out of range, or with the failing call when the GPU cannot be set up.
  static Result<std::unique_ptr<CudaBackend>> create(int index);

  std::string name() const override { return "cuda:" + std::to_string(index_); }
  Result<Tensor> alloc(const TensorDesc& desc) override;
  void upload(Tensor& dst, const float* host) override;
  void download(const Tensor& src, float* host) override;
  void fill(Tensor& t, float value) override;
  void synchronize() override;

  Result<std::unique_ptr<ConvOp>> make_conv(const TensorDesc& src, const ConvParams&) override;
  Result<std::unique_ptr<DenseOp>> make_dense(const TensorDesc& src, const DenseParams&) override;
  Result<std::unique_ptr<PoolOp>> make_pool(const TensorDesc& src, const PoolParams&) override;
  Result<std::unique_ptr<EltwiseOp>> make_eltwise(const TensorDesc& src,
                                                  const ActivationSpec&) override;
  Result<std::unique_ptr<BatchNormOp>> make_batch_norm(const TensorDesc& src,
                                                       const BatchNormParams&) override;
  Result<std::unique_ptr<DropoutOp>> make_dropout(const TensorDesc& src, float rate) override;
  Result<std::unique_ptr<ReshapeOp>> make_reshape(const TensorDesc& src,
                                                  std::vector<int64_t> dims) override;
  Result<std::unique_ptr<SoftmaxXentOp>> make_softmax_xent(const TensorDesc& logits) override;
  void update(const UpdateRule& rule, Tensor& param, const Tensor& grad, Tensor* state1,
              Tensor* state2) override;

  // For the plans (cuda_ops.cpp).
  int index() const { return index_; }
  cudaStream_t stream() const { return stream_.get(); }
  cudnnHandle_t cudnn() const { return cudnn_.get(); }
  cublasHandle_t cublas() const { return cublas_.get(); }
  bool allow_tf32() const { return allow_tf32_; }
  Status make_current() const;
  // One workspace shared by every plan (ops run one after another on one stream). It grows
  // while plans are made, never during a step.
  Status reserve_workspace(std::size_t bytes) { return workspace_.reserve(bytes); }
  void* workspace() const { return workspace_.data(); }
  std::size_t workspace_bytes() const { return workspace_.bytes(); }

 private:
  explicit CudaBackend(int index) : index_(index) {}

  int index_ = 0;
  bool allow_tf32_ = false;
  // Declared first so it is destroyed last: the handles are bound to it.
  Stream stream_;
  CudnnHandle cudnn_;
  CublasHandle cublas_;
  DeviceBuffer workspace_;
};

// Aborts the process with `where` and the error when `status` failed (a device fault after
// setup; see the header comment).
void must(const Status& status, const char* where);

}  // namespace hpo::nn::gpu

// Device faults after setup: name the call, then abort (backend.h: not an input error).
#define HPO_GPU_MUST(call) ::hpo::nn::gpu::must(::hpo::nn::gpu::check((call), #call), __func__)
