// The op plans of the CUDA backend: cuDNN descriptors and algorithms chosen once per shape,
// cuBLAS for dense layers, kernels.cu for bias, activations, dropout and the loss. Every plan
// allocates what it keeps (masks, batch statistics, per-row losses) when it is made.
// Longer than 450 lines on purpose: one section per op of the backend interface (backend.h),
// each self-contained and read on its own beside the same op of the other backend; a file per
// op would only repeat the shared helpers above.
#include <algorithm>
#include <climits>
#include <cmath>

#include "trainer/nn/cuda/check.h"
#include "trainer/nn/cuda/cuda_backend.h"
#include "trainer/nn/cuda/dense_gemm.h"
#include "trainer/nn/cuda/kernels.h"

namespace hpo::nn::gpu {
namespace {

constexpr float kOne = 1.0f;
constexpr float kZero = 0.0f;
// A convolution algorithm that needs more scratch than this is passed over for the next one.
constexpr std::size_t kMaxWorkspace = std::size_t{1} << 30;

kernels::Act act_of(Activation a) { return static_cast<kernels::Act>(static_cast<int>(a)); }

bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

Status check_dims(const TensorDesc& desc, const char* what) {
  for (int64_t d : desc.dims) {
    if (!fits_int(d) || d == 0) {
      return fail(std::string("cuda backend: ") + what + ": dimension " + std::to_string(d) +
                  " is not in 1.." + std::to_string(INT_MAX));
    }
  }
  if (!fits_int(desc.count())) {
    return fail(std::string("cuda backend: ") + what + ": " + std::to_string(desc.count()) +
                " elements are more than cuDNN's int can count");
  }
  if (desc.layout != 0) {
    return fail(std::string("cuda backend: ") + what + ": layout " + std::to_string(desc.layout) +
                " is not plain");
  }
  return {};
}

// {N, C[, H, W]} as cuDNN's 4-d NCHW (a 2-d tensor is N x C x 1 x 1).
Result<TensorDescriptor> nchw(const nn::TensorDesc& desc) {
  int dims[4] = {1, 1, 1, 1};
  for (std::size_t i = 0; i < desc.dims.size() && i < 4; ++i) dims[i] = int(desc.dims[i]);
  return make_tensor(dims[0], dims[1], dims[2], dims[3]);
}

// The first (fastest by cuDNN's heuristics) algorithm that works, fits the workspace limit, is
// deterministic where asked, and does not use tensor cores unless TF32 is allowed (their
// reduced precision would break the match with the CPU backend).
template <class Perf>
Result<Perf> pick(const Perf* perf, int returned, bool need_deterministic, bool allow_tf32,
                  const char* what) {
  for (int i = 0; i < returned; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > kMaxWorkspace) continue;
    if (need_deterministic && perf[i].determinism != CUDNN_DETERMINISTIC) continue;
    if (!allow_tf32 && (perf[i].mathType == CUDNN_TENSOR_OP_MATH ||
                        perf[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)) {
      continue;
    }
    return perf[i];
  }
  return fail(std::string("cuda backend: cuDNN offers no ") +
              (need_deterministic ? "deterministic " : "") + what +
              " algorithm for this shape within 1 GiB of workspace");
}

// ---- convolution ----

class GpuConv final : public ConvOp {
 public:
  static Result<std::unique_ptr<GpuConv>> make(CudaBackend& b, const nn::TensorDesc& src,
                                               const ConvParams& p) {
    std::unique_ptr<GpuConv> op(new GpuConv(b, p));
    const int n = int(src.dims[0]), c = int(src.dims[1]), h = int(src.dims[2]),
              w = int(src.dims[3]);
    auto x = make_tensor(n, c, h, w);
    if (!x) return std::unexpected(x.error());
    op->x_ = std::move(*x);
    auto filter = make_filter(int(p.filters), c, int(p.kernel_h), int(p.kernel_w));
    if (!filter) return std::unexpected(filter.error());
    op->w_ = std::move(*filter);
    auto conv = make_conv(int(p.pad), int(p.pad), int(p.stride), int(p.stride), b.allow_tf32());
    if (!conv) return std::unexpected(conv.error());
    op->conv_ = std::move(*conv);
    int on = 0, oc = 0, oh = 0, ow = 0;
    HPO_GPU_TRY(cudnnGetConvolution2dForwardOutputDim(op->conv_.get(), op->x_.get(), op->w_.get(),
                                                      &on, &oc, &oh, &ow));
    auto y = make_tensor(on, oc, oh, ow);
    if (!y) return std::unexpected(y.error());
    op->y_ = std::move(*y);
    op->dst_desc_ = {{on, oc, oh, ow}, 0};
    op->weights_desc_ = {{p.filters, c, p.kernel_h, p.kernel_w}, 0};
    op->bias_desc_ = {{p.filters}, 0};

    cudnnHandle_t handle = b.cudnn();
    int returned = 0;
    cudnnConvolutionFwdAlgoPerf_t fwd[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    HPO_GPU_TRY(cudnnGetConvolutionForwardAlgorithm_v7(
        handle, op->x_.get(), op->w_.get(), op->conv_.get(), op->y_.get(),
        CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, fwd));
    auto fwd_pick = pick(fwd, returned, false, b.allow_tf32(), "forward convolution");
    if (!fwd_pick) return std::unexpected(fwd_pick.error());
    op->fwd_algo_ = fwd_pick->algo;

    cudnnConvolutionBwdDataAlgoPerf_t data[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    HPO_GPU_TRY(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        handle, op->w_.get(), op->y_.get(), op->conv_.get(), op->x_.get(),
        CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned, data));
    auto data_pick = pick(data, returned, true, b.allow_tf32(), "backward-data convolution");
    if (!data_pick) return std::unexpected(data_pick.error());
    op->data_algo_ = data_pick->algo;

    cudnnConvolutionBwdFilterAlgoPerf_t filt[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    HPO_GPU_TRY(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        handle, op->x_.get(), op->y_.get(), op->conv_.get(), op->w_.get(),
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &returned, filt));
    auto filt_pick = pick(filt, returned, true, b.allow_tf32(), "backward-filter convolution");
    if (!filt_pick) return std::unexpected(filt_pick.error());
    op->filter_algo_ = filt_pick->algo;

    // The perf structs' memory is an estimate; ask for the exact sizes.
    std::size_t fwd_bytes = 0, data_bytes = 0, filt_bytes = 0;
    HPO_GPU_TRY(cudnnGetConvolutionForwardWorkspaceSize(handle, op->x_.get(), op->w_.get(),
                                                        op->conv_.get(), op->y_.get(),
                                                        op->fwd_algo_, &fwd_bytes));
    HPO_GPU_TRY(cudnnGetConvolutionBackwardDataWorkspaceSize(handle, op->w_.get(), op->y_.get(),
                                                             op->conv_.get(), op->x_.get(),
                                                             op->data_algo_, &data_bytes));
    HPO_GPU_TRY(cudnnGetConvolutionBackwardFilterWorkspaceSize(handle, op->x_.get(), op->y_.get(),
                                                               op->conv_.get(), op->w_.get(),
                                                               op->filter_algo_, &filt_bytes));
    HPO_GPU_PROPAGATE(b.reserve_workspace(std::max({fwd_bytes, data_bytes, filt_bytes})));
    return op;
  }

  const nn::TensorDesc& dst_desc() const override { return dst_desc_; }
  const nn::TensorDesc& weights_desc() const override { return weights_desc_; }
  const nn::TensorDesc& bias_desc() const override { return bias_desc_; }

  void forward(const Tensor& src, const Tensor& weights, const Tensor& bias, Tensor& dst) override {
    HPO_GPU_MUST(cudnnConvolutionForward(b_.cudnn(), &kOne, x_.get(), src.data(), w_.get(),
                                         weights.data(), conv_.get(), fwd_algo_, b_.workspace(),
                                         b_.workspace_bytes(), &kZero, y_.get(), dst.data()));
    const auto& d = dst_desc_.dims;
    HPO_GPU_MUST(kernels::bias_add(dst.data(), bias.data(), int(d[0]), int(d[1]), int(d[2] * d[3]),
                                   b_.stream()));
    if (p_.fused.kind != Activation::kNone) {
      HPO_GPU_MUST(kernels::activation_forward(act_of(p_.fused.kind), p_.fused.alpha, dst.data(),
                                               dst.data(), dst.size(), b_.stream()));
    }
  }

  void backward(const Tensor& src, const Tensor& weights, const Tensor& dst, Tensor& diff_dst,
                Tensor* diff_src, Tensor& diff_weights, Tensor& diff_bias) override {
    if (p_.fused.kind != Activation::kNone) {
      HPO_GPU_MUST(kernels::activation_backward(act_of(p_.fused.kind), p_.fused.alpha, dst.data(),
                                                diff_dst.data(), diff_dst.data(), diff_dst.size(),
                                                b_.stream()));
    }
    const auto& d = dst_desc_.dims;
    HPO_GPU_MUST(kernels::bias_grad(diff_dst.data(), diff_bias.data(), int(d[0]), int(d[1]),
                                    int(d[2] * d[3]), 0.0f, b_.stream()));
    HPO_GPU_MUST(cudnnConvolutionBackwardFilter(
        b_.cudnn(), &kOne, x_.get(), src.data(), y_.get(), diff_dst.data(), conv_.get(),
        filter_algo_, b_.workspace(), b_.workspace_bytes(), &kZero, w_.get(), diff_weights.data()));
    if (diff_src != nullptr) {
      HPO_GPU_MUST(cudnnConvolutionBackwardData(
          b_.cudnn(), &kOne, w_.get(), weights.data(), y_.get(), diff_dst.data(), conv_.get(),
          data_algo_, b_.workspace(), b_.workspace_bytes(), &kZero, x_.get(), diff_src->data()));
    }
  }

 private:
  GpuConv(CudaBackend& b, const ConvParams& p) : b_(b), p_(p) {}

  CudaBackend& b_;
  ConvParams p_;
  TensorDescriptor x_, y_;
  FilterDescriptor w_;
  ConvDescriptor conv_;
  cudnnConvolutionFwdAlgo_t fwd_algo_{};
  cudnnConvolutionBwdDataAlgo_t data_algo_{};
  cudnnConvolutionBwdFilterAlgo_t filter_algo_{};
  nn::TensorDesc dst_desc_, weights_desc_, bias_desc_;
};

// ---- dense (cuBLAS; the products are spelled out in dense_gemm.h) ----

void gemm(cublasHandle_t handle, const Gemm& g, const float* a, const float* b, float* c) {
  HPO_GPU_MUST(cublasSgemm(handle, g.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                           g.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N, g.m, g.n, g.k, &kOne, a,
                           g.lda, b, g.ldb, &kZero, c, g.ldc));
}

class GpuDense final : public DenseOp {
 public:
  GpuDense(CudaBackend& b, int64_t batch, int64_t inputs, const DenseParams& p)
      : b_(b),
        p_(p),
        n_(int(batch)),
        k_(int(inputs)),
        u_(int(p.units)),
        dst_desc_{{batch, p.units}, 0},
        weights_desc_{{p.units, inputs}, 0},
        bias_desc_{{p.units}, 0} {}

