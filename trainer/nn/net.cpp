// Net: builds plans and tensors from the layer list, runs the steps (see net.h).
#include "trainer/nn/net.h"

#include <cmath>
#include <random>

namespace hpo::nn {

Net::~Net() {
  // Plans before tensors is not required, but nodes hold both; the backend outlives all.
  nodes_.clear();
}

namespace {

template <class T>
Status take(Result<std::unique_ptr<T>> r, std::unique_ptr<T>& into, const std::string& path) {
  if (!r) return fail(path + ": " + r.error().message);
  into = std::move(*r);
  return {};
}

}  // namespace

Result<std::unique_ptr<Net>> Net::build(Backend& b, const std::vector<LayerSpec>& layers,
                                        const std::vector<int64_t>& chw, int64_t batch,
                                        int64_t classes) {
  auto shapes = infer_shapes(layers, chw, classes);
  if (!shapes) return std::unexpected(shapes.error());
  std::unique_ptr<Net> net(new Net(b));
  net->batch_ = batch;
  auto alloc = [&](const TensorDesc& d, Tensor& into) -> Status {
    auto t = b.alloc(d);
    if (!t) return std::unexpected(t.error());
    into = std::move(*t);
    return {};
  };
  TensorDesc cur{{batch, chw[0], chw[1], chw[2]}, 0};
  if (auto s = alloc(cur, net->input_); !s) return std::unexpected(s.error());
  if (auto s = alloc(TensorDesc{{batch}, 0}, net->labels_); !s) return std::unexpected(s.error());

  auto add_param = [&](const std::string& name, const TensorDesc& d, Param::Init init,
                       int64_t fan_in, int64_t fan_out, bool trainable) -> Result<size_t> {
    Param p;
    p.name = name;
    p.init = init;
    p.fan_in = fan_in, p.fan_out = fan_out;
    p.trainable = trainable;
    for (Tensor* t : {&p.value, &p.grad, &p.state1, &p.state2}) {
      if (!trainable && t != &p.value) break;
      if (auto s = alloc(d, *t); !s) return std::unexpected(s.error());
    }
    net->params_.push_back(std::move(p));
    return net->params_.size() - 1;
  };

  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerSpec& l = layers[i];
    auto node = std::make_unique<Node>();
    node->kind = l.kind;
    node->path = l.path;
    Status st;
    // The activation right after a conv/dense is fused into it.
    ActivationSpec fused;
    bool fuse = (l.kind == LayerKind::kConv || l.kind == LayerKind::kDense) &&
                i + 1 < layers.size() && layers[i + 1].kind == LayerKind::kActivation;
    if (fuse) fused = layers[i + 1].activation;
    Activation next_act = fuse ? fused.kind : Activation::kNone;
    Param::Init winit = next_act == Activation::kTanh || next_act == Activation::kSigmoid
                            ? Param::Init::kXavier
                            : Param::Init::kHe;
    TensorDesc out;
    switch (l.kind) {
      case LayerKind::kConv: {
        ConvParams cp = l.conv;
        cp.fused = fused;
        st = take(b.make_conv(cur, cp), node->conv, l.path);
        if (!st) return std::unexpected(st.error());
        int64_t fan_in = cur.dims[1] * cp.kernel_h * cp.kernel_w;
        int64_t fan_out = cp.filters * cp.kernel_h * cp.kernel_w;
        auto w = add_param(l.path + ".weights", node->conv->weights_desc(), winit, fan_in, fan_out,
                           true);
        if (!w) return std::unexpected(w.error());
        auto bias = add_param(l.path + ".bias", node->conv->bias_desc(), Param::Init::kZero, fan_in,
                              1, true);
        if (!bias) return std::unexpected(bias.error());
        node->p = {*w, *bias};
        out = node->conv->dst_desc();
        break;
      }
      case LayerKind::kDense: {
        if (cur.dims.size() == 4) {  // an implicit flatten
          auto flat = std::make_unique<Node>();
          flat->kind = LayerKind::kFlatten;
          flat->path = l.path;
          st = take(b.make_reshape(cur, {batch, cur.count() / batch}), flat->reshape, l.path);
          if (!st) return std::unexpected(st.error());
          cur = flat->reshape->dst_desc();
          if (auto s = alloc(cur, flat->out); !s) return std::unexpected(s.error());
          if (auto s = alloc(cur, flat->diff); !s) return std::unexpected(s.error());
          net->nodes_.push_back(std::move(flat));
        }
        DenseParams dp{l.units > 0 ? l.units : classes, fused};
        st = take(b.make_dense(cur, dp), node->dense, l.path);
        if (!st) return std::unexpected(st.error());
        int64_t fan_in = cur.count() / batch;
        auto w = add_param(l.path + ".weights", node->dense->weights_desc(), winit, fan_in,
                           dp.units, true);
        if (!w) return std::unexpected(w.error());
        auto bias = add_param(l.path + ".bias", node->dense->bias_desc(), Param::Init::kZero,
                              fan_in, 1, true);
        if (!bias) return std::unexpected(bias.error());
        node->p = {*w, *bias};
        out = node->dense->dst_desc();
        break;
      }
      case LayerKind::kPool:
        st = take(b.make_pool(cur, l.pool), node->pool, l.path);
        if (!st) return std::unexpected(st.error());
        out = node->pool->dst_desc();
        break;
      case LayerKind::kActivation:
        st = take(b.make_eltwise(cur, l.activation), node->eltwise, l.path);
        if (!st) return std::unexpected(st.error());
        out = node->eltwise->dst_desc();
        break;
      case LayerKind::kDropout:
        st = take(b.make_dropout(cur, l.rate), node->dropout, l.path);
        if (!st) return std::unexpected(st.error());
        out = node->dropout->dst_desc();
        break;
      case LayerKind::kBatchNorm: {
        st = take(b.make_batch_norm(cur, l.batch_norm), node->bn, l.path);
        if (!st) return std::unexpected(st.error());
        TensorDesc c{{cur.dims[1]}, 0};
        for (auto [name, init, trainable] :
             {std::tuple{".gamma", Param::Init::kOne, true},
              std::tuple{".beta", Param::Init::kZero, true},
              std::tuple{".running_mean", Param::Init::kZero, false},
              std::tuple{".running_var", Param::Init::kOne, false}}) {
          auto p = add_param(l.path + name, c, init, 1, 1, trainable);
          if (!p) return std::unexpected(p.error());
          node->p.push_back(*p);
        }
        out = node->bn->dst_desc();
        break;
      }
      case LayerKind::kFlatten:
        if (cur.dims.size() == 2) continue;  // already flat
        st = take(b.make_reshape(cur, {batch, cur.count() / batch}), node->reshape, l.path);
        if (!st) return std::unexpected(st.error());
        out = node->reshape->dst_desc();
        break;
    }
    if (auto s = alloc(out, node->out); !s) return std::unexpected(s.error());
    if (auto s = alloc(out, node->diff); !s) return std::unexpected(s.error());
    cur = out;
    net->nodes_.push_back(std::move(node));
    if (fuse) ++i;
  }
  if (cur.dims.size() != 2) {
    auto flat = std::make_unique<Node>();
    flat->kind = LayerKind::kFlatten;
    flat->path = "net";
    auto st = take(b.make_reshape(cur, {batch, cur.count() / batch}), flat->reshape, "net");
    if (!st) return std::unexpected(st.error());
    cur = flat->reshape->dst_desc();
    if (auto s = alloc(cur, flat->out); !s) return std::unexpected(s.error());
    if (auto s = alloc(cur, flat->diff); !s) return std::unexpected(s.error());
    net->nodes_.push_back(std::move(flat));
  }
  auto st = take(b.make_softmax_xent(cur), net->loss_, "loss");
  if (!st) return std::unexpected(st.error());
  return net;
}

