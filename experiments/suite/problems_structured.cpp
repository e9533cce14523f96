// The suite's structured problems (suite.h): conditional spaces, variable-length blocks, and the
// surrogates of real Fashion-MNIST runs. Each synthetic one is a made-up training-run landscape
// with its optimum 0 at a known config.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>

#include "space_json.h"
#include "suite.h"
#include "surrogate.h"

namespace hpo::suite {
namespace {

using nlohmann::json;

using space::choice;
using space::integer;
using space::real;
using space::when;
double sq(double x) { return x * x; }
double num(const json& c, const char* key, double otherwise) {
  auto it = c.find(key);
  return it != c.end() && it->is_number() ? it->get<double>() : otherwise;
}
std::string str(const json& c, const char* key) {
  auto it = c.find(key);
  return it != c.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Three model families behind a nested choice, each with its own parameters and its own best
// value (0.0 for the narrowest, the mlp), plus one shared parameter whose best depends on the
// family.
Problem conditional_models() {
  json s{{"model", {{"type", "choice"},
                    {"options",
                     {{{"type", "gbm"},
                       {"lr", real(1e-3, 1, true)},
                       {"depth", integer(1, 12)},
                       {"subsample", real(0.3, 1)}},
                      {{"type", "svm"},
                       {"C", real(1e-3, 1e3, true)},
                       {"gamma", real(1e-5, 10, true)},
                       {"kernel", choice({"rbf", "poly", "linear"})}},
                      {{"type", "mlp"},
                       {"lr", real(1e-5, 1e-1, true)},
                       {"layers", integer(1, 4)},
                       {"dropout", real(0, 0.7)}}}}}},
         {"scale", real(0, 1)}};
  Problem p{"conditional-models", "tune", "conditional",
            "a nested choice of 3 model families with 3 parameters each and a shared one", s, 0.0,
            0.0, nullptr};
  p.value = [](const json& c) {
    const json& m = c.at("model");
    const std::string type = str(m, "type");
    const double scale = num(c, "scale", 0.5);
    if (type == "gbm") {
      return 0.08 + 0.05 * sq(std::log10(num(m, "lr", 1)) + 1.3) +
             0.004 * sq(num(m, "depth", 1) - 6) + 0.1 * sq(num(m, "subsample", 1) - 0.8) +
             0.05 * sq(scale - 0.2);
    }
    if (type == "svm") {
      const double lc = std::log10(num(m, "C", 1)), lg = std::log10(num(m, "gamma", 1));
      const std::string k = str(m, "kernel");
      return 0.05 + 0.02 * sq(lc - 1.5) + 0.03 * sq(lg + 2 + 0.3 * lc) +
             (k == "rbf" ? 0.0 : k == "poly" ? 0.03 : 0.06) + 0.05 * sq(scale - 0.9);
    }
    return 0.1 * sq(std::log10(num(m, "lr", 1)) + 3.2) + 0.01 * sq(num(m, "layers", 1) - 3) +
           0.3 * sq(num(m, "dropout", 0) - 0.35) + 0.1 * sq(scale - 0.6);
  };
  return p;
}

// Optimizer settings behind "when" conditions: momentum and nesterov only for sgd, beta2 only
// for adam, decay only for rmsprop, the step factor only for the step schedule.
Problem conditional_when() {
  json s{{"optimizer", choice({"sgd", "adam", "rmsprop"})},
         {"lr", real(1e-5, 1, true)},
         {"momentum", when(real(0, 0.99), {{"optimizer", "sgd"}})},
         {"nesterov", when(choice({true, false}), {{"optimizer", "sgd"}})},
         {"beta2", when(real(0.9, 0.9999), {{"optimizer", "adam"}})},
         {"decay", when(real(0.8, 0.999), {{"optimizer", "rmsprop"}})},
         {"schedule", choice({"constant", "cosine", "step"})},
         {"step_gamma", when(real(0.05, 0.9, true), {{"schedule", "step"}})},
         {"epochs", integer(5, 200, true)}};
  Problem p{"conditional-when", "validate", "conditional",
            "optimizer and schedule settings active only under their choice (\"when\"), a log "
            "lr whose best depends on the optimizer and momentum, a log int",
            s, 0.0, 0.0, nullptr};
  p.value = [](const json& c) {
    const std::string opt = str(c, "optimizer"), sched = str(c, "schedule");
    const double lr = std::log10(num(c, "lr", 1));
    double v = 0;
    if (opt == "sgd") {
      const double m = num(c, "momentum", 0);
      // The effective step lr / (1 - m) is what matters; best near 0.5.
      v = 0.08 * sq(lr - std::log10(1 - m) + 0.3) + 0.2 * sq(m - 0.9) +
          (c.value("nesterov", false) ? 0.0 : 0.01);
    } else if (opt == "adam") {
      v = 0.01 + 0.08 * sq(lr + 3) + 2.0 * sq(std::log10(1 - num(c, "beta2", 0.999)) + 3);
    } else {
      v = 0.03 + 0.08 * sq(lr + 3.5) + 5.0 * sq(num(c, "decay", 0.9) - 0.95);
    }
    if (sched == "constant") v += 0.02;
    if (sched == "step") v += 0.005 + 0.05 * sq(std::log10(num(c, "step_gamma", 0.1)) + 0.7);
    v += 0.03 * sq(std::log10(num(c, "epochs", 100)) - 2);
    return v;
  };
  return p;
}

// A variable-length list of layers: the best has 3, with widths halving from 256 and dropout
// rising with depth.
Problem blocks_widths() {
  json s{{"layers", {{"type", "blocks"},
                     {"min", 1},
                     {"max", 5},
                     {"block", {{"width", integer(8, 512, true)}, {"dropout", real(0, 0.8)}}}}},
         {"lr", real(1e-4, 1e-1, true)}};
  Problem p{"blocks-widths", "tune", "conditional",
            "1-5 layer blocks (width log int, dropout each); best: 3 layers 256/128/64", s, 0.0,
            0.0, nullptr};
  p.value = [](const json& c) {
    const json& layers = c.at("layers");
    const double n = static_cast<double>(layers.size());
    double v = 0.05 * sq(n - 3), per = 0;
    for (std::size_t k = 0; k < layers.size(); ++k) {
      const double w = std::log2(num(layers[k], "width", 8));
      per += 0.02 * sq(w - (8 - static_cast<double>(k))) +
             0.5 * sq(num(layers[k], "dropout", 0) - 0.1 * static_cast<double>(k + 1));
    }
    v += per / std::max(1.0, n) + 0.1 * sq(std::log10(num(c, "lr", 1)) + 2.5);
    return v;
  };
  return p;
}

// A CNN-shaped space: 1-4 conv blocks (filters, kernel choices, a stride int), 0-2 dense
// blocks, a log lr whose best grows with the batch choice.
Problem blocks_cnn() {
  json s{{"conv", {{"type", "blocks"},
                   {"min", 1},
                   {"max", 4},
                   {"block",
                    {{"filters", choice({16, 32, 64, 128})},
                     {"kernel", choice({3, 5, 7})},
                     {"stride", integer(1, 2)}}}}},
         {"dense", {{"type", "blocks"},
                    {"min", 0},
                    {"max", 2},
                    {"block", {{"units", integer(32, 1024, true)}}}}},
         {"lr", real(1e-4, 1, true)},
         {"batch", choice({32, 64, 128, 256})}};
  Problem p{"blocks-cnn", "validate", "conditional",
            "1-4 conv blocks (2 choices and an int each), 0-2 dense blocks, lr x batch", s, 0.0,
            0.0, nullptr};
  p.value = [](const json& c) {
    const json& conv = c.at("conv");
    const json& dense = c.at("dense");
    double v = 0.04 * sq(static_cast<double>(conv.size()) - 3), per = 0;
    for (std::size_t k = 0; k < conv.size(); ++k) {
      const double best_f = std::min(128.0, 32.0 * std::pow(2.0, static_cast<double>(k)));
      per += 0.03 * sq(std::log2(num(conv[k], "filters", 16) / best_f));
      per += (num(conv[k], "kernel", 3) == (k == 0 ? 5 : 3)) ? 0.0 : 0.02;
      per += (num(conv[k], "stride", 1) == (k == 0 ? 1 : 2)) ? 0.0 : 0.015;
    }
    v += per / static_cast<double>(std::max<std::size_t>(1, conv.size()));
    v += dense.size() == 1 ? 0.02 * sq(std::log2(num(dense[0], "units", 32)) - 8)
                           : (dense.empty() ? 0.03 : 0.01 + 0.01 * sq(std::log2(num(dense[0], "units", 32)) - 8));
    const double batch = num(c, "batch", 32);
    v += 0.08 * sq(std::log10(num(c, "lr", 1)) + 2.5 - 0.25 * std::log2(batch / 64));
    v += 0.005 * std::log2(batch / 32);  // larger batches cost a little, all else equal
    return v;
  };
  return p;
}

// ---- surrogates: features in [0, 1] ----

double unit(double x, double low, double high) { return std::clamp((x - low) / (high - low), 0.0, 1.0); }
double log_unit(double x, double low, double high) {
  return unit(std::log(std::max(x, 1e-300)), std::log(low), std::log(high));
}
const json& child(const json& c, const char* key) {
  static const json empty = json::object();
  auto it = c.find(key);
  return it != c.end() ? *it : empty;
}
// One-hot of `value` among `names`, scaled so two categories are `gap` apart.
void one_hot(std::vector<double>& out, const std::string& value, std::initializer_list<const char*> names,
             double gap) {
  for (const char* n : names) out.push_back(value == n ? gap / std::sqrt(2.0) : 0.0);
}

// experiments/fashion-mnist-mlp.json's space.
std::vector<double> mlp_features(const json& c) {
  const json& net = child(c, "net");
  const json& solver = child(c, "solver");
  const json& dense = child(net, "dense");
  double units = 0, dropout = 0;
  for (const auto& b : dense) {
    units += std::log2(num(b, "units", 64));
    dropout += num(b, "dropout", 0);
  }
  const double n = std::max<double>(1, static_cast<double>(dense.size()));
  std::vector<double> f{unit(static_cast<double>(dense.size()), 1, 3), unit(units / n, 6, 9),
                        unit(dropout / n, 0, 0.5)};
  one_hot(f, str(net, "activation"), {"relu", "tanh", "elu", "leaky_relu"}, 0.5);
  const json& opt = child(solver, "optimizer");
  one_hot(f, str(opt, "type"), {"sgd", "adam", "adamw"}, 0.7);
  f.push_back(unit(num(opt, "momentum", 0.75), 0.5, 0.99));
  f.push_back(log_unit(num(solver, "lr", 1e-3), 1e-4, 0.3));
  f.push_back(log_unit(num(solver, "weight_decay", 1e-4), 1e-6, 1e-2));
  f.push_back(log_unit(num(solver, "batch_size", 128), 64, 256));
  one_hot(f, str(child(solver, "lr_policy"), "type"), {"fixed", "step", "exp", "cosine"}, 0.4);
  return f;
}

// experiments/fashion-mnist-cnn.json's space.
std::vector<double> cnn_features(const json& c) {
  const json& net = child(c, "net");
  const json& solver = child(c, "solver");
  const json& conv = child(net, "conv");
  const json& dense = child(net, "dense");
  double filters = 0, kernel = 0, bn = 0;
  for (const auto& b : conv) {
    filters += std::log2(num(b, "filters", 16));
    kernel += num(b, "kernel", 3);
    bn += b.value("batch_norm", false) ? 1 : 0;
  }
  const double n = std::max<double>(1, static_cast<double>(conv.size()));
  std::vector<double> f{unit(static_cast<double>(conv.size()), 1, 2), unit(filters / n, 4, 6),
                        unit(kernel / n, 3, 5), bn / n, static_cast<double>(dense.size())};
  f.push_back(dense.empty() ? 0.5 : log_unit(num(dense[0], "units", 64), 64, 256));
  f.push_back(dense.empty() ? 0.0 : unit(num(dense[0], "dropout", 0), 0, 0.4));
  one_hot(f, str(net, "activation"), {"relu", "elu", "leaky_relu"}, 0.5);
  const json& opt = child(solver, "optimizer");
  f.push_back(str(opt, "type") == "sgd" ? 0.7 : 0.0);
  f.push_back(unit(num(opt, "momentum", 0.875), 0.8, 0.95));
  f.push_back(log_unit(num(solver, "lr", 1e-2), 5e-4, 0.1));
  f.push_back(num(solver, "batch_size", 64) == 128 ? 0.5 : 0.0);
  f.push_back(str(child(solver, "lr_policy"), "type") == "cosine" ? 0.5 : 0.0);
  return f;
}

// experiments/suite/collect/fmnist-mlp-small.json's space.
std::vector<double> small_features(const json& c) {
  const json& solver = child(c, "solver");
  const json& opt = child(solver, "optimizer");
  const json& dense = child(child(c, "net"), "dense");
  const json& layer = dense.empty() ? child(c, "none") : dense[0];
  const double m = num(opt, "momentum", 0.5), lr = num(solver, "lr", 1e-2);
  return {unit(m, 0, 0.99),
          opt.value("nesterov", false) ? 0.3 : 0.0,
          log_unit(lr, 1e-3, 1.0),
          log_unit(lr / (1 - m), 1e-3, 100.0),
          log_unit(num(solver, "weight_decay", 1e-4), 1e-6, 1e-1),
          log_unit(num(solver, "batch_size", 64), 16, 128),
          log_unit(num(layer, "units", 64), 16, 1024),
          unit(num(layer, "dropout", 0), 0, 0.8)};
}

void add_surrogate(std::vector<Problem>& out, const std::string& data_dir, const char* name,
                   const char* half, const char* study, const char* summary, Features features) {
  auto s = std::make_shared<Surrogate>();
  const std::string data = data_dir + "/" + name + ".jsonl";
  if (!s->load(data, std::move(features))) {
    std::fprintf(stderr, "suite: %s left out: no data at %s\n", name, data.c_str());
    return;
  }
  std::ifstream in(std::string(data_dir) + "/../collect/" + study);
  json file = json::parse(in, nullptr, false);
  if (file.is_discarded() || !file.contains("space")) {
    std::fprintf(stderr, "suite: %s left out: cannot read the space in collect/%s\n", name, study);
    return;
  }
  char fit[160];
  std::snprintf(fit, sizeof fit, " (%zu runs, data range %.3f-%.3f, leave-one-out RMSE %.4f)",
                s->size(), s->lowest(), s->highest(), s->loo_error());
  Problem p{name, half, "surrogate", std::string(summary) + fit, file["space"], s->best(), 0.0,
            nullptr};
  p.value = [s](const json& c) { return s->predict(c); };
  out.push_back(std::move(p));
}

}  // namespace

void add_structured(std::vector<Problem>& out, const std::string& data_dir) {
  out.push_back(conditional_models());
  out.push_back(conditional_when());
  out.push_back(blocks_widths());
  out.push_back(blocks_cnn());
  add_surrogate(out, data_dir, "fmnist-mlp", "tune", "fmnist-mlp.json",
                "1 - validation accuracy of the demo's MLP space (10,000 images, 2 epochs), "
                "kernel regression over real runs",
                mlp_features);
  add_surrogate(out, data_dir, "fmnist-cnn", "validate", "fmnist-cnn.json",
                "1 - validation accuracy of a CNN space (4,000 images, 1 epoch), kernel "
                "regression over real runs",
                cnn_features);
  add_surrogate(out, data_dir, "fmnist-mlp-small", "validate", "fmnist-mlp-small.json",
                "1 - validation accuracy of one hidden layer with SGD, weight decay and dropout "
                "on 1,500 images for 6 epochs, kernel regression over real runs",
                small_features);
}

}  // namespace hpo::suite
