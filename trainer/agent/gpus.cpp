#include "trainer/agent/gpus.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace hpo::agent {
namespace {

using GetDeviceCount = int (*)(int*);
using GetDeviceProperties = int (*)(void*, int);
using GetErrorString = const char* (*)(int);

// cudaDeviceProp starts with `char name[256]`, then cudaUUID_t (16 bytes),
// char luid[8], unsigned luidDeviceNodeMask, then size_t totalGlobalMem: stable
// since CUDA 10 (checked against the 13.0 headers: offset 288, struct 1008 bytes).
// The buffer is far larger than the struct so a newer runtime cannot overrun it.
constexpr size_t kPropsBuffer = 16384;
constexpr size_t kTotalMemOffset = 288;

struct Library {
  void* handle = nullptr;
  ~Library() {
    if (handle) ::dlclose(handle);
  }
};

std::vector<std::string> split_commas(std::string_view s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    size_t comma = s.find(',', pos);
    out.emplace_back(
        s.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return out;
}

}  // namespace

GpuDiscovery discover_gpus(const std::vector<std::string>& libraries) {
  std::vector<std::string> names = libraries;
  if (names.empty()) {
    names = {"libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0",
             "/usr/local/cuda/lib64/libcudart.so"};
  }
  GpuDiscovery result;
  Library lib;
  std::string last_error;
  for (const auto& n : names) {
    lib.handle = ::dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib.handle) break;
    const char* e = ::dlerror();
    last_error = e ? e : n;
  }
  if (!lib.handle) {
    result.reason = "CUDA runtime (libcudart) not found: " + last_error;
    return result;
  }
  auto count_fn = reinterpret_cast<GetDeviceCount>(::dlsym(lib.handle, "cudaGetDeviceCount"));
  auto props_fn =
      reinterpret_cast<GetDeviceProperties>(::dlsym(lib.handle, "cudaGetDeviceProperties"));
  auto error_fn = reinterpret_cast<GetErrorString>(::dlsym(lib.handle, "cudaGetErrorString"));
  if (!count_fn || !props_fn) {
    result.reason = "CUDA runtime lacks cudaGetDeviceCount/cudaGetDeviceProperties";
    return result;
  }
  auto error_text = [&](int code) {
    const char* s = error_fn ? error_fn(code) : nullptr;
    return std::string(s ? s : "CUDA error") + " (code " + std::to_string(code) + ")";
  };
  int count = 0;
  if (int rc = count_fn(&count); rc != 0) {
    result.reason = "cudaGetDeviceCount: " + error_text(rc);
    return result;
  }
  if (count <= 0) {
    result.reason = "no CUDA-capable device";
    return result;
  }
  // Our own CUDA_VISIBLE_DEVICES (set by Slurm, Kubernetes or the user) maps our
  // ordinals to the ids a child must be given.
  std::vector<std::string> visible;
  if (const char* v = std::getenv("CUDA_VISIBLE_DEVICES"); v && *v) visible = split_commas(v);
  auto props = std::make_unique<unsigned char[]>(kPropsBuffer);
  for (int i = 0; i < count; ++i) {
    std::memset(props.get(), 0, kPropsBuffer);
    Gpu gpu;
    gpu.index = i;
    gpu.visible_id =
        i < static_cast<int>(visible.size()) ? visible[static_cast<size_t>(i)] : std::to_string(i);
    if (int rc = props_fn(props.get(), i); rc == 0) {
      gpu.name.assign(reinterpret_cast<const char*>(props.get()),
                      strnlen(reinterpret_cast<const char*>(props.get()), 256));
      size_t mem = 0;
      std::memcpy(&mem, props.get() + kTotalMemOffset, sizeof mem);
      gpu.memory_bytes = mem;
    } else {
      gpu.name = "GPU " + std::to_string(i) + " (properties: " + error_text(rc) + ")";
    }
    result.gpus.push_back(std::move(gpu));
  }
  return result;
}

Result<std::vector<Gpu>> select_gpus(std::string_view selection, const std::vector<Gpu>& found) {
  if (selection == "all" || selection.empty()) return found;
  if (selection == "none") return std::vector<Gpu>{};
  std::vector<Gpu> out;
  for (const auto& part : split_commas(selection)) {
    if (part.empty() ||
        !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        part.size() > 4) {
      return fail("--gpus: '" + std::string(selection) + "' is not all, none or a list like 0,2");
    }
    int index = std::stoi(part);
    auto it =
        std::find_if(found.begin(), found.end(), [&](const Gpu& g) { return g.index == index; });
    if (it == found.end()) {
      return fail("--gpus: GPU " + part + " not found (" + std::to_string(found.size()) +
                  " GPUs here)");
    }
    if (std::none_of(out.begin(), out.end(), [&](const Gpu& g) { return g.index == index; })) {
      out.push_back(*it);
    }
  }
  return out;
}

std::vector<Slot> make_slots(const std::vector<Gpu>& gpus, int slots_per_gpu, int cpu_slots) {
  std::vector<Slot> slots;
  for (const auto& g : gpus) {
    for (int k = 0; k < std::max(slots_per_gpu, 0); ++k) {
      slots.push_back(Slot{static_cast<int>(slots.size()), g});
    }
  }
  if (cpu_slots < 0) cpu_slots = slots.empty() ? 1 : 0;
  for (int k = 0; k < cpu_slots; ++k)
    slots.push_back(Slot{static_cast<int>(slots.size()), std::nullopt});
  return slots;
}

Result<AgentSlots> plan_slots(std::string_view selection, int slots_per_gpu, int cpu_slots) {
  if (slots_per_gpu < 1) return fail("--slots-per-gpu: must be >= 1");
  GpuDiscovery found;
  if (selection != "none") found = discover_gpus();
  auto selected = select_gpus(selection, found.gpus);
  if (!selected) {
    std::string why = found.gpus.empty() && !found.reason.empty() ? " (" + found.reason + ")" : "";
    return fail(selected.error().message + why);
  }
  AgentSlots out;
  out.gpus = std::move(*selected);
  out.slots = make_slots(out.gpus, slots_per_gpu, cpu_slots);
  if (out.slots.empty()) return fail("no slot: --cpu-slots 0 and no GPU selected");
  size_t cpu = static_cast<size_t>(
      std::count_if(out.slots.begin(), out.slots.end(), [](const Slot& s) { return !s.gpu; }));
  if (out.gpus.empty()) {
    out.summary = selection == "none" ? "GPUs not used" : "no GPU (" + found.reason + ")";
  } else {
    out.summary =
        std::to_string(out.gpus.size()) + " GPU" + (out.gpus.size() > 1 ? "s" : "") + " (";
    for (size_t i = 0; i < out.gpus.size(); ++i) {
      const auto& g = out.gpus[i];
      out.summary += (i ? ", " : "") + std::to_string(g.index) + ": " + g.name + " " +
                     std::to_string(g.memory_bytes >> 20) + " MiB";
    }
    out.summary +=
        ") x " + std::to_string(slots_per_gpu) + " slot" + (slots_per_gpu > 1 ? "s" : "");
  }
  out.summary += ", " + std::to_string(cpu) + " CPU slot" + (cpu == 1 ? "" : "s");
  return out;
}

nlohmann::json gpus_json(const std::vector<Gpu>& gpus) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& g : gpus) {
    out.push_back({{"index", g.index}, {"name", g.name}, {"memory_bytes", g.memory_bytes}});
  }
  return out;
}

}  // namespace hpo::agent
