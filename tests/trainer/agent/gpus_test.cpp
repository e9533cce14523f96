#include "trainer/agent/gpus.h"

#include <catch2/catch.hpp>

using hpo::agent::discover_gpus;
using hpo::agent::Gpu;
using hpo::agent::make_slots;
using hpo::agent::select_gpus;

TEST_CASE("GPU discovery without a CUDA runtime returns no GPU and says why", "[gpus]") {
  auto found = discover_gpus({"libhpo-no-such-cudart.so"});
  CHECK(found.gpus.empty());
  CHECK(found.reason.find("libcudart") != std::string::npos);
}

TEST_CASE("GPU discovery never fails: GPUs, or none with a reason", "[gpus]") {
  auto found = discover_gpus();
  if (found.gpus.empty()) {
    CHECK_FALSE(found.reason.empty());  // no driver here: "CUDA driver version is insufficient..."
  } else {
    for (const auto& g : found.gpus) {
      CHECK_FALSE(g.name.empty());
      CHECK(g.memory_bytes > 0);
    }
  }
}

TEST_CASE("the gpus option selects all, none or a list of found GPUs", "[gpus]") {
  std::vector<Gpu> found = {{0, "0", "A", 1}, {1, "1", "B", 1}, {2, "2", "C", 1}};
  CHECK(select_gpus("all", found)->size() == 3);
  CHECK(select_gpus("none", found)->empty());
  auto two = select_gpus("0,2", found);
  REQUIRE(two.has_value());
  REQUIRE(two->size() == 2);
  CHECK((*two)[1].name == "C");
  CHECK_FALSE(select_gpus("5", found).has_value());
  CHECK_FALSE(select_gpus("0,x", found).has_value());
  CHECK_FALSE(select_gpus("1,", found).has_value());
  CHECK(select_gpus("1", {}).error().message.find("not found") != std::string::npos);
}

TEST_CASE("slots: N per GPU, CPU slots only when asked or when there is no GPU", "[gpus]") {
  std::vector<Gpu> gpus = {{0, "4", "A", 1}, {1, "5", "B", 1}};
  auto slots = make_slots(gpus, 2, -1);
  REQUIRE(slots.size() == 4);
  CHECK(slots[0].gpu->visible_id == "4");
  CHECK(slots[3].gpu->visible_id == "5");
  CHECK(make_slots(gpus, 1, 3).size() == 5);
  auto cpu = make_slots({}, 2, -1);
  REQUIRE(cpu.size() == 1);
  CHECK_FALSE(cpu[0].gpu.has_value());
  CHECK(make_slots({}, 1, 4).size() == 4);
}

TEST_CASE("an agent without GPUs plans CPU slots, and a named GPU that is absent is an error",
          "[gpus]") {
  auto cpu = hpo::agent::plan_slots("none", 1, 3);
  REQUIRE(cpu.has_value());
  CHECK(cpu->slots.size() == 3);
  CHECK(cpu->gpus.empty());
  CHECK(cpu->summary == "GPUs not used, 3 CPU slots");
  CHECK_FALSE(hpo::agent::plan_slots("none", 1, 0).has_value());
  CHECK_FALSE(hpo::agent::plan_slots("none", 0, 1).has_value());
  auto found = discover_gpus();
  if (found.gpus.empty()) {
    auto missing = hpo::agent::plan_slots("0", 1, -1);
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().message.find(found.reason) != std::string::npos);
    auto all = hpo::agent::plan_slots("all", 1, -1);
    REQUIRE(all.has_value());
    CHECK(all->slots.size() == 1);
    CHECK(all->summary.find("no GPU (") == 0);
  }
}
