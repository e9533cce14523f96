// The op plans of the CPU backend: oneDNN primitives created once per shape (format_tag::any,
// so the primitive picks its blocked layout), memory objects rebound per call, reorders only
// where neighbours disagree on a layout. dnnl::error is caught here and turned into Result.
// Longer than 450 lines on purpose: one section per op of the backend interface (backend.h),
// each self-contained and read on its own beside the same op of the other backend; a file per
// op would only repeat the shared helpers above.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "trainer/nn/cpu/cpu_backend.h"

namespace hpo::nn::cpu {

namespace {

using dnnl::algorithm;
using dnnl::memory;
using dnnl::prop_kind;
using tag = memory::format_tag;
using dt = memory::data_type;

memory::desc any_md(const memory::dims& dims) { return memory::desc(dims, dt::f32, tag::any); }

// Forward algorithm for post-ops, and the "use dst" variant for backward (all five activations
// have one, so the backward needs only the layer's output).
algorithm fwd_alg(Activation a) {
  switch (a) {
    case Activation::kRelu:
    case Activation::kLeakyRelu:
      return algorithm::eltwise_relu;
    case Activation::kTanh:
      return algorithm::eltwise_tanh;
    case Activation::kSigmoid:
      return algorithm::eltwise_logistic;
    case Activation::kElu:
      return algorithm::eltwise_elu;
    case Activation::kNone:
      break;
  }
  return algorithm::eltwise_linear;
}
algorithm dst_alg(Activation a) {
  switch (a) {
    case Activation::kRelu:
    case Activation::kLeakyRelu:
      return algorithm::eltwise_relu_use_dst_for_bwd;
    case Activation::kTanh:
      return algorithm::eltwise_tanh_use_dst_for_bwd;
    case Activation::kSigmoid:
      return algorithm::eltwise_logistic_use_dst_for_bwd;
    case Activation::kElu:
      return algorithm::eltwise_elu_use_dst_for_bwd;
    case Activation::kNone:
      break;
  }
  return algorithm::eltwise_linear;
}
float alpha_of(const ActivationSpec& a) {
  return a.kind == Activation::kLeakyRelu || a.kind == Activation::kElu ? a.alpha : 0.0f;
}

// Backward of an activation from its output, in place on diff (fused post-op undo).
class ActBackward {
 public:
  ActBackward() = default;
  ActBackward(CpuBackend& b, const memory::desc& dst, const ActivationSpec& a) {
    if (a.kind == Activation::kNone) return;
    active_ = true;
    auto fwd = dnnl::eltwise_forward::primitive_desc(
        dnnl::eltwise_forward::desc(prop_kind::forward_training, dst_alg(a.kind), dst, alpha_of(a)),
        b.engine());
    auto bwd = dnnl::eltwise_backward::primitive_desc(
        dnnl::eltwise_backward::desc(dst_alg(a.kind), dst, dst, alpha_of(a)), b.engine(), fwd);
    prim_ = dnnl::eltwise_backward(bwd);
    dst_ = Bound(dst, b.engine());
    diff_ = Bound(dst, b.engine());
    args_ = {{DNNL_ARG_DST, dst_.get()},
             {DNNL_ARG_DIFF_DST, diff_.get()},
             {DNNL_ARG_DIFF_SRC, diff_.get()}};
  }
  void run(CpuBackend& b, const Tensor& dst, Tensor& diff) {
    if (!active_) return;
    dst_.at(dst.data());
    diff_.at(diff.data());
    prim_.execute(b.stream(), args_);
  }

 private:
  bool active_ = false;
  dnnl::eltwise_backward prim_;
  Bound dst_, diff_;
  std::unordered_map<int, memory> args_;
};

dnnl::primitive_attr act_attr(const ActivationSpec& a) {
  dnnl::primitive_attr attr;
  if (a.kind != Activation::kNone) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, fwd_alg(a.kind), alpha_of(a), 0.0f);
    attr.set_post_ops(ops);
  }
  return attr;
}

