// Space::sample: walks the parameter tree in dependency order, asks the
// Decider at every decision point of an active parameter, and builds the
// config; also the static list of decision points (parameter_paths), which
// spells keys the same way.
#include <algorithm>
#include <cmath>

#include "search/space.h"
#include "search/space_node.h"

namespace hpo::search {

using nlohmann::json;

namespace {

using Kind = SpaceNode::Kind;

const json* lookup(const json& from, const std::vector<std::string>& segments) {
  const json* at = &from;
  for (const auto& s : segments) {
    if (!at->is_object()) return nullptr;
    auto it = at->find(s);
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  return at;
}

bool active(const SpaceNode& n, const json& root, const json* block) {
  for (const auto& c : n.when) {
    const json* v = lookup(c.relative && block ? *block : root, c.segments);
    if (!v) return false;
    bool match = false;
    for (const auto& want : c.values) match = match || *v == want;
    if (!match) return false;
  }
  return true;
}

double snap(const SpaceNode& n, double v) {
  if (std::isnan(v)) v = n.low;
  v = std::clamp(v, n.low, n.high);
  if (n.step > 0) {
    v = n.low + std::round((v - n.low) / n.step) * n.step;
    if (v > n.high) v -= n.step;
    v = std::clamp(v, n.low, n.high);
  }
  return v;
}

Dimension dimension_of(const SpaceNode& n, std::string key) {
  Dimension d;
  d.key = std::move(key);
  switch (n.kind) {
    case Kind::kFloat:
      d.kind = Dimension::Kind::kFloat;
      break;
    case Kind::kInt:
    case Kind::kBlocks:
      d.kind = Dimension::Kind::kInt;
      d.count = n.kind == Kind::kBlocks;
      break;
    default:
      d.kind = Dimension::Kind::kCategorical;
      d.choices =
          static_cast<std::int64_t>(n.kind == Kind::kValues ? n.values.size() : n.children.size());
      return d;
  }
  d.low = n.low;
  d.high = n.high;
  d.log = n.log;
  d.step = n.step;
  return d;
}

std::size_t category(double v, std::size_t count) {
  if (!(v >= 0)) return 0;  // also NaN
  auto i = static_cast<std::size_t>(std::llround(std::min(v, 1e9)));
  return std::min(i, count - 1);
}

class Walker {
 public:
  Walker(Decider& d, json& root) : decider_(d), root_(root) {}

  void group(const SpaceNode& g, json& out, const std::string& prefix, const json* block) {
    for (std::size_t i : g.order) {
      const SpaceNode& c = *g.children[i];
      if (!active(c, root_, block)) continue;
      json& slot = out[c.name];
      value(c, slot, prefix + c.name, block);
    }
  }

 private:
  void value(const SpaceNode& n, json& slot, const std::string& key, const json* block) {
    switch (n.kind) {
      case Kind::kGroup:
        slot = json::object();
        group(n, slot, key + ".", block);
        return;
      case Kind::kConst:
        slot = n.value;
        return;
      case Kind::kFloat:
        slot = snap(n, decider_.decide(dimension_of(n, key)));
        return;
      case Kind::kInt:
        slot =
            static_cast<std::int64_t>(std::llround(snap(n, decider_.decide(dimension_of(n, key)))));
        return;
      case Kind::kValues:
        slot = n.values[category(decider_.decide(dimension_of(n, key)), n.values.size())];
        return;
      case Kind::kOptions: {
        std::size_t i = category(decider_.decide(dimension_of(n, key)), n.children.size());
        slot = json::object();
        group(*n.children[i], slot, key + ".options[" + std::to_string(i) + "].", block);
        return;
      }
      case Kind::kBlocks: {
        auto count = std::llround(snap(n, decider_.decide(dimension_of(n, key))));
        slot = json::array();
        for (long long j = 0; j < count; ++j) {
          json element = json::object();
          group(*n.children[0], element, key + "[" + std::to_string(j) + "].", &element);
          slot.push_back(std::move(element));
        }
        return;
      }
    }
  }

  Decider& decider_;
  json& root_;
};

void paths(const SpaceNode& n, const std::string& key, std::vector<std::string>& out) {
  switch (n.kind) {
    case Kind::kGroup:
      for (std::size_t i : n.order) {
        const auto& c = *n.children[i];
        paths(c, key.empty() ? c.name : key + "." + c.name, out);
      }
      return;
    case Kind::kConst:
      return;
    case Kind::kFloat:
    case Kind::kInt:
    case Kind::kValues:
      out.push_back(key);
      return;
    case Kind::kOptions:
      out.push_back(key);
      for (std::size_t i = 0; i < n.children.size(); ++i) {
        paths(*n.children[i], key + ".options[" + std::to_string(i) + "]", out);
      }
      return;
    case Kind::kBlocks:
      out.push_back(key);
      paths(*n.children[0], key + "[]", out);
      return;
  }
}

}  // namespace

nlohmann::json Space::sample(Decider& decider) const {
  json config = json::object();
  if (!root_) return config;
  Walker walker(decider, config);
  walker.group(*root_, config, "", nullptr);
  return config;
}

std::vector<std::string> Space::parameter_paths() const {
  std::vector<std::string> out;
  if (root_) paths(*root_, "", out);
  return out;
}

std::size_t Space::parameter_count() const { return parameter_paths().size(); }

}  // namespace hpo::search