  const nn::TensorDesc& dst_desc() const override { return dst_desc_; }
  const nn::TensorDesc& weights_desc() const override { return weights_desc_; }
  const nn::TensorDesc& bias_desc() const override { return bias_desc_; }

  void forward(const Tensor& src, const Tensor& weights, const Tensor& bias, Tensor& dst) override {
    gemm(b_.cublas(), dense_forward_gemm(n_, k_, u_), weights.data(), src.data(), dst.data());
    HPO_GPU_MUST(kernels::bias_add(dst.data(), bias.data(), n_, u_, 1, b_.stream()));
    if (p_.fused.kind != Activation::kNone) {
      HPO_GPU_MUST(kernels::activation_forward(act_of(p_.fused.kind), p_.fused.alpha, dst.data(),
                                               dst.data(), dst.size(), b_.stream()));
    }
  }

  void backward(const Tensor& src, const Tensor& weights, const Tensor& dst, Tensor& diff_dst,
                Tensor* diff_src, Tensor& diff_weights, Tensor& diff_bias) override {
    if (p_.fused.kind != Activation::kNone) {
      HPO_GPU_MUST(kernels::activation_backward(act_of(p_.fused.kind), p_.fused.alpha, dst.data(),
                                                diff_dst.data(), diff_dst.data(), diff_dst.size(),
                                                b_.stream()));
    }
    HPO_GPU_MUST(
        kernels::bias_grad(diff_dst.data(), diff_bias.data(), n_, u_, 1, 0.0f, b_.stream()));
    gemm(b_.cublas(), dense_weights_gemm(n_, k_, u_), src.data(), diff_dst.data(),
         diff_weights.data());
    if (diff_src != nullptr) {
      gemm(b_.cublas(), dense_data_gemm(n_, k_, u_), weights.data(), diff_dst.data(),
           diff_src->data());
    }
  }