template <class T, class F>
Result<std::unique_ptr<T>> guarded(const char* what, F&& make) {
  try {
    return make();
  } catch (const dnnl::error& e) {
    return fail(std::string("cpu backend: cannot create ") + what + ": " + e.what());
  }
}

// ---- convolution / inner product (same shape of plan) ----

template <class Fwd, class BwdData, class BwdWeights, class Base>
class WeightedOp final : public Base {
 public:
  WeightedOp(CpuBackend& b, const memory::desc& src, typename Fwd::desc fwd_desc,
             typename BwdData::desc bwd_data_desc, typename BwdWeights::desc bwd_w_desc,
             const ActivationSpec& act, const memory::desc& plain_w)
      : b_(b) {
    fwd_pd_ = typename Fwd::primitive_desc(fwd_desc, act_attr(act), b.engine());
    fwd_ = Fwd(fwd_pd_);
    dst_desc_ = b.register_md(fwd_pd_.dst_desc());
    // Weights live in the layout forward prefers: reordered never, not even once per step.
    (void)plain_w;
    weights_desc_ = b.register_md(fwd_pd_.weights_desc());
    bias_desc_ = b.register_md(fwd_pd_.bias_desc());
    src_ = Adapter(b, src, fwd_pd_.src_desc());
    w_ = Bound(fwd_pd_.weights_desc(), b.engine());
    bias_ = Bound(fwd_pd_.bias_desc(), b.engine());
    dst_ = Bound(fwd_pd_.dst_desc(), b.engine());
    act_ = ActBackward(b, fwd_pd_.dst_desc(), act);

    bwd_data_pd_ = typename BwdData::primitive_desc(bwd_data_desc, b.engine(), fwd_pd_);
    bwd_data_ = BwdData(bwd_data_pd_);
    bd_diff_dst_ = Adapter(b, fwd_pd_.dst_desc(), bwd_data_pd_.diff_dst_desc());
    bd_w_ = Adapter(b, fwd_pd_.weights_desc(), bwd_data_pd_.weights_desc());
    bd_diff_src_ = Adapter(b, src, bwd_data_pd_.diff_src_desc());

    bwd_w_pd_ = typename BwdWeights::primitive_desc(bwd_w_desc, b.engine(), fwd_pd_);
    bwd_w_ = BwdWeights(bwd_w_pd_);
    bw_src_ = Adapter(b, fwd_pd_.src_desc(), bwd_w_pd_.src_desc());
    bw_diff_dst_ = Adapter(b, fwd_pd_.dst_desc(), bwd_w_pd_.diff_dst_desc());
    bw_diff_w_ = Adapter(b, fwd_pd_.weights_desc(), bwd_w_pd_.diff_weights_desc());
    bw_diff_b_ = Adapter(b, fwd_pd_.bias_desc(), bwd_w_pd_.diff_bias_desc());
    // Argument maps made once; each call only rebinds the buffers.
    fwd_args_ = {{DNNL_ARG_SRC, src_.mem()},
                 {DNNL_ARG_WEIGHTS, w_.get()},
                 {DNNL_ARG_BIAS, bias_.get()},
                 {DNNL_ARG_DST, dst_.get()}};
    bd_args_ = {{DNNL_ARG_DIFF_DST, bd_diff_dst_.mem()},
                {DNNL_ARG_WEIGHTS, bd_w_.mem()},
                {DNNL_ARG_DIFF_SRC, bd_diff_src_.mem()}};
    bw_args_ = {{DNNL_ARG_SRC, bw_src_.mem()},
                {DNNL_ARG_DIFF_DST, bw_diff_dst_.mem()},
                {DNNL_ARG_DIFF_WEIGHTS, bw_diff_w_.mem()},
                {DNNL_ARG_DIFF_BIAS, bw_diff_b_.mem()}};
  }

  const TensorDesc& dst_desc() const override { return dst_desc_; }
  const TensorDesc& weights_desc() const override { return weights_desc_; }
  const TensorDesc& bias_desc() const override { return bias_desc_; }

  void forward(const Tensor& src, const Tensor& w, const Tensor& bias, Tensor& dst) override {
    src_.in(src.data());
    w_.at(w.data());
    bias_.at(bias.data());
    dst_.at(dst.data());
    fwd_.execute(b_.stream(), fwd_args_);
  }

