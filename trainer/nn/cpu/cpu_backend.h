// The CPU backend on oneDNN (internal to trainer/nn; the public face is nn::Backend).
//
// Layouts: TensorDesc::layout 0 is plain; layout k > 0 names the oneDNN memory descriptor
// layouts_[k - 1] that some primitive chose (format_tag::any), so blocked formats flow from one
// plan to the next without reorders. Where a primitive wants another format than its neighbour
// gives, the plan owns a scratch buffer and a reorder, both made when the plan is made.
#pragma once

#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "trainer/nn/backend.h"

namespace hpo::nn::cpu {

// Elementwise loops shorter than this run on one thread: a parallel region costs more.
inline constexpr int64_t kParallelMin = 1 << 15;

// A float buffer owned by a plan (scratch, workspaces, masks), 64-byte aligned, zeroed.
class Scratch {
 public:
  Scratch() = default;
  explicit Scratch(size_t bytes);
  float* data() const { return data_.get(); }

 private:
  struct Free {
    void operator()(float* p) const;
  };
  std::unique_ptr<float, Free> data_;
};

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads);

  std::string name() const override { return "cpu"; }
  Result<Tensor> alloc(const TensorDesc& desc) override;
  void upload(Tensor& dst, const float* host) override;
  void download(const Tensor& src, float* host) override;
  void fill(Tensor& t, float value) override;
  void synchronize() override {}

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

  // For the plans.
  dnnl::engine& engine() { return engine_; }
  dnnl::stream& stream() { return stream_; }
  dnnl::memory::desc md(const TensorDesc& desc) const;
  // The TensorDesc of `md` with logical `dims`: layout 0 when md is plain, else a private id.
  TensorDesc register_md(const dnnl::memory::desc& md);

 private:
  dnnl::engine engine_;
  dnnl::stream stream_;
  std::vector<dnnl::memory::desc> layouts_;
};

dnnl::memory::desc plain_md(const std::vector<int64_t>& dims);

// A memory object made once and rebound to each call's buffer (no per-step allocation).
class Bound {
 public:
  Bound() = default;
  Bound(const dnnl::memory::desc& md, const dnnl::engine& eng) : mem_(md, eng, DNNL_MEMORY_NONE) {}
  dnnl::memory& at(float* p) {
    mem_.set_data_handle(p);
    return mem_;
  }
  dnnl::memory& get() { return mem_; }

 private:
  dnnl::memory mem_;
};

// One argument seen in two formats: `user` (what neighbours hold) and `prim` (what the
// primitive wants). When they differ, the plan owns a `prim` scratch and reorders.
class Adapter {
 public:
  Adapter() = default;
  Adapter(CpuBackend& b, const dnnl::memory::desc& user, const dnnl::memory::desc& prim);
  bool needed() const { return needed_; }
  // Input: returns the memory the primitive should read (reordering user -> scratch if needed).
  dnnl::memory& in(float* user);
  // Output: the memory the primitive should write; call finish_out(user) after it ran.
  dnnl::memory& out(float* user);
  void finish_out(float* user);
  // The memory object the primitive reads or writes (stable: argument maps are built once).
  dnnl::memory& mem() { return needed_ ? prim_.get() : user_.get(); }
  float* scratch() const { return scratch_.data(); }

 private:
  CpuBackend* b_ = nullptr;
  bool needed_ = false;
  Bound user_, prim_;
  Scratch scratch_;
  dnnl::reorder to_prim_, to_user_;
};

}  // namespace hpo::nn::cpu
