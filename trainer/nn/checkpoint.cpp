// Checkpoint writer and bounded reader (see checkpoint.h).
#include "trainer/nn/checkpoint.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "base/json.h"

namespace hpo::nn {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr char kMagic[8] = {'H', 'P', 'O', 'C', 'K', 'P', 'T', '1'};
constexpr char kEnd[8] = {'H', 'P', 'O', 'E', 'N', 'D', '0', '1'};

// The config minus what may legitimately change between a run and its resumption: where the
// data lies, and the solver's settings that leave the saved tensors meaningful (the learning
// rate, its policy, weight decay, momentum and the other optimizer constants). PBT's explore
// resumes a parent's checkpoint with such changes, as does a user lowering the rate by hand.
// The optimizer's type stays (its state tensors are saved), and so do the batch size and the
// epochs (the position in the run is counted in them).
json identity(const json& source) {
  json j = source;
  if (j.contains("data") && j["data"].is_object()) j["data"].erase("dir");
  if (j.contains("solver") && j["solver"].is_object()) {
    json& s = j["solver"];
    for (const char* key : {"lr", "weight_decay", "lr_policy"}) s.erase(key);
    json type = "sgd";  // parse_optimizer's default
    if (s.contains("optimizer"))
      type = s["optimizer"].is_object() ? s["optimizer"].value("type", json("sgd")) : s["optimizer"];
    s["optimizer"] = type;
  }
  return j;
}

// What changed in the solver between the checkpoint's config and this run's, for the log.
std::string solver_changes(const json& saved, const json& now) {
  auto flat = [](const json& config) {
    json s = config.contains("solver") ? config["solver"] : json::object();
    return s.is_object() ? s.flatten() : json::object();
  };
  json a = flat(saved), b = flat(now);
  std::string out;
  for (auto& [key, value] : b.items())
    if (!a.contains(key) || a[key] != value)
      out += (out.empty() ? "" : ", ") + std::string("solver") + key + " " +
             (a.contains(key) ? a[key].dump() : "unset") + " -> " + value.dump();
  for (auto& [key, value] : a.items())
    if (!b.contains(key)) out += std::string(out.empty() ? "" : ", ") + "solver" + key + " unset";
  return out;
}

// A header field that must be an integer >= 0 (positions and counts).
Result<int64_t> count_field(const json& object, const char* key, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end()) return fail(where + " '" + key + "' is missing");
  const bool fits = it->is_number_unsigned()
                        ? it->get<uint64_t>() <= uint64_t(std::numeric_limits<int64_t>::max())
                        : it->is_number_integer() && it->get<int64_t>() >= 0;
  if (!fits) return fail(where + " '" + key + "' must be an integer >= 0 (got " + it->dump() + ")");
  return it->get<int64_t>();
}

// A header field that must be a finite number (sums and seconds).
Result<double> number_field(const json& object, const char* key, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end()) return fail(where + " '" + key + "' is missing");
  if (!it->is_number() || !std::isfinite(it->get<double>()))
    return fail(where + " '" + key + "' must be a finite number (got " + it->dump() + ")");
  return it->get<double>();
}

}  // namespace

Result<CheckpointHeader> read_checkpoint_header(std::istream& in, uint64_t file_size,
                                                const std::string& path) {
  char magic[8];
  uint64_t len = 0;
  in.read(magic, 8);
  in.read(reinterpret_cast<char*>(&len), 8);
  if (!in || std::memcmp(magic, kMagic, 8) != 0) return fail(path + ": not an hpo checkpoint");
  if (len > kMaxCheckpointHeaderBytes || len > file_size - 16)
    return fail(path + ": header length " + std::to_string(len) + " is more than " +
                (len > kMaxCheckpointHeaderBytes
                     ? "a checkpoint header may be (" + std::to_string(kMaxCheckpointHeaderBytes) +
                           " bytes)"
                     : "the file holds (" + std::to_string(file_size) + " bytes)") +
                ": truncated or not an hpo checkpoint");
  std::string text(size_t(len), '\0');
  in.read(text.data(), std::streamsize(len));
  if (!in) return fail(path + ": truncated in the header");
  auto header = parse_json(text, path + ": header", {.max_bytes = kMaxCheckpointHeaderBytes});
  if (!header) return std::unexpected(header.error());
  const std::string where = path + ": header field";
  if (!header->is_object()) return fail(path + ": the header is not a JSON object");
  CheckpointHeader h;
  h.data_offset = 16 + len;
  auto config = header->find("config");
  if (config == header->end() || !config->is_object())
    return fail(where + " 'config' is missing or not an object");
  h.config = *config;
  Position& p = h.position;
  for (auto [key, field] : {std::pair{"epoch", &p.epoch},
                            {"step_in_epoch", &p.step_in_epoch},
                            {"global_step", &p.global_step},
                            {"correct", &p.correct},
                            {"seen", &p.seen}}) {
    auto v = count_field(*header, key, where);
    if (!v) return std::unexpected(v.error());
    *field = *v;
  }
  for (auto [key, field] : {std::pair{"loss_sum", &p.loss_sum}, {"elapsed", &p.elapsed}}) {
    auto v = number_field(*header, key, where);
    if (!v) return std::unexpected(v.error());
    *field = *v;
  }
  auto params = header->find("params");
  if (params == header->end() || !params->is_array())
    return fail(where + " 'params' is missing or not an array");
  for (size_t i = 0; i < params->size(); ++i) {
    const json& param = (*params)[i];
    const std::string at = where + " 'params[" + std::to_string(i) + "]'";
    if (!param.is_object()) return fail(at + " is not an object");
    auto count = count_field(param, "count", at + ":");
    if (!count) return std::unexpected(count.error());
    h.param_counts.push_back(*count);
  }
  return h;
}