  void backward(const Tensor& src, const Tensor& w, const Tensor& dst, Tensor& diff_dst,
                Tensor* diff_src, Tensor& diff_w, Tensor& diff_b) override {
    act_.run(b_, dst, diff_dst);
    if (diff_src) {
      bd_diff_dst_.in(diff_dst.data());
      bd_w_.in(w.data());
      bd_diff_src_.out(diff_src->data());
      bwd_data_.execute(b_.stream(), bd_args_);
      bd_diff_src_.finish_out(diff_src->data());
    }
    // The forward's src in the primitive's layout: the adapter's scratch still holds it.
    float* fsrc = src_.needed() ? src_.scratch() : src.data();
    bw_src_.in(fsrc);
    bw_diff_dst_.in(diff_dst.data());
    bw_diff_w_.out(diff_w.data());
    bw_diff_b_.out(diff_b.data());
    bwd_w_.execute(b_.stream(), bw_args_);
    bw_diff_w_.finish_out(diff_w.data());
    bw_diff_b_.finish_out(diff_b.data());
  }

 private:
  CpuBackend& b_;
  typename Fwd::primitive_desc fwd_pd_;
  Fwd fwd_;
  typename BwdData::primitive_desc bwd_data_pd_;
  BwdData bwd_data_;
  typename BwdWeights::primitive_desc bwd_w_pd_;
  BwdWeights bwd_w_;
  TensorDesc dst_desc_, weights_desc_, bias_desc_;
  Adapter src_;
  Bound w_, bias_, dst_;
  ActBackward act_;
  Adapter bd_diff_dst_, bd_w_, bd_diff_src_;
  Adapter bw_src_, bw_diff_dst_, bw_diff_w_, bw_diff_b_;
  std::unordered_map<int, memory> fwd_args_, bd_args_, bw_args_;
};

using CpuConv = WeightedOp<dnnl::convolution_forward, dnnl::convolution_backward_data,
                           dnnl::convolution_backward_weights, ConvOp>;
using CpuDense = WeightedOp<dnnl::inner_product_forward, dnnl::inner_product_backward_data,
                            dnnl::inner_product_backward_weights, DenseOp>;

// ---- pooling ----

class CpuPool final : public PoolOp {
 public:
  CpuPool(CpuBackend& b, const memory::desc& src, const PoolParams& p, const memory::dims& dst)
      : b_(b) {
    algorithm alg =
        p.mode == PoolMode::kMax ? algorithm::pooling_max : algorithm::pooling_avg_exclude_padding;
    memory::dims strides{p.stride, p.stride}, kernel{p.size, p.size}, pad{p.pad, p.pad};
    auto fwd_pd = dnnl::pooling_forward::primitive_desc(
        dnnl::pooling_forward::desc(prop_kind::forward_training, alg, src, any_md(dst), strides,
                                    kernel, pad, pad),
        b.engine());
    fwd_ = dnnl::pooling_forward(fwd_pd);
    dst_desc_ = b.register_md(fwd_pd.dst_desc());
    auto bwd_pd = dnnl::pooling_backward::primitive_desc(
        dnnl::pooling_backward::desc(alg, src, fwd_pd.dst_desc(), strides, kernel, pad, pad),
        b.engine(), fwd_pd);
    bwd_ = dnnl::pooling_backward(bwd_pd);
    src_ = Bound(src, b.engine());
    dst_ = Bound(fwd_pd.dst_desc(), b.engine());
    diff_src_ = Adapter(b, src, bwd_pd.diff_src_desc());
    diff_dst_ = Adapter(b, fwd_pd.dst_desc(), bwd_pd.diff_dst_desc());
    if (fwd_pd.workspace_desc().get_size() > 0) {
      ws_mem_ = fwd_pd.workspace_desc();
      ws_buf_ = Scratch(ws_mem_.get_size());
      ws_ = Bound(ws_mem_, b.engine());
      ws_.at(ws_buf_.data());
    }
    fwd_args_ = {{DNNL_ARG_SRC, src_.get()}, {DNNL_ARG_DST, dst_.get()}};
    bwd_args_ = {{DNNL_ARG_DIFF_DST, diff_dst_.mem()}, {DNNL_ARG_DIFF_SRC, diff_src_.mem()}};
    if (ws_buf_.data()) {
      fwd_args_.emplace(DNNL_ARG_WORKSPACE, ws_.get());
      bwd_args_.emplace(DNNL_ARG_WORKSPACE, ws_.get());
    }
  }
  const TensorDesc& dst_desc() const override { return dst_desc_; }
  void forward(const Tensor& src, Tensor& dst) override {
    src_.at(src.data());
    dst_.at(dst.data());
    fwd_.execute(b_.stream(), fwd_args_);
  }
  void backward(const Tensor& diff_dst, Tensor& diff_src) override {
    diff_dst_.in(diff_dst.data());
    diff_src_.out(diff_src.data());
    bwd_.execute(b_.stream(), bwd_args_);
    diff_src_.finish_out(diff_src.data());
  }

