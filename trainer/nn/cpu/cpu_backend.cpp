// CpuBackend: allocation, host copies, layouts, solver updates. The op plans are in cpu_ops.cpp.
#include "trainer/nn/cpu/cpu_backend.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace hpo::nn::cpu {

namespace {
using dnnl::memory;
constexpr size_t kAlign = 64;
}  // namespace

void Scratch::Free::operator()(float* p) const { std::free(p); }

Scratch::Scratch(size_t bytes) {
  size_t rounded = (std::max<size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, rounded);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, rounded);
  data_.reset(static_cast<float*>(p));
}

memory::desc plain_md(const std::vector<int64_t>& dims) {
  // Row-major strides: NCHW, NC, OIHW, OI, X.
  memory::dims strides(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;) strides[i - 1] = strides[i] * dims[i];
  return memory::desc(memory::dims(dims.begin(), dims.end()), memory::data_type::f32, strides);
}

CpuBackend::CpuBackend(int threads) : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
  // oneDNN here is built on GNU OpenMP: its ops use omp_get_max_threads() threads.
  if (threads > 0) omp_set_num_threads(threads);
}

memory::desc CpuBackend::md(const TensorDesc& desc) const {
  if (desc.layout == 0) return plain_md(desc.dims);
  return layouts_.at(static_cast<size_t>(desc.layout - 1));
}

TensorDesc CpuBackend::register_md(const memory::desc& m) {
  auto dims = m.dims();
  TensorDesc out{std::vector<int64_t>(dims.begin(), dims.end()), 0};
  if (m == plain_md(out.dims)) return out;
  for (size_t i = 0; i < layouts_.size(); ++i) {
    if (layouts_[i] == m) {
      out.layout = static_cast<int>(i + 1);
      return out;
    }
  }
  layouts_.push_back(m);
  out.layout = static_cast<int>(layouts_.size());
  return out;
}

Result<Tensor> CpuBackend::alloc(const TensorDesc& desc) {
  if (desc.layout < 0 || static_cast<size_t>(desc.layout) > layouts_.size())
    return fail("cpu backend: unknown tensor layout " + std::to_string(desc.layout));
  for (int64_t d : desc.dims)
    if (d <= 0) return fail("cpu backend: tensor dimension " + std::to_string(d) + " is not > 0");
  size_t bytes = md(desc).get_size();
  size_t rounded = (std::max<size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, rounded);
  if (!p) return fail("cpu backend: out of memory allocating " + std::to_string(bytes) + " bytes");
  std::memset(p, 0, rounded);
  return Tensor(desc, static_cast<float*>(p), bytes / sizeof(float),
                [](float* q) { std::free(q); });
}

void CpuBackend::upload(Tensor& dst, const float* host) {
  if (dst.desc().layout == 0) {
    std::memcpy(dst.data(), host, dst.size() * sizeof(float));
    return;
  }
  memory from(plain_md(dst.desc().dims), engine_, const_cast<float*>(host));
  memory to(md(dst.desc()), engine_, dst.data());
  dnnl::reorder(from, to).execute(stream_, from, to);
  stream_.wait();
}

void CpuBackend::download(const Tensor& src, float* host) {
  if (src.desc().layout == 0) {
    std::memcpy(host, src.data(), src.size() * sizeof(float));
    return;
  }
  memory from(md(src.desc()), engine_, src.data());
  memory to(plain_md(src.desc().dims), engine_, host);
  dnnl::reorder(from, to).execute(stream_, from, to);
  stream_.wait();
}

void CpuBackend::fill(Tensor& t, float value) { std::fill_n(t.data(), t.size(), value); }

void CpuBackend::update(const UpdateRule& r, Tensor& param, const Tensor& grad, Tensor* state1,
                        Tensor* state2) {
  const int64_t n = static_cast<int64_t>(param.size());
  float* p = param.data();
  const float* g = grad.data();
  float* s1 = state1 ? state1->data() : nullptr;
  float* s2 = state2 ? state2->data() : nullptr;
  const float lr = r.lr, wd = r.weight_decay;
  switch (r.kind) {
    case Optimizer::kSgd: {
      const float mu = r.momentum;
      if (!s1 || mu == 0.0f) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
        for (int64_t i = 0; i < n; ++i) p[i] -= lr * (g[i] + wd * p[i]);
        return;
      }
      const bool nesterov = r.nesterov;
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
      for (int64_t i = 0; i < n; ++i) {
        float gi = g[i] + wd * p[i];
        float v = mu * s1[i] + gi;
        s1[i] = v;
        p[i] -= lr * (nesterov ? gi + mu * v : v);
      }
      return;
    }
    case Optimizer::kAdam:
    case Optimizer::kAdamW: {
      const bool decoupled = r.kind == Optimizer::kAdamW;
      const float b1 = r.beta1, b2 = r.beta2, eps = r.eps;
      const float c1 = 1.0f - static_cast<float>(std::pow(double(b1), double(r.step)));
      const float c2 = 1.0f - static_cast<float>(std::pow(double(b2), double(r.step)));
      const float step = lr / c1, sc2 = 1.0f / std::sqrt(c2);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
      for (int64_t i = 0; i < n; ++i) {
        float pi = p[i];
        float gi = g[i];
        if (decoupled) {
          pi -= lr * wd * pi;
        } else {
          gi += wd * pi;
        }
        float m = b1 * s1[i] + (1.0f - b1) * gi;
        float v = b2 * s2[i] + (1.0f - b2) * gi * gi;
        s1[i] = m;
        s2[i] = v;
        p[i] = pi - step * m / (std::sqrt(v) * sc2 + eps);
      }
      return;
    }
    case Optimizer::kRmsProp: {
      const float a = r.alpha, eps = r.eps;
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
      for (int64_t i = 0; i < n; ++i) {
        float gi = g[i] + wd * p[i];
        float s = a * s1[i] + (1.0f - a) * gi * gi;
        s1[i] = s;
        p[i] -= lr * gi / (std::sqrt(s) + eps);
      }
      return;
    }
  }
}

Adapter::Adapter(CpuBackend& b, const memory::desc& user, const memory::desc& prim)
    : b_(&b), needed_(!(user == prim)), user_(user, b.engine()), prim_(prim, b.engine()) {
  if (needed_) {
    scratch_ = Scratch(prim.get_size());
    prim_.at(scratch_.data());
    to_prim_ = dnnl::reorder(dnnl::reorder::primitive_desc(b.engine(), user, b.engine(), prim));
    to_user_ = dnnl::reorder(dnnl::reorder::primitive_desc(b.engine(), prim, b.engine(), user));
  }
}

memory& Adapter::in(float* user) {
  if (!needed_) return user_.at(user);
  to_prim_.execute(b_->stream(), user_.at(user), prim_.get());
  return prim_.get();
}

memory& Adapter::out(float* user) {
  if (!needed_) return user_.at(user);
  return prim_.get();
}

void Adapter::finish_out(float* user) {
  if (needed_) to_user_.execute(b_->stream(), prim_.get(), user_.at(user));
}

}  // namespace hpo::nn::cpu
