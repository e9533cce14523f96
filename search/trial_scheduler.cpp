// The "scheduler" object of a study file, and the TrialScheduler that routes
// each trial to its ASHA (one, or one per Hyperband bracket) or to its PBT population.
#include "search/trial_scheduler.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "search/internal.h"
#include "search/pbt.h"

namespace hpo::search {

using nlohmann::json;

namespace {

constexpr std::int64_t kMaxResource = 1000000;

std::string describe(const json& v) {
  std::string s = v.dump();
  return s.size() > 40 ? s.substr(0, 37) + "..." : s;
}

// Reads the keys of one "scheduler" object; errors read "WHERE.KEY: message".
struct Reader {
  const json& object;
  std::string where;

  std::unexpected<Error> error(const std::string& key, const std::string& message) const {
    return fail(detail::located("", key.empty() ? where : where + "." + key, message));
  }

  Result<std::int64_t> integer(const std::string& key, std::optional<std::int64_t> fallback,
                               std::int64_t low, std::int64_t high,
                               const char* missing = "") const {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) {
      if (fallback) return *fallback;
      return error(key, std::string("missing (") + missing + ")");
    }
    const bool integral =
        it->is_number_integer() || (it->is_number_float() && std::isfinite(it->get<double>()) &&
                                    std::trunc(it->get<double>()) == it->get<double>());
    const double v = it->is_number() ? it->get<double>() : 0;
    if (!integral || v < static_cast<double>(low) || v > static_cast<double>(high)) {
      return error(key, "must be an integer in [" + std::to_string(low) + ", " +
                            std::to_string(high) + "] (got " + describe(*it) + ")");
    }
    return static_cast<std::int64_t>(v);
  }

  // A finite number in (low, high] or, with `closed`, [low, high].
  Result<double> number(const std::string& key, double fallback, double low, bool closed,
                        double high) const {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return fallback;
    const double v = it->is_number() ? it->get<double>() : std::nan("");
    if (!std::isfinite(v) || v > high || v < low || (!closed && v == low)) {
      return error(key, std::string("must be a number in ") + (closed ? "[" : "(") +
                            detail::format_number(low) + ", " + detail::format_number(high) +
                            "] (got " + describe(*it) + ")");
    }
    return v;
  }
};

}  // namespace

Result<json> normalize_scheduler(const json& scheduler, std::string_view where) {
  Reader r{scheduler, std::string(where)};
  if (!scheduler.is_object()) return r.error("", "must be an object, got " + describe(scheduler));
  auto type_it = scheduler.find("type");
  if (type_it == scheduler.end() || type_it->is_null()) {
    return r.error("type", "missing (a string is required: none, asha, hyperband or pbt)");
  }
  if (!type_it->is_string()) {
    return r.error("type", "must be a string (got " + describe(*type_it) + ")");
  }
  const std::string type = type_it->get<std::string>();
  if (type != "none" && type != "asha" && type != "hyperband" && type != "pbt") {
    return r.error("type", "unknown scheduler '" + type + "' (known: none, asha, hyperband, pbt)");
  }
  const std::vector<std::string> allowed =
      type == "none"  ? std::vector<std::string>{"type"}
      : type == "pbt" ? std::vector<std::string>{"type",
                                                 "resource",
                                                 "max_resource",
                                                 "perturbation_interval",
                                                 "population",
                                                 "quantile",
                                                 "resample_probability",
                                                 "mutations"}
                      : std::vector<std::string>{"type", "resource", "min_resource", "max_resource",
                                                 "reduction_factor"};
  for (const auto& [key, value] : scheduler.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    std::string list;
    for (const auto& a : allowed) (list += list.empty() ? "" : ", ") += a;
    return r.error(key, "unknown key for the " + type + " scheduler (allowed: " + list + ")");
  }
  json out = {{"type", type}};
  if (type == "none") return out;

  if (auto it = scheduler.find("resource"); it != scheduler.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>() != "epoch") {
      return r.error("resource", "must be \"epoch\" (the step number of a trial's reports; got " +
                                     describe(*it) + ")");
    }
  }
  out["resource"] = "epoch";
  if (type == "pbt") {
    auto max = r.integer("max_resource", std::nullopt, 2, kMaxResource,
                         "the epochs a trial runs to: an integer >= 2");
    if (!max) return std::unexpected(max.error());
    auto interval = r.integer("perturbation_interval", std::nullopt, 1, *max - 1,
                              "the epochs between exploits: an integer below max_resource");
    if (!interval) return std::unexpected(interval.error());
    auto population = r.integer("population", 0, 0, 100000);
    if (!population) return std::unexpected(population.error());
    auto quantile = r.number("quantile", 0.25, 0.0, false, 0.5);
    if (!quantile) return std::unexpected(quantile.error());
    auto resample = r.number("resample_probability", 0.25, 0.0, true, 1.0);
    if (!resample) return std::unexpected(resample.error());
    out["max_resource"] = *max;
    out["perturbation_interval"] = *interval;
    out["population"] = *population;
    out["quantile"] = *quantile;
    out["resample_probability"] = *resample;
    if (auto it = scheduler.find("mutations"); it != scheduler.end() && !it->is_null()) {
      const std::string what =
          "must be a list of parameter names, as `hpo trials` shows them (got " + describe(*it) +
          ")";
      if (!it->is_array() || it->empty() || it->size() > 10000) return r.error("mutations", what);
      for (std::size_t i = 0; i < it->size(); ++i) {
        const json& name = (*it)[i];
        if (!name.is_string() || name.get<std::string>().empty()) {
          return r.error("mutations[" + std::to_string(i) + "]",
                         "must be a parameter name (got " + describe(name) + ")");
        }
      }
      out["mutations"] = *it;
    }
    return out;
  }
  auto min = r.integer("min_resource", 1, 1, kMaxResource);
  if (!min) return std::unexpected(min.error());
  auto max = r.integer("max_resource", std::nullopt, 1, kMaxResource,
                       "the epochs a trial runs to: an integer >= 1");
  if (!max) return std::unexpected(max.error());
  if (*max < *min) {
    return r.error("max_resource", "must be >= min_resource (got " + std::to_string(*max) + " < " +
                                       std::to_string(*min) + ")");
  }
  auto eta = r.integer("reduction_factor", 3, 2, 1000);
  if (!eta) return std::unexpected(eta.error());
  out["min_resource"] = *min;
  out["max_resource"] = *max;
  out["reduction_factor"] = *eta;
  return out;
}