 private:
  CudaBackend& b_;
  DenseParams p_;
  int n_, k_, u_;
  nn::TensorDesc dst_desc_, weights_desc_, bias_desc_;
};

// ---- pooling ----

class GpuPool final : public PoolOp {
 public:
  static Result<std::unique_ptr<GpuPool>> make(CudaBackend& b, const nn::TensorDesc& src,
                                               const PoolParams& p) {
    std::unique_ptr<GpuPool> op(new GpuPool(b));
    auto x = nchw(src);
    if (!x) return std::unexpected(x.error());
    op->x_ = std::move(*x);
    const int size = int(p.size), pad = int(p.pad), stride = int(p.stride);
    auto pool = make_pool(p.mode == PoolMode::kMax, size, size, pad, pad, stride, stride);
    if (!pool) return std::unexpected(pool.error());
    op->pool_ = std::move(*pool);
    int n = 0, c = 0, h = 0, w = 0;
    HPO_GPU_TRY(cudnnGetPooling2dForwardOutputDim(op->pool_.get(), op->x_.get(), &n, &c, &h, &w));
    auto y = make_tensor(n, c, h, w);
    if (!y) return std::unexpected(y.error());
    op->y_ = std::move(*y);
    op->dst_desc_ = {{n, c, h, w}, 0};
    return op;
  }