 private:
  CpuBackend& b_;
  dnnl::pooling_forward fwd_;
  dnnl::pooling_backward bwd_;
  TensorDesc dst_desc_;
  Bound src_, dst_, ws_;
  Adapter diff_src_, diff_dst_;
  memory::desc ws_mem_;
  Scratch ws_buf_;
  std::unordered_map<int, memory> fwd_args_, bwd_args_;
};

// ---- standalone activation ----

class CpuEltwise final : public EltwiseOp {
 public:
  CpuEltwise(CpuBackend& b, const memory::desc& src, const ActivationSpec& a, TensorDesc desc)
      : b_(b), desc_(std::move(desc)) {
    auto fwd_pd = dnnl::eltwise_forward::primitive_desc(
        dnnl::eltwise_forward::desc(prop_kind::forward_training, dst_alg(a.kind), src, alpha_of(a)),
        b.engine());
    fwd_ = dnnl::eltwise_forward(fwd_pd);
    auto bwd_pd = dnnl::eltwise_backward::primitive_desc(
        dnnl::eltwise_backward::desc(dst_alg(a.kind), src, src, alpha_of(a)), b.engine(), fwd_pd);
    bwd_ = dnnl::eltwise_backward(bwd_pd);
    src_ = Bound(src, b.engine());
    dst_ = Bound(src, b.engine());
    diff_dst_ = Bound(src, b.engine());
    diff_src_ = Bound(src, b.engine());
  }
  const TensorDesc& dst_desc() const override { return desc_; }
  void forward(const Tensor& src, Tensor& dst) override {
    fwd_.execute(b_.stream(),
                 {{DNNL_ARG_SRC, src_.at(src.data())}, {DNNL_ARG_DST, dst_.at(dst.data())}});
  }
  void backward(const Tensor&, const Tensor& dst, const Tensor& diff_dst,
                Tensor& diff_src) override {
    bwd_.execute(b_.stream(), {{DNNL_ARG_DST, dst_.at(dst.data())},
                               {DNNL_ARG_DIFF_DST, diff_dst_.at(diff_dst.data())},
                               {DNNL_ARG_DIFF_SRC, diff_src_.at(diff_src.data())}});
  }

 private:
  CpuBackend& b_;
  TensorDesc desc_;
  dnnl::eltwise_forward fwd_;
  dnnl::eltwise_backward bwd_;
  Bound src_, dst_, diff_dst_, diff_src_;
};

// ---- batch normalization ----

