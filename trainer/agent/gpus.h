// GPU discovery and the agent's slots. The CUDA runtime is loaded with dlopen,
// so the agent binary starts and works as a CPU agent on a machine with no
// toolkit, no driver or no GPU; discovery then returns no GPU and says why.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace hpo::agent {

struct Gpu {
  int index = 0;           // CUDA runtime ordinal as this process sees it
  std::string visible_id;  // what a child's CUDA_VISIBLE_DEVICES must hold for this GPU
                           // (the entry of our own CUDA_VISIBLE_DEVICES, e.g. under Slurm)
  std::string name;        // "NVIDIA H100 80GB HBM3"
  std::uint64_t memory_bytes = 0;
};

struct GpuDiscovery {
  std::vector<Gpu> gpus;
  std::string reason;  // why `gpus` is empty ("libcudart not found", "no CUDA-capable device...")
};

// Asks the CUDA runtime found first among `libraries` (default: libcudart.so,
// .so.13, .so.12, .so.11.0, then /usr/local/cuda/lib64/libcudart.so). Never fails:
// anything that goes wrong is an empty list with a reason. Takes ~0.1-1 s with a
// driver (runtime initialisation); call once at start.
GpuDiscovery discover_gpus(const std::vector<std::string>& libraries = {});

// `--gpus`: "all", "none", or a comma list of indices ("0,2") among `found`.
// Fails for a malformed list or an index that was not found.
Result<std::vector<Gpu>> select_gpus(std::string_view selection, const std::vector<Gpu>& found);

// One place a trial can run. A GPU slot's trials see only that GPU.
struct Slot {
  int id = 0;
  std::optional<Gpu> gpu;  // nullopt: a CPU slot
};

// `slots_per_gpu` slots on each selected GPU, then `cpu_slots` CPU slots.
// cpu_slots < 0 means "default": 1 when there is no GPU slot, else 0.
std::vector<Slot> make_slots(const std::vector<Gpu>& gpus, int slots_per_gpu, int cpu_slots);

// What `hpo agent --gpus G --slots-per-gpu N --cpu-slots M` works with.
struct AgentSlots {
  std::vector<Gpu> gpus;    // the selected GPUs
  std::vector<Slot> slots;  // never empty
  std::string
      summary;  // one line for the log: "2 GPUs (...), 4 slots" / "no GPU (why): 1 CPU slot"
};

// Discovers GPUs (unless `selection` is "none"), selects them and makes the slots.
// Fails for a bad --gpus list, a GPU index that was not found (with the
// discovery's reason), or no slot at all.
Result<AgentSlots> plan_slots(std::string_view selection, int slots_per_gpu, int cpu_slots);

// For HELLO: [{"index":0,"name":"...","memory_bytes":N}, ...].
nlohmann::json gpus_json(const std::vector<Gpu>& gpus);

}  // namespace hpo::agent
