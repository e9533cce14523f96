// The trainer config: refusals name the layer and field; the BLOCKS form expands; lr policies.
#include <nlohmann/json.hpp>

#include "tests/trainer/nn/nn_test_util.h"
#include "trainer/nn/spec.h"

namespace hpo::nn::test {
namespace {

using nlohmann::json;

// Parses and shape-checks `config` for 1x7x7 inputs and 3 classes; returns the message or "".
std::string refusal(const json& config) {
  auto c = parse_train_config(config);
  if (!c) return c.error().message;
  auto s = infer_shapes(c->layers, {1, 7, 7}, 3);
  if (!s) return s.error().message;
  return "";
}

json with_layers(json layers) { return json{{"net", {{"layers", layers}}}}; }

TEST_CASE("a kernel larger than its input is refused naming the layer index and field",
          "[nn][spec]") {
  auto msg = refusal(with_layers(json::array({{{"type", "conv"}, {"filters", 4}, {"kernel", 3}},
                                              {{"type", "relu"}},
                                              {{"type", "conv"}, {"filters", 4}, {"kernel", 7}},
                                              {{"type", "dense"}, {"units", 3}}})));
  REQUIRE(msg == "net.layers[2].kernel: 7 is larger than the input 5x5");
}

TEST_CASE("an unknown layer type, a missing field and a bad value are refused with their path",
          "[nn][spec]") {
  REQUIRE(refusal(with_layers(json::array({{{"type", "lstm"}}})))
              .starts_with("net.layers[0].type: unknown layer type 'lstm'"));
  REQUIRE(refusal(with_layers(json::array(
              {{{"type", "dense"}, {"units", 3}}, {{"type", "conv"}, {"kernel", 3}}}))) ==
          "net.layers[1].filters: missing");
  REQUIRE(refusal(with_layers(json::array({{{"type", "dropout"}, {"rate", 1.5}}}))) ==
          "net.layers[0].rate: must be < 1 (got 1.5)");
  REQUIRE(refusal(with_layers(json::array({{{"type", "pool"}, {"size", 9}}}))) ==
          "net.layers[0].size: 9 is larger than the input 7x7");
  REQUIRE(refusal(with_layers(json::array({{{"type", "dense"}, {"units", "many"}}}))) ==
          "net.layers[0].units: expected an integer (got \"many\")");
}

TEST_CASE("a last layer that does not give one value per class is refused", "[nn][spec]") {
  REQUIRE(refusal(with_layers(json::array({{{"type", "dense"}, {"units", 5}}}))) ==
          "net.layers[0].units: 5 values but the data has 3 classes (the last layer feeds the "
          "softmax)");
}

TEST_CASE("solver and data fields are checked with their paths", "[nn][spec]") {
  json c = with_layers(json::array({{{"type", "dense"}, {"units", 3}}}));
  c["solver"] = {{"lr", -1}};
  REQUIRE(refusal(c) == "solver.lr: must be > 0 (got -1)");
  c["solver"] = {{"optimizer", {{"type", "lbfgs"}}}};
  REQUIRE(refusal(c).starts_with("solver.optimizer.type: unknown optimizer 'lbfgs'"));
  c["solver"] = {{"lr_policy", {{"type", "cyclic"}}}};
  REQUIRE(refusal(c).starts_with("solver.lr_policy.type: unknown policy 'cyclic'"));
  c["solver"] = {{"batch_size", 0}};
  REQUIRE(refusal(c) == "solver.batch_size: must be >= 1 (got 0)");
  c["solver"] = json::object();
  c["net"]["init"] = "orthogonal";
  REQUIRE(refusal(c) == "net.init: expected he, xavier or uniform (got \"orthogonal\")");
  c["net"]["init"] = "uniform";
  REQUIRE(refusal(c) == "");
  c["data"] = {{"format", "parquet"}};
  REQUIRE(refusal(c).starts_with("data.format: unknown format 'parquet'"));
}

TEST_CASE(
    "the BLOCKS net form expands to conv, bn, activation, pool, flatten, dense, dropout "
    "and the classifier",
    "[nn][spec]") {
  json c = {
      {"net",
       {{"conv",
         json::array({{{"filters", 8}, {"kernel", 3}, {"pool", "max"}, {"batch_norm", true}}})},
        {"dense", json::array({{{"units", 16}, {"dropout", 0.25}}})},
        {"activation", "elu"}}},
      {"solver", {{"optimizer", {{"type", "adam"}, {"beta1", 0.8}}}}}};
  auto cfg = parse_train_config(c);
  REQUIRE(cfg.has_value());
  std::vector<LayerKind> kinds;
  for (const auto& l : cfg->layers) kinds.push_back(l.kind);
  REQUIRE(kinds ==
          std::vector<LayerKind>{LayerKind::kConv, LayerKind::kBatchNorm, LayerKind::kActivation,
                                 LayerKind::kPool, LayerKind::kFlatten, LayerKind::kDense,
                                 LayerKind::kActivation, LayerKind::kDropout, LayerKind::kDense});
  REQUIRE(cfg->layers[0].conv.pad == 1);  // "same" padding
  REQUIRE(cfg->layers[2].activation.kind == Activation::kElu);
  REQUIRE(cfg->layers[7].rate == Approx(0.25));
  REQUIRE(cfg->solver.rule.kind == Optimizer::kAdam);
  REQUIRE(cfg->solver.rule.beta1 == Approx(0.8));
  auto shapes = infer_shapes(cfg->layers, {1, 7, 7}, 3);
  REQUIRE(shapes.has_value());
  REQUIRE(shapes->back() == std::vector<int64_t>{3, 1, 1});
  REQUIRE((*shapes)[3] == std::vector<int64_t>{8, 3, 3});
}

TEST_CASE("learning-rate policies and linear warm-up give the documented values", "[nn][spec]") {
  SolverSpec s;
  s.lr = 0.1;
  s.epochs = 10;
  REQUIRE(learning_rate(s, 3.5) == Approx(0.1));
  s.lr_policy.type = "step";
  s.lr_policy.gamma = 0.5;
  s.lr_policy.step_epochs = 2;
  REQUIRE(learning_rate(s, 1.9) == Approx(0.1));
  REQUIRE(learning_rate(s, 2.0) == Approx(0.05));
  REQUIRE(learning_rate(s, 5.0) == Approx(0.025));
  s.lr_policy.type = "exp";
  s.lr_policy.gamma = 0.9;
  REQUIRE(learning_rate(s, 2.0) == Approx(0.1 * 0.81));
  s.lr_policy.type = "cosine";
  REQUIRE(learning_rate(s, 0.0) == Approx(0.1));
  REQUIRE(learning_rate(s, 5.0) == Approx(0.05));
  REQUIRE(learning_rate(s, 10.0) == Approx(0.0).margin(1e-12));
  s.lr_policy.type = "fixed";
  s.lr_policy.warmup_epochs = 2;
  REQUIRE(learning_rate(s, 0.5) == Approx(0.025));
  REQUIRE(learning_rate(s, 2.5) == Approx(0.1));
}

TEST_CASE(
    "an integer field beyond 2^31 or a layer of more than 2^31 values is refused, not overflowed",
    "[nn][spec]") {
  // 1e300 converted to int64, and 2 * pad or filters x height x width beyond int64, were
  // undefined behaviour (found by fuzz_train_config).
  REQUIRE(
      refusal(with_layers(json::array({{{"type", "conv"}, {"filters", 1e300}, {"kernel", 3}}}))) ==
      "net.layers[0].filters: must be <= 2147483647 (got 1e+300)");
  REQUIRE(
      refusal(with_layers(json::array(
          {{{"type", "conv"}, {"filters", 4}, {"kernel", 3}, {"pad", 9223372036854775807}}}))) ==
      "net.layers[0].pad: must be <= 2147483647 (got 9223372036854775807)");
  REQUIRE(refusal(with_layers(
              json::array({{{"type", "conv"}, {"filters", 2147483647}, {"kernel", 3}, {"pad", 1}},
                           {{"type", "flatten"}},
                           {{"type", "dense"}, {"units", 3}}}))) ==
          "net.layers[0]: outputs 2147483647x7x7 values per example, more than 2147483647");
  // The seed may be any int64.
  REQUIRE(refusal(json{{"seed", 9223372036854775807},
                       {"net", {{"layers", json::array({{{"type", "dense"}, {"units", 3}}})}}}}) ==
          "");
}

}  // namespace
}  // namespace hpo::nn::test