class CpuBatchNorm final : public BatchNormOp {
 public:
  CpuBatchNorm(CpuBackend& b, const memory::desc& src, const BatchNormParams& p, TensorDesc desc)
      : b_(b), desc_(std::move(desc)), p_(p) {
    using flags = dnnl::normalization_flags;
    auto f = flags::use_scale | flags::use_shift;
    train_pd_ = dnnl::batch_normalization_forward::primitive_desc(
        dnnl::batch_normalization_forward::desc(prop_kind::forward_training, src, p.eps, f),
        b.engine());
    train_ = dnnl::batch_normalization_forward(train_pd_);
    infer_ = dnnl::batch_normalization_forward(dnnl::batch_normalization_forward::primitive_desc(
        dnnl::batch_normalization_forward::desc(prop_kind::forward_inference, src, p.eps,
                                                f | flags::use_global_stats),
        b.engine()));
    bwd_ = dnnl::batch_normalization_backward(dnnl::batch_normalization_backward::primitive_desc(
        dnnl::batch_normalization_backward::desc(prop_kind::backward, src, src, p.eps, f),
        b.engine(), train_pd_));
    channels_ = desc_.dims[1];
    per_channel_ = desc_.count() / channels_;
    auto cmd = train_pd_.mean_desc();
    mean_buf_ = Scratch(cmd.get_size());
    var_buf_ = Scratch(cmd.get_size());
    for (Bound* m : {&src_, &dst_, &diff_dst_, &diff_src_}) *m = Bound(src, b.engine());
    for (Bound* m : {&mean_, &var_, &scale_, &shift_, &dscale_, &dshift_})
      *m = Bound(cmd, b.engine());
  }
  const TensorDesc& dst_desc() const override { return desc_; }
  void forward(const Tensor& src, const Tensor& gamma, const Tensor& beta, Tensor& rmean,
               Tensor& rvar, Tensor& dst, bool training) override {
    if (!training) {
      infer_.execute(b_.stream(), {{DNNL_ARG_SRC, src_.at(src.data())},
                                   {DNNL_ARG_MEAN, mean_.at(rmean.data())},
                                   {DNNL_ARG_VARIANCE, var_.at(rvar.data())},
                                   {DNNL_ARG_SCALE, scale_.at(gamma.data())},
                                   {DNNL_ARG_SHIFT, shift_.at(beta.data())},
                                   {DNNL_ARG_DST, dst_.at(dst.data())}});
      return;
    }
    train_.execute(b_.stream(), {{DNNL_ARG_SRC, src_.at(src.data())},
                                 {DNNL_ARG_MEAN, mean_.at(mean_buf_.data())},
                                 {DNNL_ARG_VARIANCE, var_.at(var_buf_.data())},
                                 {DNNL_ARG_SCALE, scale_.at(gamma.data())},
                                 {DNNL_ARG_SHIFT, shift_.at(beta.data())},
                                 {DNNL_ARG_DST, dst_.at(dst.data())}});
    const float m = p_.momentum;
    const float unbias = per_channel_ > 1 ? float(per_channel_) / float(per_channel_ - 1) : 1.0f;
    for (int64_t c = 0; c < channels_; ++c) {
      rmean.data()[c] = m * rmean.data()[c] + (1 - m) * mean_buf_.data()[c];
      rvar.data()[c] = m * rvar.data()[c] + (1 - m) * var_buf_.data()[c] * unbias;
    }
  }
  void backward(const Tensor& src, const Tensor& diff_dst, const Tensor& gamma, const Tensor& beta,
                Tensor& diff_src, Tensor& diff_gamma, Tensor& diff_beta) override {
    bwd_.execute(b_.stream(), {{DNNL_ARG_SRC, src_.at(src.data())},
                               {DNNL_ARG_MEAN, mean_.at(mean_buf_.data())},
                               {DNNL_ARG_VARIANCE, var_.at(var_buf_.data())},
                               {DNNL_ARG_SCALE, scale_.at(gamma.data())},
                               {DNNL_ARG_SHIFT, shift_.at(beta.data())},
                               {DNNL_ARG_DIFF_DST, diff_dst_.at(diff_dst.data())},
                               {DNNL_ARG_DIFF_SRC, diff_src_.at(diff_src.data())},
                               {DNNL_ARG_DIFF_SCALE, dscale_.at(diff_gamma.data())},
                               {DNNL_ARG_DIFF_SHIFT, dshift_.at(diff_beta.data())}});
  }