  const nn::TensorDesc& dst_desc() const override { return dst_desc_; }

  void forward(const Tensor& src, Tensor& dst) override {
    // cuDNN's backward wants the forward's input and output again.
    src_ = src.data();
    dst_ = dst.data();
    HPO_GPU_MUST(cudnnPoolingForward(b_.cudnn(), pool_.get(), &kOne, x_.get(), src.data(), &kZero,
                                     y_.get(), dst.data()));
  }

  void backward(const Tensor& diff_dst, Tensor& diff_src) override {
    HPO_GPU_MUST(cudnnPoolingBackward(b_.cudnn(), pool_.get(), &kOne, y_.get(), dst_, y_.get(),
                                      diff_dst.data(), x_.get(), src_, &kZero, x_.get(),
                                      diff_src.data()));
  }

 private:
  explicit GpuPool(CudaBackend& b) : b_(b) {}

  CudaBackend& b_;
  TensorDescriptor x_, y_;
  PoolDescriptor pool_;
  nn::TensorDesc dst_desc_;
  const float* src_ = nullptr;
  const float* dst_ = nullptr;
};

// ---- standalone activation ----

class GpuEltwise final : public EltwiseOp {
 public:
  GpuEltwise(CudaBackend& b, nn::TensorDesc desc, const ActivationSpec& a)
      : b_(b), desc_(std::move(desc)), a_(a) {}
  const nn::TensorDesc& dst_desc() const override { return desc_; }
  void forward(const Tensor& src, Tensor& dst) override {
    HPO_GPU_MUST(kernels::activation_forward(act_of(a_.kind), a_.alpha, src.data(), dst.data(),
                                             dst.size(), b_.stream()));
  }
  void backward(const Tensor&, const Tensor& dst, const Tensor& diff_dst,
                Tensor& diff_src) override {
    HPO_GPU_MUST(kernels::activation_backward(act_of(a_.kind), a_.alpha, dst.data(),
                                              diff_dst.data(), diff_src.data(), diff_src.size(),
                                              b_.stream()));
  }

 private:
  CudaBackend& b_;
  nn::TensorDesc desc_;
  ActivationSpec a_;
};

// ---- batch normalization ----
// cuDNN's running average is running = (1 - f) running + f batch with the unbiased batch
// variance, so f = 1 - our momentum gives backend.h's rule.

class GpuBatchNorm final : public BatchNormOp {
 public:
  static Result<std::unique_ptr<GpuBatchNorm>> make(CudaBackend& b, const nn::TensorDesc& src,
                                                    const BatchNormParams& p) {
    std::unique_ptr<GpuBatchNorm> op(new GpuBatchNorm(b, src, p));
    auto x = nchw(src);
    if (!x) return std::unexpected(x.error());
    op->x_ = std::move(*x);
    cudnnTensorDescriptor_t raw = nullptr;
    HPO_GPU_TRY(cudnnCreateTensorDescriptor(&raw));
    op->stats_ = TensorDescriptor(raw);
    HPO_GPU_TRY(cudnnDeriveBNTensorDescriptor(raw, op->x_.get(), CUDNN_BATCHNORM_SPATIAL));
    const std::size_t bytes = static_cast<std::size_t>(src.dims[1]) * sizeof(float);
    auto mean = DeviceBuffer::allocate(bytes);
    if (!mean) return std::unexpected(mean.error());
    op->saved_mean_ = std::move(*mean);
    auto inv_var = DeviceBuffer::allocate(bytes);
    if (!inv_var) return std::unexpected(inv_var.error());
    op->saved_inv_var_ = std::move(*inv_var);
    return op;
  }

