#include "search/study.h"

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "base/json.h"
#include "search/internal.h"
#include "search/pbt.h"

namespace hpo::search {

using nlohmann::json;

namespace {

std::string describe(const json& v) {
  std::string s = v.dump();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

// "a number", "an array"...: what a value is, without showing it.
std::string kind_of(const json& v) {
  if (v.is_number()) return "a number";
  if (v.is_boolean()) return "a boolean";
  if (v.is_null()) return "null";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "a string";
}

// Checks the keys of one object and reads typed fields, with messages that
// name "FILE: path.key".
class Fields {
 public:
  Fields(const json& object, std::string_view file, std::string where)
      : object_(object), file_(file), where_(std::move(where)) {}

  std::unexpected<Error> error(const std::string& key, const std::string& message) const {
    std::string at = key.empty() ? where_ : where_.empty() ? key : where_ + "." + key;
    return fail(detail::located(file_, at, message));
  }

  Status only(std::initializer_list<std::string_view> allowed, std::string_view what) const {
    if (!object_.is_object()) return error("", "must be an object, got " + describe(object_));
    for (const auto& [k, v] : object_.items()) {
      bool ok = false;
      for (auto a : allowed) ok = ok || a == k;
      if (!ok) {
        std::string list;
        for (auto a : allowed) (list += list.empty() ? "" : ", ") += a;
        return error(k, "unknown key for " + std::string(what) + " (allowed: " + list + ")");
      }
    }
    return {};
  }

  const json* find(const std::string& key) const {
    auto it = object_.find(key);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }

  Result<std::string> string(const std::string& key, std::optional<std::string> fallback,
                             bool non_empty = true) const {
    const json* v = find(key);
    if (!v) {
      if (fallback) return *fallback;
      return error(key, "missing (a string is required)");
    }
    if (!v->is_string()) return error(key, "must be a string (got " + describe(*v) + ")");
    if (non_empty && v->get<std::string>().empty()) return error(key, "must not be empty");
    return v->get<std::string>();
  }

  Result<double> number(const std::string& key, double fallback, double min) const {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_number() || !std::isfinite(v->get<double>())) {
      return error(key, "must be a number (got " + describe(*v) + ")");
    }
    double d = v->get<double>();
    if (d < min) {
      return error(key, "must be >= " + detail::format_number(min) + " (got " +
                            detail::format_number(d) + ")");
    }
    return d;
  }

  Result<std::int64_t> integer(const std::string& key, std::int64_t fallback, std::int64_t min,
                               std::int64_t max = INT64_MAX) const {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_number_integer() &&
        !(v->is_number_float() && std::trunc(v->get<double>()) == v->get<double>())) {
      return error(key, "must be an integer (got " + describe(*v) + ")");
    }
    double d = v->get<double>();
    if (d < static_cast<double>(min) || d > static_cast<double>(max)) {
      std::string range = max == INT64_MAX
                              ? ">= " + std::to_string(min)
                              : "in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
      return error(key, "must be an integer " + range + " (got " + describe(*v) + ")");
    }
    return v->is_number_unsigned() ? static_cast<std::int64_t>(v->get<std::uint64_t>())
                                   : v->get<std::int64_t>();
  }

  Result<bool> boolean(const std::string& key, bool fallback) const {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_boolean()) return error(key, "must be true or false (got " + describe(*v) + ")");
    return v->get<bool>();
  }

 private:
  const json& object_;
  std::string_view file_;
  std::string where_;
};