 private:
  CpuBackend& b_;
  TensorDesc desc_;
  BatchNormParams p_;
  dnnl::batch_normalization_forward::primitive_desc train_pd_;
  dnnl::batch_normalization_forward train_, infer_;
  dnnl::batch_normalization_backward bwd_;
  int64_t channels_ = 0, per_channel_ = 0;
  Scratch mean_buf_, var_buf_;
  Bound src_, dst_, diff_dst_, diff_src_, mean_, var_, scale_, shift_, dscale_, dshift_;
};

// ---- dropout (own loop; the mask rule is shared with every backend, see backend.h) ----

class CpuDropout final : public DropoutOp {
 public:
  CpuDropout(TensorDesc desc, size_t physical, float rate)
      : desc_(std::move(desc)),
        n_(static_cast<int64_t>(physical)),
        rate_(rate),
        mask_(physical * sizeof(float)) {}
  const TensorDesc& dst_desc() const override { return desc_; }
  void forward(const Tensor& src, Tensor& dst, uint64_t seed, bool training) override {
    const float* s = src.data();
    float* d = dst.data();
    float* m = mask_.data();
    if (!training || rate_ <= 0.0f) {
      std::memcpy(d, s, size_t(n_) * sizeof(float));
      std::fill_n(m, n_, 1.0f);
      return;
    }
    const float scale = 1.0f / (1.0f - rate_);
    const float rate = rate_;
    const int64_t n = n_;
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      m[i] = dropout_keep(seed, uint64_t(i), rate) ? scale : 0.0f;
      d[i] = s[i] * m[i];
    }
  }
  void backward(const Tensor& diff_dst, Tensor& diff_src) override {
    const float* g = diff_dst.data();
    float* o = diff_src.data();
    const float* m = mask_.data();
    const int64_t n = n_;
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) o[i] = g[i] * m[i];
  }

 private:
  TensorDesc desc_;
  int64_t n_;
  float rate_;
  Scratch mask_;
};

// ---- reshape (flatten): a reorder to plain, or a copy ----

class CpuReshape final : public ReshapeOp {
 public:
  CpuReshape(CpuBackend& b, const TensorDesc& src, std::vector<int64_t> dims)
      : b_(b),
        dst_desc_{std::move(dims), 0},
        plain_(src.layout == 0),
        bytes_(size_t(src.count()) * 4) {
    if (!plain_) {
      auto smd = b.md(src);
      auto pmd = plain_md(src.dims);
      to_plain_ = dnnl::reorder(dnnl::reorder::primitive_desc(b.engine(), smd, b.engine(), pmd));
      from_plain_ = dnnl::reorder(dnnl::reorder::primitive_desc(b.engine(), pmd, b.engine(), smd));
      blocked_ = Bound(smd, b.engine());
      flat_ = Bound(pmd, b.engine());
    }
  }
  const TensorDesc& dst_desc() const override { return dst_desc_; }
  void forward(const Tensor& src, Tensor& dst) override {
    if (plain_) {
      std::memcpy(dst.data(), src.data(), bytes_);
      return;
    }
    to_plain_.execute(b_.stream(), blocked_.at(src.data()), flat_.at(dst.data()));
  }
  void backward(const Tensor& diff_dst, Tensor& diff_src) override {
    if (plain_) {
      std::memcpy(diff_src.data(), diff_dst.data(), bytes_);
      return;
    }
    from_plain_.execute(b_.stream(), flat_.at(diff_dst.data()), blocked_.at(diff_src.data()));
  }

 private:
  CpuBackend& b_;
  TensorDesc dst_desc_;
  bool plain_;
  size_t bytes_;
  dnnl::reorder to_plain_, from_plain_;
  Bound blocked_, flat_;
};

// ---- softmax cross-entropy (own loops; logits reordered to plain when a layer left them
// blocked) ----