  const nn::TensorDesc& dst_desc() const override { return desc_; }

  void forward(const Tensor& src, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
               Tensor& running_var, Tensor& dst, bool training) override {
    if (!training) {
      HPO_GPU_MUST(cudnnBatchNormalizationForwardInference(
          b_.cudnn(), CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, x_.get(), src.data(), x_.get(),
          dst.data(), stats_.get(), gamma.data(), beta.data(), running_mean.data(),
          running_var.data(), eps()));
      return;
    }
    HPO_GPU_MUST(cudnnBatchNormalizationForwardTraining(
        b_.cudnn(), CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, x_.get(), src.data(), x_.get(),
        dst.data(), stats_.get(), gamma.data(), beta.data(), 1.0 - double(p_.momentum),
        running_mean.data(), running_var.data(), eps(), saved_mean_.data(), saved_inv_var_.data()));
  }

  void backward(const Tensor& src, const Tensor& diff_dst, const Tensor& gamma, const Tensor&,
                Tensor& diff_src, Tensor& diff_gamma, Tensor& diff_beta) override {
    HPO_GPU_MUST(cudnnBatchNormalizationBackward(
        b_.cudnn(), CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, &kOne, &kZero, x_.get(), src.data(),
        x_.get(), diff_dst.data(), x_.get(), diff_src.data(), stats_.get(), gamma.data(),
        diff_gamma.data(), diff_beta.data(), eps(), saved_mean_.data(), saved_inv_var_.data()));
  }

 private:
  GpuBatchNorm(CudaBackend& b, nn::TensorDesc desc, const BatchNormParams& p)
      : b_(b), desc_(std::move(desc)), p_(p) {}
  double eps() const { return std::max(double(p_.eps), CUDNN_BN_MIN_EPSILON); }

  CudaBackend& b_;
  nn::TensorDesc desc_;
  BatchNormParams p_;
  TensorDescriptor x_, stats_;
  DeviceBuffer saved_mean_, saved_inv_var_;
};

// ---- dropout: the mask rule of backend.h (kernels::dropout_uniform is dropout_hash) ----

class GpuDropout final : public DropoutOp {
 public:
  GpuDropout(CudaBackend& b, nn::TensorDesc desc, float rate, DeviceBuffer mask)
      : b_(b), desc_(std::move(desc)), rate_(rate), mask_(std::move(mask)) {}
  const nn::TensorDesc& dst_desc() const override { return desc_; }

  void forward(const Tensor& src, Tensor& dst, uint64_t seed, bool training) override {
    const std::size_t n = dst.size();
    if (!training || rate_ <= 0.0f) {
      must(copy_on_device(dst.data(), src.data(), n * sizeof(float), b_.stream()), "dropout");
      HPO_GPU_MUST(kernels::fill(mask_.as<float>(), n, 1.0f, b_.stream()));
      return;
    }
    HPO_GPU_MUST(kernels::dropout_mask(mask_.as<float>(), n, rate_, seed, 0, b_.stream()));
    HPO_GPU_MUST(kernels::multiply(src.data(), mask_.as<float>(), dst.data(), n, b_.stream()));
  }

  void backward(const Tensor& diff_dst, Tensor& diff_src) override {
    HPO_GPU_MUST(kernels::multiply(diff_dst.data(), mask_.as<float>(), diff_src.data(),
                                   diff_src.size(), b_.stream()));
  }