Result<SchedulerSpec> parse_scheduler(const json& scheduler, std::string_view where) {
  auto n = normalize_scheduler(scheduler, where);
  if (!n) return std::unexpected(n.error());
  SchedulerSpec spec;
  const std::string type = (*n)["type"];
  if (type == "none") return spec;
  if (type == "pbt") {
    spec.type = SchedulerType::kPbt;
    spec.max_resource = (*n)["max_resource"];
    spec.perturbation_interval = (*n)["perturbation_interval"];
    spec.population = (*n)["population"];
    spec.quantile = (*n)["quantile"];
    spec.resample_probability = (*n)["resample_probability"];
    if (n->contains("mutations")) spec.mutations = (*n)["mutations"].get<std::vector<std::string>>();
    return spec;
  }
  spec.type = type == "asha" ? SchedulerType::kAsha : SchedulerType::kHyperband;
  spec.min_resource = (*n)["min_resource"];
  spec.max_resource = (*n)["max_resource"];
  spec.reduction_factor = (*n)["reduction_factor"];
  return spec;
}

std::vector<std::int64_t> rung_resources(std::int64_t min_resource, std::int64_t max_resource,
                                         std::int64_t reduction_factor) {
  std::vector<std::int64_t> out;
  const std::int64_t eta = std::max<std::int64_t>(reduction_factor, 2);
  for (std::int64_t r = std::max<std::int64_t>(min_resource, 1); r < max_resource; r *= eta) {
    out.push_back(r);
  }
  return out;
}

TrialScheduler::TrialScheduler(const SchedulerSpec& spec, Direction direction) : spec_(spec) {
  if (spec.type == SchedulerType::kAsha) {
    ladders_.emplace_back(
        rung_resources(spec.min_resource, spec.max_resource, spec.reduction_factor),
        spec.max_resource, spec.reduction_factor, direction);
  } else if (spec.type == SchedulerType::kHyperband) {
    brackets_ = hyperband_brackets(spec);
    for (const auto& b : brackets_) {
      std::vector<std::int64_t> rungs;  // the bracket's rungs but the last (max_resource)
      for (std::size_t i = 0; i + 1 < b.rungs.size(); ++i) rungs.push_back(b.rungs[i].resource);
      ladders_.emplace_back(std::move(rungs), spec.max_resource, spec.reduction_factor, direction);
    }
    bracket_cycle_ = hyperband_cycle(brackets_);
  } else if (spec.type == SchedulerType::kPbt) {
    pbt_.pbt = std::make_unique<Pbt>(spec, direction);
  }
}

TrialScheduler TrialScheduler::rebuild(const SchedulerSpec& spec, Direction direction,
                                       const History& history,
                                       const std::map<std::int64_t, Lineage>& lineage) {
  std::vector<Observation> observations;
  std::map<std::int64_t, TrialStatus> status;
  for (const auto& t : history) {
    for (const auto& im : t.intermediates) observations.push_back({t.number, im.step, im.value});
    switch (t.state) {
      case TrialState::kQueued:
      case TrialState::kRunning:
      case TrialState::kInterrupted:
        status[t.number] = TrialStatus::kRunning;
        break;
      case TrialState::kPaused:
        status[t.number] = TrialStatus::kPaused;
        break;
      default:
        status[t.number] = TrialStatus::kEnded;
    }
  }
  return rebuild(spec, direction, observations, status, lineage);
}