class CpuSoftmaxXent final : public SoftmaxXentOp {
 public:
  CpuSoftmaxXent(CpuBackend& b, const TensorDesc& logits)
      : n_(logits.dims[0]),
        k_(logits.count() / logits.dims[0]),
        probs_(size_t(n_ * k_) * sizeof(float)),
        adapt_(b, b.md(logits), plain_md(logits.dims)) {}
  double forward(const Tensor& logits, const Tensor& labels, int64_t valid,
                 int64_t* correct) override {
    const float* x = adapt_.needed() ? (adapt_.in(logits.data()), adapt_.scratch()) : logits.data();
    const float* y = labels.data();
    float* p = probs_.data();
    double loss = 0;
    int64_t right = 0;
    valid_ = std::min(valid, n_);
    for (int64_t i = 0; i < valid_; ++i) {
      const float* xi = x + i * k_;
      float* pi = p + i * k_;
      int64_t best = 0;
      float mx = xi[0];
      for (int64_t j = 1; j < k_; ++j)
        if (xi[j] > mx) mx = xi[j], best = j;
      double sum = 0;
      for (int64_t j = 0; j < k_; ++j) sum += (pi[j] = std::exp(xi[j] - mx));
      const float inv = float(1.0 / sum);
      for (int64_t j = 0; j < k_; ++j) pi[j] *= inv;
      const int64_t label = static_cast<int64_t>(y[i]);
      loss += -(double(xi[label] - mx) - std::log(sum));
      if (best == label) ++right;
    }
    if (correct) *correct += right;
    return loss;
  }
  void backward(const Tensor& labels, Tensor& diff) override {
    float* g = adapt_.needed() ? adapt_.scratch() : diff.data();
    const float* p = probs_.data();
    const float inv = valid_ > 0 ? 1.0f / float(valid_) : 0.0f;
    for (int64_t i = 0; i < n_; ++i) {
      for (int64_t j = 0; j < k_; ++j) g[i * k_ + j] = i < valid_ ? p[i * k_ + j] * inv : 0.0f;
      if (i < valid_) g[i * k_ + static_cast<int64_t>(labels.data()[i])] -= inv;
    }
    if (adapt_.needed()) {
      adapt_.out(diff.data());
      adapt_.finish_out(diff.data());
    }
  }

 private:
  int64_t n_, k_, valid_ = 0;
  Scratch probs_;
  Adapter adapt_;  // user = the logits' layout, prim = plain
};

memory::dims conv_out(const memory::desc& src, const ConvParams& p) {
  auto d = src.dims();
  return {d[0], p.filters, (d[2] + 2 * p.pad - p.kernel_h) / p.stride + 1,
          (d[3] + 2 * p.pad - p.kernel_w) / p.stride + 1};
}

}  // namespace

Result<std::unique_ptr<ConvOp>> CpuBackend::make_conv(const TensorDesc& src, const ConvParams& p) {
  if (src.dims.size() != 4) return fail("cpu backend: conv wants a 4-d input");
  if (p.filters <= 0 || p.kernel_h <= 0 || p.kernel_w <= 0 || p.stride <= 0 || p.pad < 0 ||
      src.dims[2] + 2 * p.pad < p.kernel_h || src.dims[3] + 2 * p.pad < p.kernel_w)
    return fail("cpu backend: bad conv shape");
  return guarded<ConvOp>("convolution", [&]() -> std::unique_ptr<ConvOp> {
    auto smd = md(src);
    memory::dims dst = conv_out(smd, p);
    memory::dims w{p.filters, src.dims[1], p.kernel_h, p.kernel_w}, bias{p.filters};
    memory::dims strides{p.stride, p.stride}, pad{p.pad, p.pad};
    auto alg = algorithm::convolution_direct;
    dnnl::convolution_forward::desc fwd(prop_kind::forward_training, alg, any_md(smd.dims()),
                                        any_md(w), any_md(bias), any_md(dst), strides, pad, pad);
    dnnl::convolution_backward_data::desc bd(alg, any_md(smd.dims()), any_md(w), any_md(dst),
                                             strides, pad, pad);
    dnnl::convolution_backward_weights::desc bw(alg, any_md(smd.dims()), any_md(w), any_md(bias),
                                                any_md(dst), strides, pad, pad);
    return std::make_unique<CpuConv>(*this, smd, fwd, bd, bw, p.fused, plain_md(w));
  });
}