 private:
  CudaBackend& b_;
  nn::TensorDesc desc_;
  float rate_;
  DeviceBuffer mask_;
};

// ---- reshape: plain to plain is a copy ----

class GpuReshape final : public ReshapeOp {
 public:
  GpuReshape(CudaBackend& b, nn::TensorDesc dst) : b_(b), desc_(std::move(dst)) {}
  const nn::TensorDesc& dst_desc() const override { return desc_; }
  void forward(const Tensor& src, Tensor& dst) override {
    must(copy_on_device(dst.data(), src.data(), dst.size() * sizeof(float), b_.stream()),
         "reshape");
  }
  void backward(const Tensor& diff_dst, Tensor& diff_src) override {
    must(copy_on_device(diff_src.data(), diff_dst.data(), diff_src.size() * sizeof(float),
                        b_.stream()),
         "reshape");
  }

 private:
  CudaBackend& b_;
  nn::TensorDesc desc_;
};

// ---- softmax cross-entropy ----

class GpuSoftmaxXent final : public SoftmaxXentOp {
 public:
  GpuSoftmaxXent(CudaBackend& b, int rows, int classes, DeviceBuffer scratch)
      : b_(b), rows_(rows), classes_(classes), scratch_(std::move(scratch)) {}

  double forward(const Tensor& logits, const Tensor& labels, int64_t valid,
                 int64_t* correct) override {
    logits_ = logits.data();
    valid_ = int(std::clamp<int64_t>(valid, 0, rows_));
    float* loss_rows = scratch_.as<float>();
    float* correct_rows = loss_rows + rows_;
    float* sums = correct_rows + rows_;
    HPO_GPU_MUST(kernels::softmax_cross_entropy(logits.data(), labels.data(), rows_, valid_,
                                                classes_, 1.0f, loss_rows, correct_rows, nullptr,
                                                b_.stream()));
    HPO_GPU_MUST(kernels::sum(loss_rows, std::size_t(rows_), sums, b_.stream()));
    HPO_GPU_MUST(kernels::sum(correct_rows, std::size_t(rows_), sums + 1, b_.stream()));
    float host[2] = {0.0f, 0.0f};
    must(copy_to_host(host, sums, sizeof host, b_.stream()), "softmax cross-entropy");
    if (correct != nullptr) *correct += std::llround(host[1]);
    return double(host[0]);
  }

  void backward(const Tensor& labels, Tensor& diff_logits) override {
    const float scale = valid_ > 0 ? 1.0f / float(valid_) : 0.0f;
    HPO_GPU_MUST(kernels::softmax_cross_entropy(logits_, labels.data(), rows_, valid_, classes_,
                                                scale, nullptr, nullptr, diff_logits.data(),
                                                b_.stream()));
  }