TrialScheduler TrialScheduler::rebuild(const SchedulerSpec& spec, Direction direction,
                                       const std::vector<Observation>& observations,
                                       const std::map<std::int64_t, TrialStatus>& status,
                                       const std::map<std::int64_t, Lineage>& lineage) {
  TrialScheduler out(spec, direction);
  if (out.pbt_.pbt) {
    *out.pbt_.pbt = Pbt::rebuild(spec, direction, observations, status, lineage);
    return out;
  }
  // Each trial's reports by resource (stable: equal resources keep the store's order), so a
  // rung's result is the trial's first report at or beyond it, as it was live.
  std::vector<Observation> sorted = observations;
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.trial != b.trial ? a.trial < b.trial : a.resource < b.resource;
  });
  for (const auto& o : sorted) out.report(o.trial, o.resource, o.value);
  for (const auto& o : sorted) {
    auto it = status.find(o.trial);
    out.set_status(o.trial, it == status.end() ? TrialStatus::kEnded : it->second);
  }
  for (const auto& [trial, s] : status) out.set_status(trial, s);
  return out;
}

int TrialScheduler::bracket_of(std::int64_t trial) const {
  if (bracket_cycle_.empty()) return 0;
  const auto n = static_cast<std::int64_t>(bracket_cycle_.size());
  return bracket_cycle_[static_cast<std::size_t>(((trial % n) + n) % n)];
}

Decision TrialScheduler::report(std::int64_t trial, std::int64_t resource, double value) {
  if (pbt_.pbt) return pbt_.pbt->report(trial, resource, value);
  if (ladders_.empty()) return {};
  return ladders_[static_cast<std::size_t>(bracket_of(trial))].report(trial, resource, value);
}

std::vector<std::int64_t> TrialScheduler::promotable() const {
  if (pbt_.pbt) return pbt_.pbt->promotable();
  struct Ready {
    std::int64_t resource;
    std::size_t bracket, order;
    std::int64_t trial;
  };
  std::vector<Ready> all;
  for (std::size_t b = 0; b < ladders_.size(); ++b) {
    const auto list = ladders_[b].promotable();
    for (std::size_t i = 0; i < list.size(); ++i) {
      all.push_back({rung_resource(list[i]), b, i, list[i]});
    }
  }
  std::sort(all.begin(), all.end(), [](const Ready& a, const Ready& c) {
    if (a.resource != c.resource) return a.resource > c.resource;
    return a.bracket != c.bracket ? a.bracket < c.bracket : a.order < c.order;
  });
  std::vector<std::int64_t> out;
  for (const auto& r : all) out.push_back(r.trial);
  return out;
}

std::vector<Exploit> TrialScheduler::exploits() const {
  return pbt_.pbt ? pbt_.pbt->exploits() : std::vector<Exploit>{};
}

bool TrialScheduler::adopt(std::int64_t child, std::int64_t parent, std::int64_t step) {
  return pbt_.pbt && pbt_.pbt->adopt(child, parent, step);
}

void TrialScheduler::set_status(std::int64_t trial, TrialStatus status) {
  if (pbt_.pbt) return pbt_.pbt->set_status(trial, status);
  if (!ladders_.empty())
    ladders_[static_cast<std::size_t>(bracket_of(trial))].set_status(trial, status);
}

TrialStatus TrialScheduler::status(std::int64_t trial) const {
  if (pbt_.pbt) return pbt_.pbt->status(trial);
  if (ladders_.empty()) return TrialStatus::kEnded;
  return ladders_[static_cast<std::size_t>(bracket_of(trial))].status(trial);
}

int TrialScheduler::rung_of(std::int64_t trial) const {
  if (pbt_.pbt) {
    return static_cast<int>(pbt_.pbt->generation_step(trial) / spec_.perturbation_interval) - 1;
  }
  if (ladders_.empty()) return -1;
  return ladders_[static_cast<std::size_t>(bracket_of(trial))].rung_of(trial);
}

std::int64_t TrialScheduler::rung_resource(std::int64_t trial) const {
  if (pbt_.pbt) return pbt_.pbt->generation_step(trial);
  const int k = rung_of(trial);
  if (k < 0) return 0;
  return ladders_[static_cast<std::size_t>(bracket_of(trial))].rungs()[static_cast<std::size_t>(k)];
}

}  // namespace hpo::search