Result<std::unique_ptr<DenseOp>> CpuBackend::make_dense(const TensorDesc& src,
                                                        const DenseParams& p) {
  if (src.dims.size() < 2 || p.units <= 0) return fail("cpu backend: bad dense shape");
  return guarded<DenseOp>("inner product", [&]() -> std::unique_ptr<DenseOp> {
    auto smd = md(src);
    memory::dims sd = smd.dims();
    memory::dims w = sd;  // {units, C[, H, W]}: oneDNN takes the weights with src's rank
    w[0] = p.units;
    memory::dims dst{sd[0], p.units}, bias{p.units};
    dnnl::inner_product_forward::desc fwd(prop_kind::forward_training, any_md(sd), any_md(w),
                                          any_md(bias), any_md(dst));
    dnnl::inner_product_backward_data::desc bd(any_md(sd), any_md(w), any_md(dst));
    dnnl::inner_product_backward_weights::desc bw(any_md(sd), any_md(w), any_md(bias), any_md(dst));
    return std::make_unique<CpuDense>(*this, smd, fwd, bd, bw, p.fused, plain_md(w));
  });
}

Result<std::unique_ptr<PoolOp>> CpuBackend::make_pool(const TensorDesc& src, const PoolParams& p) {
  if (src.dims.size() != 4 || p.size <= 0 || p.stride <= 0 || p.pad < 0 ||
      src.dims[2] + 2 * p.pad < p.size || src.dims[3] + 2 * p.pad < p.size)
    return fail("cpu backend: bad pool shape");
  return guarded<PoolOp>("pooling", [&]() -> std::unique_ptr<PoolOp> {
    memory::dims dst{src.dims[0], src.dims[1], (src.dims[2] + 2 * p.pad - p.size) / p.stride + 1,
                     (src.dims[3] + 2 * p.pad - p.size) / p.stride + 1};
    return std::make_unique<CpuPool>(*this, md(src), p, dst);
  });
}

Result<std::unique_ptr<EltwiseOp>> CpuBackend::make_eltwise(const TensorDesc& src,
                                                            const ActivationSpec& a) {
  if (a.kind == Activation::kNone) return fail("cpu backend: eltwise without an activation");
  return guarded<EltwiseOp>("eltwise", [&]() -> std::unique_ptr<EltwiseOp> {
    return std::make_unique<CpuEltwise>(*this, md(src), a, src);
  });
}

Result<std::unique_ptr<BatchNormOp>> CpuBackend::make_batch_norm(const TensorDesc& src,
                                                                 const BatchNormParams& p) {
  if (src.dims.size() < 2) return fail("cpu backend: batch norm wants {N, C, ...}");
  return guarded<BatchNormOp>("batch normalization", [&]() -> std::unique_ptr<BatchNormOp> {
    return std::make_unique<CpuBatchNorm>(*this, md(src), p, src);
  });
}

Result<std::unique_ptr<DropoutOp>> CpuBackend::make_dropout(const TensorDesc& src, float rate) {
  if (!(rate >= 0.0f && rate < 1.0f)) return fail("cpu backend: dropout rate not in [0, 1)");
  return guarded<DropoutOp>("dropout", [&]() -> std::unique_ptr<DropoutOp> {
    return std::make_unique<CpuDropout>(src, md(src).get_size() / sizeof(float), rate);
  });
}

Result<std::unique_ptr<ReshapeOp>> CpuBackend::make_reshape(const TensorDesc& src,
                                                            std::vector<int64_t> dims) {
  TensorDesc dst{dims, 0};
  if (dst.count() != src.count()) return fail("cpu backend: reshape changes the element count");
  return guarded<ReshapeOp>("reshape", [&]() -> std::unique_ptr<ReshapeOp> {
    return std::make_unique<CpuReshape>(*this, src, std::move(dims));
  });
}

Result<std::unique_ptr<SoftmaxXentOp>> CpuBackend::make_softmax_xent(const TensorDesc& logits) {
  if (logits.dims.size() != 2) return fail("cpu backend: softmax wants {N, K} logits");
  return guarded<SoftmaxXentOp>("softmax", [&]() -> std::unique_ptr<SoftmaxXentOp> {
    return std::make_unique<CpuSoftmaxXent>(*this, logits);
  });
}

}  // namespace hpo::nn::cpu
