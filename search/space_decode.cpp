// Space::decode: the decisions that would have produced a config, under the
// same keys the walk in space_sample.cpp gives them. Tolerant by contract:
// a value that is missing or does not fit the space is left out.
#include <optional>

#include "search/space.h"
#include "search/space_node.h"

namespace hpo::search {

using nlohmann::json;

namespace {

using Kind = SpaceNode::Kind;

bool fits(const SpaceNode& n, const json& v);

// Whether `obj` could come from group `g`: every key is one of its parameters, every fixed value
// (outside a condition) is there and equal, and every value present fits its parameter; fixed
// values nested in groups and options count too, so options that differ only below the top
// level (e.g. {"optimizer": {"type": "sgd", ...}, "lr": ...} vs the same with "adam") are told
// apart.
bool fits_group(const SpaceNode& g, const json& obj) {
  if (!obj.is_object()) return false;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool known = false;
    for (const auto& ch : g.children) known = known || ch->name == it.key();
    if (!known) return false;
  }
  for (const auto& ch : g.children) {
    auto it = obj.find(ch->name);
    if (it == obj.end()) {
      if (ch->kind == Kind::kConst && ch->when.empty()) return false;
      continue;
    }
    if (!fits(*ch, *it)) return false;
  }
  return true;
}

bool fits(const SpaceNode& n, const json& v) {
  switch (n.kind) {
    case Kind::kGroup:
      return fits_group(n, v);
    case Kind::kConst:
      return v == n.value;
    case Kind::kFloat:
    case Kind::kInt:
      return v.is_number();
    case Kind::kValues:
      for (const auto& x : n.values) {
        if (x == v) return true;
      }
      return false;
    case Kind::kOptions:
      for (const auto& o : n.children) {
        if (fits_group(*o, v)) return true;
      }
      return false;
    case Kind::kBlocks:
      if (!v.is_array()) return false;
      for (const auto& b : v) {
        if (!fits_group(*n.children[0], b)) return false;
      }
      return true;
  }
  return false;
}

// Which option of a nested choice produced `v`: the first that it fits (above).
std::optional<std::size_t> option_of(const SpaceNode& n, const json& v) {
  for (std::size_t i = 0; i < n.children.size(); ++i) {
    if (fits_group(*n.children[i], v)) return i;
  }
  return std::nullopt;
}

void decode_group(const SpaceNode& g, const json& obj, const std::string& prefix, Decisions& out);

void decode_value(const SpaceNode& n, const json& v, const std::string& key, Decisions& out) {
  switch (n.kind) {
    case Kind::kGroup:
      if (v.is_object()) decode_group(n, v, key + ".", out);
      return;
    case Kind::kConst:
      return;
    case Kind::kFloat:
    case Kind::kInt:
      if (v.is_number()) out[key] = v.get<double>();
      return;
    case Kind::kValues:
      for (std::size_t i = 0; i < n.values.size(); ++i) {
        if (n.values[i] == v) {
          out[key] = static_cast<double>(i);
          return;
        }
      }
      return;
    case Kind::kOptions:
      if (auto i = option_of(n, v)) {
        out[key] = static_cast<double>(*i);
        decode_group(*n.children[*i], v, key + ".options[" + std::to_string(*i) + "].", out);
      }
      return;
    case Kind::kBlocks:
      if (v.is_array()) {
        out[key] = static_cast<double>(v.size());
        for (std::size_t j = 0; j < v.size(); ++j) {
          if (v[j].is_object()) {
            decode_group(*n.children[0], v[j], key + "[" + std::to_string(j) + "].", out);
          }
        }
      }
      return;
  }
}

void decode_group(const SpaceNode& g, const json& obj, const std::string& prefix, Decisions& out) {
  for (const auto& c : g.children) {
    auto it = obj.find(c->name);
    if (it != obj.end()) decode_value(*c, *it, prefix + c->name, out);
  }
}

}  // namespace

Decisions Space::decode(const nlohmann::json& config) const {
  Decisions out;
  if (root_ && config.is_object()) decode_group(*root_, config, "", out);
  return out;
}

}  // namespace hpo::search
