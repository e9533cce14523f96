// Fuzzes the trainer config (`hpo train --config FILE`, trainer/nn/spec.h): the bounded JSON
// reader, parse_train_config, then shape inference against Fashion-MNIST's {1, 28, 28} and 10
// classes and against a CSV-like {7, 1, 1} with 3 classes, as run_training would.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/json.h"
#include "trainer/nn/spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto json = hpo::parse_json(text, "fuzz-config.json");
  if (!json) return 0;
  auto cfg = hpo::nn::parse_train_config(*json);
  if (!cfg) return 0;
  (void)hpo::nn::infer_shapes(cfg->layers, {1, 28, 28}, 10);
  (void)hpo::nn::infer_shapes(cfg->layers, {7, 1, 1}, 3);
  for (double epoch : {0.0, 0.5, 3.0, double(cfg->solver.epochs)})
    (void)hpo::nn::learning_rate(cfg->solver, epoch);
  return 0;
}
