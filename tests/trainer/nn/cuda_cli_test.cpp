// The no-GPU path of `hpo train --device cuda:0` and of make_backend(), end to end: clear
// messages, exit 1, no crash; and hpo without its CUDA module still trains on the CPU.
#include <catch2/catch.hpp>
#include <string>

#include "tests/support/process.h"
#include "tests/support/skip.h"
#include "tests/support/temp_dir.h"
#include "trainer/nn/backend.h"
#include "trainer/nn/cuda/device.h"

namespace gpu = hpo::nn::gpu;
using Catch::Matchers::Contains;

TEST_CASE("make_backend for cuda:0 without a GPU passes on the driver's words") {
  auto count = gpu::device_count();
  if (count) {
    HPO_SKIP("a CUDA device is present, so the no-GPU path cannot be taken");
  }
  auto backend = hpo::nn::make_backend("cuda:0", 1);
  REQUIRE_FALSE(backend);
  CHECK_THAT(backend.error().message, Contains("cuda:0"));
  CHECK_THAT(backend.error().message, Contains(count.error().message));
}

namespace {

struct Run {
  int exit_code = -1;  // -1: killed by a signal (a crash)
  std::string output;  // stdout and stderr together
};

// Runs `hpo train` with a tiny config (a linear model on 200 Fashion-MNIST images).
Run run_train(const std::string& env, const std::string& device) {
  const hpo::test::TempDir dir("cuda-cli");
  const std::string config = dir / "config.json";
  hpo::test::write_text(
      config, R"({"net": {"layers": [{"type": "flatten"}, {"type": "dense", "units": 10}]},
      "data": {"train_limit": 200, "validation": 100, "test_limit": 100},
      "solver": {"epochs": 1, "batch_size": 50}})");
  const auto r =
      hpo::test::run_hpo("train --config " + config + " --device " + device + " 2>&1", env);
  return Run{r.code, r.out};
}

}  // namespace

TEST_CASE("hpo train --device cuda:0 without a GPU fails with exit 1 and says no CUDA device") {
  auto count = gpu::device_count();
  if (count) {
    HPO_SKIP("a CUDA device is present, so the no-GPU path cannot be taken");
  }
  const Run run = run_train("", "cuda:0");
  INFO(run.output);
  CHECK(run.exit_code == 1);  // a runtime failure, not a crash (-1) nor a usage error (2)
  CHECK_THAT(run.output, Contains("no CUDA device: "));
  CHECK_THAT(run.output, Contains(count.error().message));
}

TEST_CASE("without the CUDA module hpo says so for cuda:0 and trains on the CPU for auto") {
  const std::string missing = "HPO_CUDA_MODULE=/nonexistent/libhpo_cuda.so";
  const Run refused = run_train(missing, "cuda:0");
  {
    INFO(refused.output);
    CHECK(refused.exit_code == 1);
    CHECK_THAT(refused.output,
               Contains("no CUDA device: the CUDA backend module could not be loaded: "));
    CHECK_THAT(refused.output, Contains("/nonexistent/libhpo_cuda.so"));
  }
  const Run trained = run_train(missing, "auto");
  INFO(trained.output);
  CHECK(trained.exit_code == 0);
  CHECK_THAT(trained.output, Contains("\"final\""));
}
