// PBT's explore step: a perturbed copy of a parent's config (pbt.h has the contract).
#include <map>
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
  ExploreDecider(Decisions parent, double resample, std::mt19937_64& rng)
      : parent_(std::move(parent)), resample_(resample), rng_(rng) {}

  double decide(const Dimension& d) override {
    auto it = parent_.find(d.key);
    // Draw the resample coin first and always, so each decision uses the same draws.
    const bool resample = detail::uniform01(rng_) < resample_;
    if (it == parent_.end() || resample) return detail::from_unit(d, detail::uniform01(rng_));
    if (d.kind == Dimension::Kind::kCategorical) return it->second;
    return it->second * (detail::uniform01(rng_) < 0.5 ? 0.8 : 1.2);
  }

 private:
  Decisions parent_;
  double resample_;
  std::mt19937_64& rng_;
};

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

Exploration explore(const Space& space, const json& parent_config, double resample_probability,
                    std::mt19937_64& rng) {
  ExploreDecider decider(space.decode(parent_config), resample_probability, rng);
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