Status save_checkpoint(const std::string& dir, const TrainConfig& cfg, Net& net,
                       const Position& pos) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail(dir + ": cannot create the checkpoint directory: " + ec.message());
  json header = {{"config", cfg.source},
                 {"epoch", pos.epoch},
                 {"step_in_epoch", pos.step_in_epoch},
                 {"global_step", pos.global_step},
                 {"loss_sum", pos.loss_sum},
                 {"correct", pos.correct},
                 {"seen", pos.seen},
                 {"elapsed", pos.elapsed}};
  json params = json::array();
  for (const Param& p : net.params())
    params.push_back(
        {{"name", p.name}, {"count", p.value.desc().count()}, {"trainable", p.trainable}});
  header["params"] = params;
  std::string h = header.dump();
  const std::string final_path = dir + "/checkpoint.bin", tmp = final_path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return fail(tmp + ": cannot write");
    uint64_t len = h.size();
    out.write(kMagic, 8);
    out.write(reinterpret_cast<const char*>(&len), 8);
    out.write(h.data(), std::streamsize(h.size()));
    std::vector<float> host;
    for (Param& p : net.params()) {
      for (Tensor* t : {&p.value, &p.state1, &p.state2}) {
        if (t->empty()) continue;
        host.resize(size_t(t->desc().count()));
        net.backend().download(*t, host.data());
        out.write(reinterpret_cast<const char*>(host.data()),
                  std::streamsize(host.size() * sizeof(float)));
      }
    }
    out.write(kEnd, 8);
    out.flush();
    if (!out) return fail(tmp + ": write failed (disk full?)");
  }
  fs::rename(tmp, final_path, ec);
  if (ec) return fail(final_path + ": cannot rename the checkpoint into place: " + ec.message());
  return {};
}

Result<bool> load_checkpoint(const std::string& dir, const TrainConfig& cfg, Net& net,
                             Position& pos, std::string* changes) {
  const std::string path = dir + "/checkpoint.bin";
  std::error_code ec;
  if (!fs::exists(path, ec)) return false;
  const uint64_t size = fs::file_size(path, ec);
  if (ec) return fail(path + ": cannot read: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(path + ": cannot open");
  auto header = read_checkpoint_header(in, size, path);
  if (!header) return std::unexpected(header.error());
  if (identity(header->config) != identity(cfg.source))
    return fail(path +
                ": written for another config (net, data, seed, optimizer type, batch size or "
                "epochs differ)");
  if (changes) *changes = solver_changes(header->config, cfg.source);
  if (header->param_counts.size() != net.params().size())
    return fail(path + ": parameter count differs from the net");
  for (size_t i = 0; i < header->param_counts.size(); ++i)
    if (header->param_counts[i] != net.params()[i].value.desc().count())
      return fail(path + ": " + net.params()[i].name + " has another shape");
  std::vector<float> host;
  for (Param& p : net.params()) {
    for (Tensor* t : {&p.value, &p.state1, &p.state2}) {
      if (t->empty()) continue;
      host.resize(size_t(t->desc().count()));
      in.read(reinterpret_cast<char*>(host.data()), std::streamsize(host.size() * sizeof(float)));
      if (!in) return fail(path + ": truncated");
      net.backend().upload(*t, host.data());
    }
  }
  char end[8];
  in.read(end, 8);
  if (!in || std::memcmp(end, kEnd, 8) != 0) return fail(path + ": truncated");
  pos = header->position;
  return true;
}

}  // namespace hpo::nn
