// PBT's explore step: a perturbed copy of a parent's config (pbt.h has the contract).
#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "search/internal.h"
#include "search/pbt.h"

namespace hpo::search {

using nlohmann::json;

namespace {

constexpr std::uint64_t kExploreSalt = 0x9b7e0002ull;

// Answers the walk with the parent's decisions, perturbed.
class ExploreDecider : public Decider {
 public:
  ExploreDecider(Decisions parent, double resample, std::mt19937_64& rng,
                 const std::function<bool(const Dimension&)>& may_change)
      : parent_(std::move(parent)), resample_(resample), rng_(rng), may_change_(may_change) {}

  double decide(const Dimension& d) override {
    auto it = parent_.find(d.key);
    // Draw the resample coin first and always, so each decision uses the same draws.
    const bool resample = detail::uniform01(rng_) < resample_;
    if (it != parent_.end() && may_change_ && !may_change_(d)) return it->second;
    if (it == parent_.end() || resample) return detail::from_unit(d, detail::uniform01(rng_));
    if (d.kind == Dimension::Kind::kCategorical) return it->second;
    return it->second * (detail::uniform01(rng_) < 0.5 ? 0.8 : 1.2);
  }

 private:
  Decisions parent_;
  double resample_;
  std::mt19937_64& rng_;
  const std::function<bool(const Dimension&)>& may_change_;
};

// A decision key or parameter name without what `mutations` does not name: the option of a
// nested choice ("options[1]" parts) and a block's index ("conv[2]" -> "conv[]").
std::string canonical(const std::string& key) {
  std::string out;
  std::size_t start = 0;
  while (start <= key.size()) {
    const std::size_t end = std::min(key.find('.', start), key.size());
    std::string part = key.substr(start, end - start);
    start = end + 1;
    const auto bracket = part.find('[');
    if (bracket != std::string::npos && part.back() == ']') {
      if (part.compare(0, bracket, "options") == 0) continue;
      part = part.substr(0, bracket) + "[]";
    }
    if (!out.empty()) out += '.';
    out += part;
  }
  return out;
}

// Each leaf of a config under the path the decision keys use: "a.b", "list[2].c".
void leaves(const json& v, const std::string& path, std::map<std::string, json>& out) {
  if (v.is_object() && !v.empty()) {
    for (const auto& [key, child] : v.items())
      leaves(child, path.empty() ? key : path + "." + key, out);
  } else if (v.is_array() && !v.empty()) {
    for (std::size_t i = 0; i < v.size(); ++i)
      leaves(v[i], path + "[" + std::to_string(i) + "]", out);
  } else {
    out[path] = v;
  }
}

}  // namespace

std::function<bool(const Dimension&)> mutable_dimensions(const std::vector<std::string>& mutations) {
  if (mutations.empty()) {
    return [](const Dimension& d) { return d.kind == Dimension::Kind::kFloat; };
  }
  std::set<std::string> names;
  for (const auto& m : mutations) names.insert(canonical(m));
  return [names](const Dimension& d) { return names.count(canonical(d.key)) > 0; };
}

bool names_parameter(const Space& space, const std::string& name) {
  const std::string wanted = canonical(name);
  for (const auto& path : space.parameter_paths()) {
    if (canonical(path) == wanted) return true;
  }
  return false;
}

Exploration explore(const Space& space, const json& parent_config, double resample_probability,
                    std::mt19937_64& rng, const std::function<bool(const Dimension&)>& may_change) {
  ExploreDecider decider(space.decode(parent_config), resample_probability, rng, may_change);
  Exploration out{space.sample(decider), json::object()};
  std::map<std::string, json> before, after;
  leaves(parent_config, "", before);
  leaves(out.config, "", after);
  for (const auto& [path, old] : before) {
    auto it = after.find(path);
    if (it == after.end()) {
      out.changed[path] = json::array({old, nullptr});
    } else if (it->second != old) {
      out.changed[path] = json::array({old, it->second});
    }
  }
  for (const auto& [path, now] : after) {
    if (!before.count(path)) out.changed[path] = json::array({nullptr, now});
  }
  return out;
}

std::mt19937_64 explore_rng(std::uint64_t seed, std::int64_t loser) {
  return detail::make_rng(seed, loser, kExploreSalt);
}

}  // namespace hpo::search