double Net::forward(int64_t valid, bool training, uint64_t seed, int64_t* correct) {
  const Tensor* in = &input_;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node& n = *nodes_[i];
    switch (n.kind) {
      case LayerKind::kConv:
        n.conv->forward(*in, params_[n.p[0]].value, params_[n.p[1]].value, n.out);
        break;
      case LayerKind::kDense:
        n.dense->forward(*in, params_[n.p[0]].value, params_[n.p[1]].value, n.out);
        break;
      case LayerKind::kPool:
        n.pool->forward(*in, n.out);
        break;
      case LayerKind::kActivation:
        n.eltwise->forward(*in, n.out);
        break;
      case LayerKind::kDropout:
        n.dropout->forward(*in, n.out, dropout_hash(seed, i), training);
        break;
      case LayerKind::kBatchNorm:
        n.bn->forward(*in, params_[n.p[0]].value, params_[n.p[1]].value, params_[n.p[2]].value,
                      params_[n.p[3]].value, n.out, training);
        break;
      case LayerKind::kFlatten:
        n.reshape->forward(*in, n.out);
        break;
    }
    in = &n.out;
  }
  return loss_->forward(*in, labels_, valid, correct);
}

void Net::backward() {
  Node& last = *nodes_.back();
  loss_->backward(labels_, last.diff);
  for (size_t k = nodes_.size(); k-- > 0;) {
    Node& n = *nodes_[k];
    const Tensor& in = k ? nodes_[k - 1]->out : input_;
    Tensor* din = k ? &nodes_[k - 1]->diff : nullptr;
    switch (n.kind) {
      case LayerKind::kConv:
        n.conv->backward(in, params_[n.p[0]].value, n.out, n.diff, din, params_[n.p[0]].grad,
                         params_[n.p[1]].grad);
        break;
      case LayerKind::kDense:
        n.dense->backward(in, params_[n.p[0]].value, n.out, n.diff, din, params_[n.p[0]].grad,
                          params_[n.p[1]].grad);
        break;
      case LayerKind::kBatchNorm:
        if (din)
          n.bn->backward(in, n.diff, params_[n.p[0]].value, params_[n.p[1]].value, *din,
                         params_[n.p[0]].grad, params_[n.p[1]].grad);
        else {
          // The first layer: no input gradient is needed, but gamma/beta still learn; the
          // node's own diff buffer is a free scratch of the right shape for diff_src... except
          // it is also the input. Use the output tensor, no longer needed after this point.
          n.bn->backward(in, n.diff, params_[n.p[0]].value, params_[n.p[1]].value, n.out,
                         params_[n.p[0]].grad, params_[n.p[1]].grad);
        }
        break;
      case LayerKind::kPool:
        if (din) n.pool->backward(n.diff, *din);
        break;
      case LayerKind::kActivation:
        if (din) n.eltwise->backward(in, n.out, n.diff, *din);
        break;
      case LayerKind::kDropout:
        if (din) n.dropout->backward(n.diff, *din);
        break;
      case LayerKind::kFlatten:
        if (din) n.reshape->backward(n.diff, *din);
        break;
    }
  }
}

