// Parsing and checking of the trainer config (see spec.h). nlohmann::json exceptions stay here.
#include "trainer/nn/spec.h"

#include <cmath>
#include <limits>
#include <numbers>
#include <optional>
#include <sstream>

namespace hpo::nn {

namespace {

using nlohmann::json;

std::string show(const json& j) { return j.dump(); }

// Field readers: absent -> default; wrong type or out of range -> a message with the path.
Result<double> number(const json& obj, const std::string& path, const char* key, double def,
                      std::optional<double> min = std::nullopt, bool min_open = false,
                      std::optional<double> max = std::nullopt) {
  if (!obj.contains(key) || obj[key].is_null()) return def;
  const json& v = obj[key];
  std::string where = path + "." + key;
  if (!v.is_number()) return fail(where + ": expected a number (got " + show(v) + ")");
  double x = v.get<double>();
  if (!std::isfinite(x)) return fail(where + ": must be finite");
  if (min && (min_open ? x <= *min : x < *min)) {
    std::ostringstream s;
    s << where << ": must be " << (min_open ? "> " : ">= ") << *min << " (got " << show(v) << ")";
    return fail(s.str());
  }
  if (max && x > *max) {
    std::ostringstream s;
    s << where << ": must be <= " << *max << " (got " << show(v) << ")";
    return fail(s.str());
  }
  return x;
}

// Sizes, counts and epochs above this are refused: with every field below 2^31, the shape
// arithmetic of infer_shapes stays far inside 64 bits.
constexpr int64_t kMaxInteger = (int64_t(1) << 31) - 1;

Result<int64_t> integer(const json& obj, const std::string& path, const char* key,
                        std::optional<int64_t> def, int64_t min, int64_t max = kMaxInteger) {
  std::string where = path + "." + key;
  if (!obj.contains(key) || obj[key].is_null()) {
    if (def) return *def;
    return fail(where + ": missing");
  }
  const json& v = obj[key];
  if (!v.is_number() || (v.is_number_float() && v.get<double>() != std::floor(v.get<double>())))
    return fail(where + ": expected an integer (got " + show(v) + ")");
  // Checked before the conversion: a double or unsigned beyond int64 does not convert.
  const bool fits = v.is_number_float()      ? std::fabs(v.get<double>()) <= double(max)
                    : v.is_number_unsigned() ? v.get<uint64_t>() <= uint64_t(max)
                                             : v.get<int64_t>() <= max;
  if (!fits) return fail(where + ": must be <= " + std::to_string(max) + " (got " + show(v) + ")");
  int64_t x = v.get<int64_t>();
  if (x < min)
    return fail(where + ": must be >= " + std::to_string(min) + " (got " + show(v) + ")");
  return x;
}

Result<bool> boolean(const json& obj, const std::string& path, const char* key, bool def) {
  if (!obj.contains(key) || obj[key].is_null()) return def;
  if (!obj[key].is_boolean())
    return fail(path + "." + key + ": expected true or false (got " + show(obj[key]) + ")");
  return obj[key].get<bool>();
}

Result<std::string> string(const json& obj, const std::string& path, const char* key,
                           std::string def) {
  if (!obj.contains(key) || obj[key].is_null()) return def;
  if (!obj[key].is_string())
    return fail(path + "." + key + ": expected a string (got " + show(obj[key]) + ")");
  return obj[key].get<std::string>();
}

// Declares or assigns `lhs` from a Result, returning its error. Not a do/while block: `lhs`
// may be a declaration that the following lines use.
#define HPO_CAT2(a, b) a##b
#define HPO_CAT(a, b) HPO_CAT2(a, b)
#define TRY_ASSIGN(lhs, expr)                                                            \
  auto HPO_CAT(try_, __LINE__) = (expr);                                                 \
  if (!HPO_CAT(try_, __LINE__)) return std::unexpected(HPO_CAT(try_, __LINE__).error()); \
  lhs = std::move(*HPO_CAT(try_, __LINE__))

LayerSpec layer(LayerKind kind, std::string path) {
  LayerSpec l;
  l.kind = kind;
  l.path = std::move(path);
  return l;
}
LayerSpec act_layer(std::string path, ActivationSpec a) {
  LayerSpec l = layer(LayerKind::kActivation, std::move(path));
  l.activation = a;
  return l;
}

Result<ActivationSpec> activation_named(const std::string& name, const json& obj,
                                        const std::string& path) {
  ActivationSpec a;
  if (name == "relu") {
    a.kind = Activation::kRelu;
  } else if (name == "leaky_relu") {
    a.kind = Activation::kLeakyRelu;
    TRY_ASSIGN(double alpha, number(obj, path, "alpha", 0.01, 0.0));
    a.alpha = float(alpha);
  } else if (name == "tanh") {
    a.kind = Activation::kTanh;
  } else if (name == "sigmoid") {
    a.kind = Activation::kSigmoid;
  } else if (name == "elu") {
    a.kind = Activation::kElu;
    TRY_ASSIGN(double alpha, number(obj, path, "alpha", 1.0, 0.0));
    a.alpha = float(alpha);
  } else {
    return fail(path + ": unknown activation '" + name +
                "' (expected relu, leaky_relu, tanh, sigmoid or elu)");
  }
  return a;
}

Result<LayerSpec> parse_layer(const json& l, const std::string& path) {
  if (!l.is_object()) return fail(path + ": expected an object (got " + show(l) + ")");
  if (!l.contains("type")) return fail(path + ".type: missing");
  if (!l["type"].is_string()) return fail(path + ".type: expected a string");
  std::string type = l["type"].get<std::string>();
  LayerSpec s;
  s.path = path;
  if (type == "conv" || type == "convolution") {
    s.kind = LayerKind::kConv;
    TRY_ASSIGN(s.conv.filters, integer(l, path, "filters", std::nullopt, 1));
    TRY_ASSIGN(int64_t k, integer(l, path, "kernel", std::nullopt, 1));
    s.conv.kernel_h = s.conv.kernel_w = k;
    TRY_ASSIGN(s.conv.stride, integer(l, path, "stride", 1, 1));
    TRY_ASSIGN(s.conv.pad, integer(l, path, "pad", 0, 0));
  } else if (type == "pool" || type == "max_pool" || type == "avg_pool") {
    s.kind = LayerKind::kPool;
    std::string mode = type == "avg_pool" ? "avg" : "max";
    TRY_ASSIGN(mode, string(l, path, "mode", mode));
    if (mode != "max" && mode != "avg")
      return fail(path + ".mode: expected max or avg (got '" + mode + "')");
    s.pool.mode = mode == "max" ? PoolMode::kMax : PoolMode::kAvg;
    TRY_ASSIGN(s.pool.size, integer(l, path, "size", 2, 1));
    TRY_ASSIGN(s.pool.stride, integer(l, path, "stride", s.pool.size, 1));
    TRY_ASSIGN(s.pool.pad, integer(l, path, "pad", 0, 0));
    if (s.pool.pad * 2 > s.pool.size)
      return fail(path + ".pad: must be at most half the pool size");
  } else if (type == "dense" || type == "fc" || type == "inner_product") {
    s.kind = LayerKind::kDense;
    TRY_ASSIGN(s.units, integer(l, path, "units", std::nullopt, 1));
  } else if (type == "dropout") {
    s.kind = LayerKind::kDropout;
    TRY_ASSIGN(double r, number(l, path, "rate", 0.5, 0.0));
    if (r >= 1.0) return fail(path + ".rate: must be < 1 (got " + show(l["rate"]) + ")");
    s.rate = float(r);
  } else if (type == "batch_norm") {
    s.kind = LayerKind::kBatchNorm;
    TRY_ASSIGN(double eps, number(l, path, "eps", 1e-5, 0.0, true));
    TRY_ASSIGN(double m, number(l, path, "momentum", 0.9, 0.0, false, 1.0));
    s.batch_norm = {float(eps), float(m)};
  } else if (type == "flatten") {
    s.kind = LayerKind::kFlatten;
  } else if (type == "softmax" || type == "softmax_cross_entropy") {
    return fail(path + ".type: '" + type +
                "' is implicit (the loss is always softmax cross-entropy after the last layer)");
  } else {
    s.kind = LayerKind::kActivation;
    auto a = activation_named(type, l, path);
    if (!a)
      return fail(path + ".type: unknown layer type '" + type +
                  "' (expected conv, pool, dense, relu, leaky_relu, tanh, sigmoid, elu, "
                  "dropout, batch_norm or flatten)");
    s.activation = *a;
  }
  return s;
}

// The BLOCKS form: conv[+bn]+act[+pool 2x2] per conv block, flatten, dense+act[+dropout] per
// dense block, then the classifier (units 0 = the number of classes).
Result<std::vector<LayerSpec>> expand_blocks(const json& net) {
  std::vector<LayerSpec> out;
  TRY_ASSIGN(std::string act_name, string(net, "net", "activation", "relu"));
  TRY_ASSIGN(ActivationSpec act, activation_named(act_name, net, "net.activation"));
  auto list = [&](const char* key) -> Result<json> {
    if (!net.contains(key) || net[key].is_null()) return json::array();
    if (!net[key].is_array()) return fail(std::string("net.") + key + ": expected a list");
    return net[key];
  };
  TRY_ASSIGN(json convs, list("conv"));
  TRY_ASSIGN(json denses, list("dense"));
  for (size_t i = 0; i < convs.size(); ++i) {
    std::string path = "net.conv[" + std::to_string(i) + "]";
    const json& b = convs[i];
    if (!b.is_object()) return fail(path + ": expected an object");
    LayerSpec c = layer(LayerKind::kConv, path);
    TRY_ASSIGN(c.conv.filters, integer(b, path, "filters", std::nullopt, 1));
    TRY_ASSIGN(int64_t k, integer(b, path, "kernel", 3, 1));
    c.conv.kernel_h = c.conv.kernel_w = k;
    TRY_ASSIGN(c.conv.stride, integer(b, path, "stride", 1, 1));
    TRY_ASSIGN(c.conv.pad, integer(b, path, "pad", k / 2, 0));  // "same" by default
    out.push_back(c);
    TRY_ASSIGN(bool bn, boolean(b, path, "batch_norm", false));
    if (bn) out.push_back(layer(LayerKind::kBatchNorm, path + ".batch_norm"));
    out.push_back(act_layer(path, act));
    json pool = b.contains("pool") ? b["pool"] : json("none");
    if (pool.is_boolean()) pool = pool.get<bool>() ? "max" : "none";
    if (!pool.is_string() || (pool != "max" && pool != "avg" && pool != "none"))
      return fail(path + ".pool: expected max, avg or none (got " + show(pool) + ")");
    if (pool != "none") {
      LayerSpec p = layer(LayerKind::kPool, path + ".pool");
      p.pool.mode = pool == "max" ? PoolMode::kMax : PoolMode::kAvg;
      out.push_back(p);
    }
  }
  out.push_back(layer(LayerKind::kFlatten, "net"));
  for (size_t i = 0; i < denses.size(); ++i) {
    std::string path = "net.dense[" + std::to_string(i) + "]";
    const json& b = denses[i];
    if (!b.is_object()) return fail(path + ": expected an object");
    LayerSpec d = layer(LayerKind::kDense, path);
    TRY_ASSIGN(d.units, integer(b, path, "units", std::nullopt, 1));
    out.push_back(d);
    out.push_back(act_layer(path, act));
    TRY_ASSIGN(double r, number(b, path, "dropout", 0.0, 0.0));
    if (r >= 1.0) return fail(path + ".dropout: must be < 1");
    if (r > 0) {
      out.push_back(layer(LayerKind::kDropout, path + ".dropout"));
      out.back().rate = float(r);
    }
  }
  out.push_back(layer(LayerKind::kDense, "net (classifier)"));  // units 0: the classes
  return out;
}

Result<std::vector<LayerSpec>> parse_net(const json& config) {
  if (!config.contains("net")) return fail("net: missing");
  const json& net = config["net"];
  if (!net.is_object()) return fail("net: expected an object");
  if (!net.contains("layers")) return expand_blocks(net);
  if (!net["layers"].is_array() || net["layers"].empty())
    return fail("net.layers: expected a non-empty list");
  std::vector<LayerSpec> out;
  for (size_t i = 0; i < net["layers"].size(); ++i) {
    TRY_ASSIGN(LayerSpec l, parse_layer(net["layers"][i], "net.layers[" + std::to_string(i) + "]"));
    out.push_back(l);
  }
  return out;
}

Result<UpdateRule> parse_optimizer(const json& solver) {
  UpdateRule r;
  json opt = solver.contains("optimizer") ? solver["optimizer"] : json("sgd");
  if (opt.is_string()) opt = json{{"type", opt}};
  const std::string path = "solver.optimizer";
  if (!opt.is_object()) return fail(path + ": expected a name or an object");
  TRY_ASSIGN(std::string type, string(opt, path, "type", "sgd"));
  if (type == "sgd") {
    r.kind = Optimizer::kSgd;
    TRY_ASSIGN(double m, number(opt, path, "momentum", 0.0, 0.0, false, 1.0));
    TRY_ASSIGN(r.nesterov, boolean(opt, path, "nesterov", false));
    r.momentum = float(m);
    if (r.nesterov && m <= 0) return fail(path + ".nesterov: needs momentum > 0");
  } else if (type == "adam" || type == "adamw") {
    r.kind = type == "adam" ? Optimizer::kAdam : Optimizer::kAdamW;
    TRY_ASSIGN(double b1, number(opt, path, "beta1", 0.9, 0.0, false, 1.0));
    TRY_ASSIGN(double b2, number(opt, path, "beta2", 0.999, 0.0, false, 1.0));
    TRY_ASSIGN(double eps, number(opt, path, "eps", 1e-8, 0.0, true));
    if (b1 >= 1.0) return fail(path + ".beta1: must be < 1");
    if (b2 >= 1.0) return fail(path + ".beta2: must be < 1");
    r.beta1 = float(b1), r.beta2 = float(b2), r.eps = float(eps);
  } else if (type == "rmsprop") {
    r.kind = Optimizer::kRmsProp;
    TRY_ASSIGN(double a, number(opt, path, "alpha", 0.99, 0.0, false, 1.0));
    TRY_ASSIGN(double eps, number(opt, path, "eps", 1e-8, 0.0, true));
    r.alpha = float(a), r.eps = float(eps);
  } else {
    return fail(path + ".type: unknown optimizer '" + type +
                "' (expected sgd, adam, adamw or rmsprop)");
  }
  return r;
}

Result<SolverSpec> parse_solver(const json& config) {
  SolverSpec s;
  json solver = config.contains("solver") ? config["solver"] : json::object();
  const std::string path = "solver";
  if (!solver.is_object()) return fail("solver: expected an object");
  TRY_ASSIGN(s.rule, parse_optimizer(solver));
  TRY_ASSIGN(s.lr, number(solver, path, "lr", 0.05, 0.0, true));
  TRY_ASSIGN(double wd, number(solver, path, "weight_decay", 0.0, 0.0));
  s.rule.weight_decay = float(wd);
  TRY_ASSIGN(s.batch_size, integer(solver, path, "batch_size", 128, 1));
  TRY_ASSIGN(s.epochs, integer(solver, path, "epochs", 2, 1));
  TRY_ASSIGN(s.report_every_steps, integer(solver, path, "report_every_steps", 0, 0));
  json pol = solver.contains("lr_policy") ? solver["lr_policy"] : json::object();
  if (pol.is_string()) pol = json{{"type", pol}};
  const std::string pp = "solver.lr_policy";
  if (!pol.is_object()) return fail(pp + ": expected a name or an object");
  TRY_ASSIGN(s.lr_policy.type, string(pol, pp, "type", "fixed"));
  const auto& t = s.lr_policy.type;
  if (t != "fixed" && t != "step" && t != "exp" && t != "cosine")
    return fail(pp + ".type: unknown policy '" + t + "' (expected fixed, step, exp or cosine)");
  TRY_ASSIGN(s.lr_policy.gamma, number(pol, pp, "gamma", t == "exp" ? 0.95 : 0.1, 0.0, true));
  TRY_ASSIGN(s.lr_policy.step_epochs, number(pol, pp, "step_epochs", 1.0, 0.0, true));
  TRY_ASSIGN(s.lr_policy.warmup_epochs, number(pol, pp, "warmup_epochs", 0.0, 0.0));
  return s;
}

Result<DataSpec> parse_data(const json& config) {
  DataSpec d;
  json data = config.contains("data") ? config["data"] : json::object();
  if (!data.is_object()) return fail("data: expected an object");
  const std::string path = "data";
  TRY_ASSIGN(d.dir, string(data, path, "dir", d.dir));
  TRY_ASSIGN(d.format, string(data, path, "format", d.format));
  if (d.format != "idx" && d.format != "cifar10" && d.format != "csv")
    return fail("data.format: unknown format '" + d.format + "' (expected idx, cifar10 or csv)");
  TRY_ASSIGN(d.train_limit, integer(data, path, "train_limit", 0, 0));
  TRY_ASSIGN(d.validation, integer(data, path, "validation", 5000, 0));
  TRY_ASSIGN(d.test_limit, integer(data, path, "test_limit", 0, 0));
  TRY_ASSIGN(d.normalize, boolean(data, path, "normalize", true));
  return d;
}

}  // namespace

Result<TrainConfig> parse_train_config(const json& config) {
  if (!config.is_object()) return fail("config: expected a JSON object");
  try {
    TrainConfig c;
    TRY_ASSIGN(c.data, parse_data(config));
    TRY_ASSIGN(c.layers, parse_net(config));
    if (config["net"].contains("init")) {
      const json& init = config["net"]["init"];
      if (init == "he")
        c.init = WeightInit::kHe;
      else if (init == "xavier")
        c.init = WeightInit::kXavier;
      else if (init == "uniform")
        c.init = WeightInit::kUniform;
      else
        return fail("net.init: expected he, xavier or uniform (got " + show(init) + ")");
    }
    TRY_ASSIGN(c.solver, parse_solver(config));
    TRY_ASSIGN(int64_t seed,
               integer(config, "config", "seed", 1, 0, std::numeric_limits<int64_t>::max()));
    c.seed = uint64_t(seed);
    c.source = config;
    return c;
  } catch (const json::exception& e) {
    return fail(std::string("config: ") + e.what());
  }
}

Result<std::vector<std::vector<int64_t>>> infer_shapes(const std::vector<LayerSpec>& layers,
                                                       std::vector<int64_t> in, int64_t classes) {
  std::vector<std::vector<int64_t>> out;
  bool flat = false;
  auto hw = [](const std::vector<int64_t>& s) {
    return std::to_string(s[1]) + "x" + std::to_string(s[2]);
  };
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerSpec& l = layers[i];
    switch (l.kind) {
      case LayerKind::kConv: {
        if (flat) return fail(l.path + ".type: a conv cannot follow flatten or dense");
        const auto& c = l.conv;
        if (c.kernel_h > in[1] + 2 * c.pad || c.kernel_w > in[2] + 2 * c.pad)
          return fail(l.path + ".kernel: " + std::to_string(c.kernel_h) +
                      " is larger than the input " + hw(in) +
                      (c.pad ? " (padded by " + std::to_string(c.pad) + ")" : ""));
        if (c.pad >= c.kernel_h)
          return fail(l.path + ".pad: " + std::to_string(c.pad) + " must be < the kernel " +
                      std::to_string(c.kernel_h));
        in = {c.filters, (in[1] + 2 * c.pad - c.kernel_h) / c.stride + 1,
              (in[2] + 2 * c.pad - c.kernel_w) / c.stride + 1};
        break;
      }
      case LayerKind::kPool: {
        const auto& p = l.pool;
        if (flat) return fail(l.path + ".type: a pool cannot follow flatten or dense");
        if (p.size > in[1] + 2 * p.pad || p.size > in[2] + 2 * p.pad)
          return fail(l.path + ".size: " + std::to_string(p.size) + " is larger than the input " +
                      hw(in));
        in = {in[0], (in[1] + 2 * p.pad - p.size) / p.stride + 1,
              (in[2] + 2 * p.pad - p.size) / p.stride + 1};
        break;
      }
      case LayerKind::kDense: {
        int64_t units = l.units > 0 ? l.units : classes;
        in = {units, 1, 1};
        flat = true;
        break;
      }
      case LayerKind::kFlatten:
        in = {in[0] * in[1] * in[2], 1, 1};
        flat = true;
        break;
      default:
        break;
    }
    // The layer before left each dimension below 2^31 and a layer adds at most twice its padding
    // (< 2^32), so nothing above overflowed; the product is taken in double, then trusted.
    if (double(in[0]) * double(in[1]) * double(in[2]) > double(kMaxInteger))
      return fail(l.path + ": outputs " + std::to_string(in[0]) + "x" + hw(in) +
                  " values per example, more than " + std::to_string(kMaxInteger));
    out.push_back(in);
  }
  if (layers.empty()) return fail("net: no layers");
  int64_t features = in[0] * in[1] * in[2];
  if (features != classes) {
    const LayerSpec& last = layers.back();
    return fail(last.path + (last.kind == LayerKind::kDense ? ".units: " : ": outputs ") +
                std::to_string(features) + " values but the data has " + std::to_string(classes) +
                " classes (the last layer feeds the softmax)");
  }
  return out;
}

double learning_rate(const SolverSpec& s, double e) {
  const LrPolicy& p = s.lr_policy;
  double lr = s.lr;
  if (p.type == "step") {
    lr *= std::pow(p.gamma, std::floor(e / p.step_epochs + 1e-9));
  } else if (p.type == "exp") {
    lr *= std::pow(p.gamma, e);
  } else if (p.type == "cosine") {
    lr *= 0.5 * (1.0 + std::cos(std::numbers::pi * std::min(1.0, e / double(s.epochs))));
  }
  if (p.warmup_epochs > 0 && e < p.warmup_epochs) lr *= e / p.warmup_epochs;
  return lr;
}

}  // namespace hpo::nn