 private:
  CudaBackend& b_;
  int rows_, classes_;
  int valid_ = 0;
  const float* logits_ = nullptr;  // the forward's logits, read again by backward
  DeviceBuffer scratch_;           // loss per row, correct per row, the two sums
};

}  // namespace

Result<std::unique_ptr<ConvOp>> CudaBackend::make_conv(const nn::TensorDesc& src,
                                                       const ConvParams& p) {
  if (src.dims.size() != 4) return fail("cuda backend: conv wants a 4-d input {N, C, H, W}");
  HPO_GPU_PROPAGATE(check_dims(src, "conv input"));
  if (p.filters <= 0 || p.kernel_h <= 0 || p.kernel_w <= 0 || p.stride <= 0 || p.pad < 0 ||
      !fits_int(p.filters) || !fits_int(p.kernel_h) || !fits_int(p.kernel_w) ||
      !fits_int(p.stride) || !fits_int(p.pad) || src.dims[2] + 2 * p.pad < p.kernel_h ||
      src.dims[3] + 2 * p.pad < p.kernel_w) {
    return fail("cuda backend: bad conv shape (kernel " + std::to_string(p.kernel_h) + "x" +
                std::to_string(p.kernel_w) + ", stride " + std::to_string(p.stride) + ", pad " +
                std::to_string(p.pad) + " on " + std::to_string(src.dims[2]) + "x" +
                std::to_string(src.dims[3]) + ")");
  }
  HPO_GPU_PROPAGATE(make_current());
  auto op = GpuConv::make(*this, src, p);
  if (!op) return std::unexpected(op.error());
  return std::unique_ptr<ConvOp>(std::move(*op));
}

Result<std::unique_ptr<DenseOp>> CudaBackend::make_dense(const nn::TensorDesc& src,
                                                         const DenseParams& p) {
  if (src.dims.size() < 2 || p.units <= 0 || !fits_int(p.units)) {
    return fail("cuda backend: bad dense shape");
  }
  HPO_GPU_PROPAGATE(check_dims(src, "dense input"));
  HPO_GPU_PROPAGATE(make_current());
  return std::unique_ptr<DenseOp>(new GpuDense(*this, src.dims[0], src.count() / src.dims[0], p));
}

Result<std::unique_ptr<PoolOp>> CudaBackend::make_pool(const nn::TensorDesc& src,
                                                       const PoolParams& p) {
  if (src.dims.size() != 4 || p.size <= 0 || p.stride <= 0 || p.pad < 0 || !fits_int(p.size) ||
      !fits_int(p.stride) || !fits_int(p.pad) || src.dims[2] + 2 * p.pad < p.size ||
      src.dims[3] + 2 * p.pad < p.size) {
    return fail("cuda backend: bad pool shape");
  }
  HPO_GPU_PROPAGATE(check_dims(src, "pool input"));
  HPO_GPU_PROPAGATE(make_current());
  auto op = GpuPool::make(*this, src, p);
  if (!op) return std::unexpected(op.error());
  return std::unique_ptr<PoolOp>(std::move(*op));
}

Result<std::unique_ptr<EltwiseOp>> CudaBackend::make_eltwise(const nn::TensorDesc& src,
                                                             const ActivationSpec& a) {
  if (a.kind == Activation::kNone) return fail("cuda backend: eltwise without an activation");
  HPO_GPU_PROPAGATE(check_dims(src, "activation input"));
  return std::unique_ptr<EltwiseOp>(new GpuEltwise(*this, src, a));
}

Result<std::unique_ptr<BatchNormOp>> CudaBackend::make_batch_norm(const nn::TensorDesc& src,
                                                                  const BatchNormParams& p) {
  if (src.dims.size() < 2 || src.dims.size() > 4) {
    return fail("cuda backend: batch norm wants {N, C}, {N, C, H} or {N, C, H, W}");
  }
  HPO_GPU_PROPAGATE(check_dims(src, "batch norm input"));
  HPO_GPU_PROPAGATE(make_current());
  auto op = GpuBatchNorm::make(*this, src, p);
  if (!op) return std::unexpected(op.error());
  return std::unique_ptr<BatchNormOp>(std::move(*op));
}

Result<std::unique_ptr<DropoutOp>> CudaBackend::make_dropout(const nn::TensorDesc& src,
                                                             float rate) {
  if (!(rate >= 0.0f && rate < 1.0f)) return fail("cuda backend: dropout rate not in [0, 1)");
  HPO_GPU_PROPAGATE(check_dims(src, "dropout input"));
  HPO_GPU_PROPAGATE(make_current());
  auto mask = DeviceBuffer::allocate(static_cast<std::size_t>(src.count()) * sizeof(float));
  if (!mask) return fail("cuda backend: dropout mask: " + mask.error().message);
  return std::unique_ptr<DropoutOp>(new GpuDropout(*this, src, rate, std::move(*mask)));
}

Result<std::unique_ptr<ReshapeOp>> CudaBackend::make_reshape(const nn::TensorDesc& src,
                                                             std::vector<int64_t> dims) {
  nn::TensorDesc dst{std::move(dims), 0};
  if (dst.count() != src.count()) return fail("cuda backend: reshape changes the element count");
  HPO_GPU_PROPAGATE(check_dims(src, "reshape input"));
  return std::unique_ptr<ReshapeOp>(new GpuReshape(*this, std::move(dst)));
}

Result<std::unique_ptr<SoftmaxXentOp>> CudaBackend::make_softmax_xent(
    const nn::TensorDesc& logits) {
  if (logits.dims.size() != 2) return fail("cuda backend: softmax wants {N, K} logits");
  HPO_GPU_PROPAGATE(check_dims(logits, "logits"));
  HPO_GPU_PROPAGATE(make_current());
  const int rows = int(logits.dims[0]), classes = int(logits.dims[1]);
  auto scratch = DeviceBuffer::allocate((2 * std::size_t(rows) + 2) * sizeof(float));
  if (!scratch) return fail("cuda backend: softmax scratch: " + scratch.error().message);
  return std::unique_ptr<SoftmaxXentOp>(
      new GpuSoftmaxXent(*this, rows, classes, std::move(*scratch)));
}

}  // namespace hpo::nn::gpu