void Net::update(const UpdateRule& rule) {
  const bool two = rule.kind == Optimizer::kAdam || rule.kind == Optimizer::kAdamW;
  for (Param& p : params_) {
    if (!p.trainable) continue;
    backend_.update(rule, p.value, p.grad, &p.state1, two ? &p.state2 : nullptr);
  }
}

void Net::init_params(uint64_t seed, WeightInit scheme) {
  std::mt19937_64 rng(seed);
  // Our own uniform/normal: std::normal_distribution differs between standard libraries, and a
  // checkpoint must resume on another build.
  auto uniform = [&] { return double(rng() >> 11) * (1.0 / 9007199254740992.0); };
  auto normal = [&] {
    double u1 = std::max(uniform(), 1e-300), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  };
  std::vector<float> host;
  for (Param& p : params_) {
    host.assign(size_t(p.value.desc().count()), 0.0f);
    Param::Init init = p.init;
    const bool is_bias = p.name.ends_with(".bias");
    if (scheme == WeightInit::kXavier && init == Param::Init::kHe) init = Param::Init::kXavier;
    if (scheme == WeightInit::kUniform &&
        (init == Param::Init::kHe || init == Param::Init::kXavier || is_bias)) {
      // PyTorch's default for Conv2d/Linear: weights and biases U(-1/sqrt(fan_in), +..).
      const double lim = 1.0 / std::sqrt(double(p.fan_in));
      for (float& v : host) v = float((2 * uniform() - 1) * lim);
      init = Param::Init::kNone;
    }
    switch (init) {
      case Param::Init::kHe: {
        double sd = std::sqrt(2.0 / double(p.fan_in));
        for (float& v : host) v = float(normal() * sd);
        break;
      }
      case Param::Init::kXavier: {
        double lim = std::sqrt(6.0 / double(p.fan_in + p.fan_out));
        for (float& v : host) v = float((2 * uniform() - 1) * lim);
        break;
      }
      case Param::Init::kZero:
      case Param::Init::kNone:
        break;
      case Param::Init::kOne:
        std::fill(host.begin(), host.end(), 1.0f);
        break;
    }
    backend_.upload(p.value, host.data());
    if (p.trainable) {
      backend_.fill(p.state1, 0.0f);
      backend_.fill(p.state2, 0.0f);
    }
  }
}

}  // namespace hpo::nn