#define HPO_TRY(var, expr)                               \
  auto var##_r = (expr);                                 \
  if (!var##_r) return std::unexpected(var##_r.error()); \
  auto var = std::move(*var##_r)

Result<json> normalize_trial(const json& trial, std::string_view file) {
  Fields f(trial, file, "trial");
  if (!trial.is_object()) return f.error("", "must be an object, got " + describe(trial));
  HPO_TRY(kind, f.string("kind", std::nullopt));
  json out = json::object();
  out["kind"] = kind;
  if (kind == "builtin") {
    if (auto s = f.only({"kind", "function", "seconds", "steps"}, "a builtin trial"); !s) {
      return std::unexpected(s.error());
    }
    HPO_TRY(function, f.string("function", std::nullopt));
    if (function != "branin" && function != "hartmann6" && function != "sleep" &&
        function != "curves") {
      return f.error("function", "unknown builtin '" + function +
                                     "' (known: branin, hartmann6, sleep, curves)");
    }
    // curves: seconds per epoch and epochs (trainer/agent/curves.h has the same defaults).
    const bool curves = function == "curves";
    HPO_TRY(seconds, f.number("seconds", curves ? 0.1 : 1.0, 0.0));
    HPO_TRY(steps, f.integer("steps", curves ? 27 : 0, curves ? 1 : 0));
    out["function"] = function;
    out["seconds"] = seconds;
    out["steps"] = steps;
  } else if (kind == "native") {
    if (auto s = f.only({"kind", "base", "device", "threads", "timeout_seconds"}, "a native trial");
        !s) {
      return std::unexpected(s.error());
    }
    const json* base = f.find("base");
    if (base && !base->is_object())
      return f.error("base", "must be an object (trainer config defaults)");
    HPO_TRY(device, f.string("device", "auto"));
    HPO_TRY(threads, f.integer("threads", 1, 1));
    HPO_TRY(timeout, f.number("timeout_seconds", 0.0, 0.0));
    out["base"] = base ? *base : json::object();
    out["device"] = device;
    out["threads"] = threads;
    out["timeout_seconds"] = timeout;
  } else if (kind == "command") {
    if (auto s = f.only({"kind", "command", "workdir", "threads", "timeout_seconds", "env"},
                        "a command trial");
        !s) {
      return std::unexpected(s.error());
    }
    HPO_TRY(command, f.string("command", std::nullopt));
    // Optional: without it the program picks its own thread counts.
    if (f.find("threads")) {
      HPO_TRY(threads, f.integer("threads", 1, 1));
      out["threads"] = threads;
    }
    HPO_TRY(workdir, f.string("workdir", "."));
    HPO_TRY(timeout, f.number("timeout_seconds", 0.0, 0.0));
    const json* env = f.find("env");
    if (env) {
      if (!env->is_object()) return f.error("env", "must be an object of strings");
      for (const auto& [k, v] : env->items()) {
        // The value is not quoted: it may be a secret.
        if (!v.is_string()) return f.error("env." + k, "must be a string (got " + kind_of(v) + ")");
      }
    }
    out["command"] = command;
    out["workdir"] = workdir;
    out["timeout_seconds"] = timeout;
    out["env"] = env ? *env : json::object();
  } else {
    return f.error("kind", "unknown trial kind '" + kind + "' (known: builtin, native, command)");
  }
  return out;
}

}  // namespace

Result<json> normalize_sampler(const json& sampler, std::string_view where) {
  Fields f(sampler, "", std::string(where));
  if (!sampler.is_object()) return f.error("", "must be an object, got " + describe(sampler));
  HPO_TRY(type, f.string("type", std::nullopt));
  json out = json::object();
  out["type"] = type;
  Status keys;
  if (type == "random") {
    keys = f.only({"type"}, "the random sampler");
  } else if (type == "grid") {
    keys = f.only({"type", "points", "parameter_points"}, "the grid sampler");
    if (!keys) return std::unexpected(keys.error());
    HPO_TRY(points, f.integer("points", 5, 1, 1000000));
    out["points"] = points;
    json per = json::object();
    if (const json* p = f.find("parameter_points")) {
      if (!p->is_object())
        return f.error("parameter_points", "must be an object {\"parameter key\": points}");
      for (const auto& [k, v] : p->items()) {
        if (!v.is_number_integer() || v.get<std::int64_t>() < 1) {
          return f.error("parameter_points." + k,
                         "must be an integer >= 1 (got " + describe(v) + ")");
        }
        per[k] = v;
      }
    }
    out["parameter_points"] = per;
  } else if (type == "sobol" || type == "halton") {
    keys = f.only({"type", "scramble"}, "the quasi-random sampler");
    if (!keys) return std::unexpected(keys.error());
    HPO_TRY(scramble, f.boolean("scramble", true));
    out["scramble"] = scramble;
  } else if (type == "tpe") {
    keys = f.only({"type", "startup_trials", "n_candidates", "gamma", "max_good", "prior_weight",
                   "constant_liar", "max_observations", "multivariate", "bandwidth", "narrowing"},
                  "the tpe sampler");
    if (!keys) return std::unexpected(keys.error());
    HPO_TRY(startup, f.integer("startup_trials", 5, 0));
    HPO_TRY(candidates, f.integer("n_candidates", 24, 1, 100000));
    HPO_TRY(gamma, f.number("gamma", 0.1, 0.0));
    if (gamma > 1.0 || gamma <= 0.0) return f.error("gamma", "must be in (0, 1]");
    HPO_TRY(max_good, f.integer("max_good", 25, 1));
    HPO_TRY(prior, f.number("prior_weight", 1.0, 0.0));
    HPO_TRY(liar, f.boolean("constant_liar", true));
    HPO_TRY(max_obs, f.integer("max_observations", 200, 1));
    out["startup_trials"] = startup;
    out["n_candidates"] = candidates;
    out["gamma"] = gamma;
    out["max_good"] = max_good;
    out["prior_weight"] = prior;
    out["constant_liar"] = liar;
    out["max_observations"] = max_obs;
    HPO_TRY(multivariate, f.boolean("multivariate", true));
    out["multivariate"] = multivariate;
    HPO_TRY(bandwidth, f.number("bandwidth", 0.02, 0.0));
    if (bandwidth <= 0.0 || bandwidth > 1.0) return f.error("bandwidth", "must be in (0, 1]");
    HPO_TRY(narrowing, f.number("narrowing", 0.5, 0.0));
    out["bandwidth"] = bandwidth;
    out["narrowing"] = narrowing;
  } else if (type == "evolution") {
    keys = f.only({"type", "population", "sample_size"}, "the evolution sampler");
    if (!keys) return std::unexpected(keys.error());
    HPO_TRY(population, f.integer("population", 20, 2));
    HPO_TRY(sample_size, f.integer("sample_size", 5, 1));
    if (sample_size > population) {
      return f.error("sample_size", "must be <= population (got " + std::to_string(sample_size) +
                                        " > " + std::to_string(population) + ")");
    }
    out["population"] = population;
    out["sample_size"] = sample_size;
  } else if (type == "cmaes") {
    keys = f.only({"type", "popsize", "sigma0", "startup_trials"}, "the cmaes sampler");
    if (!keys) return std::unexpected(keys.error());
    HPO_TRY(popsize, f.integer("popsize", 0, 0, 1000000));
    if (popsize == 1) return f.error("popsize", "must be 0 (automatic) or >= 2 (got 1)");
    HPO_TRY(sigma0, f.number("sigma0", 1.0 / 6.0, 0.0));
    if (sigma0 <= 0.0 || sigma0 > 1.0) return f.error("sigma0", "must be in (0, 1]");
    HPO_TRY(startup, f.integer("startup_trials", 1, 0));
    out.update(json{{"popsize", popsize}, {"sigma0", sigma0}, {"startup_trials", startup}});
  } else {
    return f.error("type", "unknown sampler '" + type +
                               "' (known: random, grid, sobol, halton, tpe, evolution, cmaes)");
  }
  if (!keys) return std::unexpected(keys.error());
  return out;
}

Result<json> normalize_pruner(const json& pruner, std::string_view where) {
  Fields f(pruner, "", std::string(where));
  if (!pruner.is_object()) return f.error("", "must be an object, got " + describe(pruner));
  HPO_TRY(type, f.string("type", std::nullopt));
  json out = json::object();
  out["type"] = type;
  if (type == "none") {
    if (auto s = f.only({"type"}, "the none pruner"); !s) return std::unexpected(s.error());
  } else if (type == "median") {
    if (auto s = f.only({"type", "warmup_steps", "min_trials"}, "the median pruner"); !s) {
      return std::unexpected(s.error());
    }
    HPO_TRY(warmup, f.integer("warmup_steps", 0, 0));
    HPO_TRY(min_trials, f.integer("min_trials", 5, 1));
    out["warmup_steps"] = warmup;
    out["min_trials"] = min_trials;
  } else {
    return f.error("type", "unknown pruner '" + type + "' (known: median, none)");
  }
  return out;
}

json without_secrets(const json& study) {
  json shown = study;
  if (!shown.is_object()) return shown;
  auto trial = shown.find("trial");
  if (trial == shown.end() || !trial->is_object()) return shown;
  auto env = trial->find("env");
  if (env == trial->end()) return shown;
  if (!env->is_object()) {
    *env = kHiddenValue;
    return shown;
  }
  for (auto& value : *env) value = kHiddenValue;  // the names stay
  return shown;
}

Result<StudySpec> parse_study(const json& study, std::string_view file) {
  Fields top(study, file, "");
  if (!study.is_object()) return fail(detail::located(file, "", "a study must be a JSON object"));
  if (auto s = top.only({"name", "description", "objective", "sampler", "pruner", "scheduler",
                         "seed", "budget", "trial", "space"},
                        "a study");
      !s) {
    return std::unexpected(s.error());
  }
  StudySpec spec;
  spec.raw = study;
  HPO_TRY(name, top.string("name", std::nullopt));
  spec.name = name;
  if (const json* d = top.find("description"); d && !d->is_string()) {
    return top.error("description", "must be a string");
  }

  const json* objective = top.find("objective");
  if (!objective) return top.error("objective", "missing ({\"metric\": ..., \"direction\": ...})");
  Fields obj(*objective, file, "objective");
  if (auto s = obj.only({"metric", "direction"}, "the objective"); !s)
    return std::unexpected(s.error());
  HPO_TRY(metric, obj.string("metric", std::nullopt));
  HPO_TRY(direction, obj.string("direction", std::nullopt));
  auto dir = direction_from_string(direction);
  if (!dir)
    return obj.error("direction",
                     "must be \"minimize\" or \"maximize\" (got \"" + direction + "\")");
  spec.objective_metric = metric;
  spec.direction = *dir;

  auto where = [&](const char* key) { return detail::located(file, "", key); };
  const json* sampler = top.find("sampler");
  HPO_TRY(s, normalize_sampler(sampler ? *sampler : json{{"type", "tpe"}}, where("sampler")));
  spec.sampler = s;
  const json* pruner = top.find("pruner");
  HPO_TRY(p, normalize_pruner(pruner ? *pruner : json{{"type", "none"}}, where("pruner")));
  spec.pruner = p;
  const json* scheduler = top.find("scheduler");
  HPO_TRY(sch, normalize_scheduler(scheduler ? *scheduler : json{{"type", "none"}},
                                   where("scheduler")));
  HPO_TRY(schedule, parse_scheduler(sch, where("scheduler")));
  spec.scheduler = sch;
  spec.schedule = schedule;
  if (schedule.type != SchedulerType::kNone && p["type"] != "none") {
    return top.error("pruner", "cannot be combined with the " + sch["type"].get<std::string>() +
                                   " scheduler, which decides itself which trials stop (remove "
                                   "one of the two)");
  }

  if (const json* seed = top.find("seed")) {
    if (!seed->is_number_integer() || (seed->is_number_integer() && !seed->is_number_unsigned() &&
                                       seed->get<std::int64_t>() < 0)) {
      return top.error("seed", "must be an integer >= 0 (got " + describe(*seed) + ")");
    }
    spec.seed = seed->get<std::uint64_t>();
  }

  const json empty = json::object();
  const json* budget = top.find("budget");
  Fields b(budget ? *budget : empty, file, "budget");
  if (auto st = b.only({"max_trials", "max_parallel", "max_seconds", "target", "max_retries",
                        "max_interruptions"},
                       "the budget");
      !st) {
    return std::unexpected(st.error());
  }
  HPO_TRY(max_trials, b.integer("max_trials", 20, 1));
  HPO_TRY(max_parallel, b.integer("max_parallel", 1, 1, 1 << 20));
  HPO_TRY(max_seconds, b.number("max_seconds", 0.0, 0.0));
  HPO_TRY(max_retries, b.integer("max_retries", 0, 0, 1000));
  HPO_TRY(max_interruptions, b.integer("max_interruptions", 5, 0, 1000));
  spec.max_trials = max_trials;
  spec.max_parallel = static_cast<int>(max_parallel);
  spec.max_seconds = max_seconds;
  spec.max_retries = static_cast<int>(max_retries);
  spec.max_interruptions = static_cast<int>(max_interruptions);
  if (spec.schedule.type == SchedulerType::kPbt) {
    // PBT's population: the members run at once (trial_scheduler.h); its parents are drawn
    // with the study's seed.
    if (spec.schedule.population == 0) {
      spec.schedule.population = std::min<std::int64_t>(spec.max_parallel, spec.max_trials);
    }
    spec.schedule.seed = spec.seed;
  }
  if (const json* t = b.find("target")) {
    if (!t->is_number())
      return b.error("target", "must be a number or null (got " + describe(*t) + ")");
    spec.target = t->get<double>();
  }

  const json* trial = top.find("trial");
  if (!trial) return top.error("trial", "missing (what a trial runs: {\"kind\": ...})");
  HPO_TRY(t, normalize_trial(*trial, file));
  spec.trial = t;

  const json* space = top.find("space");
  if (!space) return top.error("space", "missing (the search space)");
  HPO_TRY(sp, Space::parse(*space, file));
  spec.space = sp;
  for (std::size_t i = 0; i < spec.schedule.mutations.size(); ++i) {
    const std::string& name = spec.schedule.mutations[i];
    if (names_parameter(sp, name)) continue;
    std::string known;
    for (const auto& p : sp.parameter_paths()) (known += known.empty() ? "" : ", ") += p;
    return fail(detail::located(file, "scheduler.mutations[" + std::to_string(i) + "]",
                                "'" + name + "' names no parameter of the space (its parameters: " +
                                    known + ")"));
  }
  return spec;
}

Result<json> read_json_file(const std::string& path) {
  JsonLimits limits;
  limits.allow_comments = true;
  return hpo::read_json_file(path, limits);
}

Result<StudySpec> load_study_file(const std::string& path) {
  auto j = read_json_file(path);
  if (!j) return std::unexpected(j.error());
  return parse_study(*j, path);
}

}  // namespace hpo::search
