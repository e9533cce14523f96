// The dashboard's tables: studies, one study's summary, the leaderboard, one trial, the agents;
// and the dispatch of every API path (the charts live in charts.cpp).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "dashboard/views_internal.h"
#include "results/cli_common.h"
#include "results/frame.h"

namespace hpo::dashboard {
namespace detail {

std::optional<std::string> param(const Params& params, const std::string& name) {
  auto it = params.find(name);
  if (it == params.end()) return std::nullopt;
  return it->second;
}

Out<std::int64_t> int_param(const Params& params, const std::string& name, std::int64_t fallback,
                            std::int64_t lo, std::int64_t hi) {
  auto text = param(params, name);
  if (!text) return fallback;
  std::int64_t v = 0;
  std::size_t used = 0;
  try {
    v = std::stoll(*text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text->size() || v < lo || v > hi) {
    return std::unexpected(Stop{400, "parameter '" + name + "' must be an integer in [" +
                                         std::to_string(lo) + ", " + std::to_string(hi) +
                                         "] (got '" + *text + "')"});
  }
  return v;
}

Out<StudyView> study_param(results::Store& store, const Params& params) {
  auto name = param(params, "name");
  if (!name) return std::unexpected(Stop{400, "parameter 'name' (the study) is missing"});
  auto row = store.find_study(*name);
  if (!row) return std::unexpected(db_error(row.error()));
  if (!*row) {
    std::string known;
    if (auto all = store.list_studies()) {
      for (const auto& s : *all) known += (known.empty() ? "" : ", ") + s.name;
    }
    return std::unexpected(
        Stop{404, "no study '" + *name + "' (studies: " + (known.empty() ? "none" : known) + ")"});
  }
  StudyView out{std::move(**row), std::nullopt};
  if (auto spec = search::parse_study(out.row.spec, "study " + out.row.name)) {
    out.spec = std::move(*spec);
  }
  return out;
}

std::string state_name(search::TrialState state) { return std::string(search::to_string(state)); }

nlohmann::json opt(std::optional<double> value) {
  if (!value || !std::isfinite(*value)) return nullptr;
  return *value;
}

bool better(double a, double b, search::Direction direction) {
  return direction == search::Direction::kMinimize ? a < b : a > b;
}

std::vector<const results::TrialBrief*> completed(const std::vector<results::TrialBrief>& trials) {
  std::vector<const results::TrialBrief*> out;
  for (const auto& t : trials) {
    if (t.state == search::TrialState::kCompleted && t.value && std::isfinite(*t.value)) {
      out.push_back(&t);
    }
  }
  return out;
}

std::vector<const results::TrialBrief*> ranked(const std::vector<results::TrialBrief>& trials,
                                               search::Direction direction) {
  std::vector<const results::TrialBrief*> out = completed(trials);
  std::stable_sort(out.begin(), out.end(), [&](const auto* a, const auto* b) {
    return better(*a->value, *b->value, direction);
  });
  return out;
}

std::vector<const results::TrialBrief*> front_and_sample(
    const std::vector<const results::TrialBrief*>& ranked, std::size_t best, std::size_t cap) {
  if (ranked.size() <= cap) return ranked;
  std::vector<const results::TrialBrief*> out(ranked.begin(), ranked.begin() + best);
  const std::size_t rest = ranked.size() - best;
  const std::size_t take = cap - best;
  for (std::size_t i = 0; i < take; ++i) out.push_back(ranked[best + i * rest / take]);
  return out;
}

ParamTable param_table(const std::vector<const nlohmann::json*>& configs) {
  ParamTable table;
  std::map<std::string, std::size_t> index;
  std::vector<std::vector<std::pair<std::string, nlohmann::json>>> flat(configs.size());
  for (std::size_t i = 0; i < configs.size(); ++i) {
    results::flatten(*configs[i], "", flat[i]);
    for (const auto& [name, value] : flat[i]) {
      if (index.emplace(name, table.axes.size()).second) table.axes.push_back(Axis{name, true, false, {}});
    }
  }
  std::vector<double> lo(table.axes.size(), INFINITY), hi(table.axes.size(), -INFINITY);
  for (const auto& leaves : flat) {
    for (const auto& [name, value] : leaves) {
      Axis& axis = table.axes[index[name]];
      if (!value.is_number()) {
        axis.numeric = false;
      } else {
        lo[index[name]] = std::min(lo[index[name]], value.get<double>());
        hi[index[name]] = std::max(hi[index[name]], value.get<double>());
      }
    }
  }
  for (std::size_t a = 0; a < table.axes.size(); ++a) {
    table.axes[a].log = table.axes[a].numeric && lo[a] > 0 && hi[a] >= 100 * lo[a];
  }
  std::vector<std::set<std::string>> seen(table.axes.size());
  table.cells.assign(configs.size(), std::vector<nlohmann::json>(table.axes.size()));
  for (std::size_t i = 0; i < flat.size(); ++i) {
    for (const auto& [name, value] : flat[i]) {
      const std::size_t a = index[name];
      Axis& axis = table.axes[a];
      if (axis.numeric) {
        table.cells[i][a] = value;
      } else {
        std::string text = results::cell_text(value);
        if (seen[a].insert(text).second) axis.categories.push_back(text);
        table.cells[i][a] = std::move(text);
      }
    }
  }
  return table;
}

nlohmann::json axes_json(const std::vector<Axis>& axes) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& a : axes) {
    out.push_back({{"name", a.name},
                   {"kind", a.numeric ? "number" : "category"},
                   {"log", a.log},
                   {"categories", a.numeric ? nlohmann::json(nullptr) : nlohmann::json(a.categories)}});
  }
  return out;
}

}  // namespace detail

namespace {

using namespace detail;
using results::Store;

// A study's line in the studies list: counts, best, budget and an ETA.
Out<nlohmann::json> study_summary(Store& store, const results::StudyRow& row,
                                  const std::optional<search::StudySpec>& spec, double now) {
  nlohmann::json out = {{"name", row.name},
                        {"status", row.status},
                        {"metric", row.metric},
                        {"direction", std::string(search::to_string(row.direction))},
                        {"created", row.created},
                        {"updated", row.updated}};
  auto counts = store.count_trials(row.id);
  if (!counts) return std::unexpected(db_error(counts.error()));
  nlohmann::json by_state = nlohmann::json::object();
  std::int64_t total = 0, done = 0;
  for (const auto& [state, n] : *counts) {
    by_state[state_name(state)] = n;
    total += n;
    if (state != search::TrialState::kQueued && state != search::TrialState::kRunning &&
        state != search::TrialState::kPaused) {
      done += n;
    }
  }
  out["counts"] = by_state;
  out["total"] = total;
  results::LeaderboardQuery best_query;
  best_query.top = 1;
  auto best = store.leaderboard(row.id, best_query);
  if (!best) return std::unexpected(db_error(best.error()));
  out["best"] = best->empty() ? nlohmann::json(nullptr) : nlohmann::json(best->front().score);
  out["best_trial"] =
      best->empty() ? nlohmann::json(nullptr) : nlohmann::json(best->front().trial.number);
  const bool running = row.status == "running";
  const double elapsed = std::max(0.0, (running ? now : row.updated) - row.created);
  out["elapsed_s"] = elapsed;
  out["sampler"] = nullptr;
  out["scheduler"] = nullptr;
  out["budget"] = nullptr;
  out["eta_s"] = nullptr;
  if (!spec) return out;
  out["sampler"] = spec->sampler.value("type", "");
  const std::string scheduler = spec->scheduler.value("type", "none");
  const std::string pruner = spec->pruner.value("type", "none");
  if (scheduler != "none") {
    out["scheduler"] = scheduler;
  } else if (pruner != "none") {
    out["scheduler"] = pruner + " pruner";
  }
  out["budget"] = {{"trials", spec->max_trials},
                   {"seconds", spec->max_seconds > 0 ? nlohmann::json(spec->max_seconds)
                                                     : nlohmann::json(nullptr)}};
  if (running) {
    // The trials left at the rate trials have finished so far, or the time left, whichever
    // ends first: a budget of trials and one of seconds both stop a study.
    std::optional<double> eta;
    if (done > 0 && elapsed > 0) {
      eta = static_cast<double>(std::max<std::int64_t>(0, spec->max_trials - done)) * elapsed /
            static_cast<double>(done);
    }
    if (spec->max_seconds > 0) {
      const double left = std::max(0.0, spec->max_seconds - elapsed);
      eta = eta ? std::min(*eta, left) : left;
    }
    out["eta_s"] = opt(eta);
  }
  return out;
}

Answer studies_view(Store& store, double now) {
  auto all = store.list_studies();
  if (!all) return to_answer(db_error(all.error()));
  nlohmann::json list = nlohmann::json::array();
  for (const auto& row : *all) {
    std::optional<search::StudySpec> spec;
    if (auto parsed = search::parse_study(row.spec, "study " + row.name)) spec = std::move(*parsed);
    auto summary = study_summary(store, row, spec, now);
    if (!summary) return to_answer(summary.error());
    list.push_back(std::move(*summary));
  }
  return Answer{200, {{"studies", std::move(list)}}};
}

Answer study_view(const Request& r) {
  Store& store = r.store;
  auto study = study_param(store, r.params);
  if (!study) return to_answer(study.error());
  auto out = study_summary(store, study->row, study->spec, r.now);
  if (!out) return to_answer(out.error());
  auto briefs = detail::briefs(r, study->row.id);
  if (!briefs) return to_answer(briefs.error());
  // The parameters and metrics of a sample of trials: every trial of a huge study has the
  // same ones (the space's), and reading all their configs would cost seconds.
  std::vector<std::int64_t> ids;
  const std::size_t step = std::max<std::size_t>(1, (*briefs)->size() / 200);
  for (std::size_t i = 0; i < (*briefs)->size(); i += step) ids.push_back((**briefs)[i].id);
  auto configs = store.trial_configs(ids);
  if (!configs) return to_answer(db_error(configs.error()));
  std::vector<const nlohmann::json*> list;
  for (const auto& [id, config] : *configs) list.push_back(&config);
  (*out)["params"] = axes_json(param_table(list).axes);
  auto names = store.metric_names(ids);
  if (!names) return to_answer(db_error(names.error()));
  (*out)["metrics"] = *names;
  return Answer{200, std::move(*out)};
}

Answer leaderboard_view(Store& store, const Params& params) {
  auto study = study_param(store, params);
  if (!study) return to_answer(study.error());
  results::LeaderboardQuery query;
  auto top = int_param(params, "top", 100, 0, 1'000'000);
  if (!top) return to_answer(top.error());
  query.top = static_cast<std::size_t>(*top);
  for (auto [it, end] = params.equal_range("where"); it != end; ++it) {
    auto filter = results::parse_filter(it->second);
    if (!filter) return to_answer(Stop{400, "parameter 'where': " + filter.error().message});
    query.where.push_back(std::move(*filter));
  }
  if (auto metric = param(params, "metric")) query.metric = *metric;
  if (auto aggregate = param(params, "aggregate")) {
    if (*aggregate != "best" && *aggregate != "last") {
      return to_answer(Stop{400, "parameter 'aggregate' must be best or last"});
    }
    query.aggregate = *aggregate == "best" ? results::Aggregate::kBest : results::Aggregate::kLast;
  }
  auto built = results::cli_detail::leaderboard_frame(store, study->row, query, false);
  if (!built) return to_answer(db_error(built.error()));
  nlohmann::json columns = nlohmann::json::array();
  for (const auto& c : built->frame.columns()) columns.push_back(c.name);
  auto counts = store.count_trials(study->row.id);
  if (!counts) return to_answer(db_error(counts.error()));
  std::int64_t total = 0;
  for (const auto& [state, n] : *counts) total += n;
  return Answer{200,
                {{"columns", std::move(columns)},
                 {"rows", nlohmann::json(built->frame.to_json())},
                 {"score", built->score},
                 {"ranked", built->frame.rows()},
                 {"total", total}}};
}

Answer trial_view(Store& store, const Params& params) {
  auto study = study_param(store, params);
  if (!study) return to_answer(study.error());
  auto number = int_param(params, "number", -1, 0, INT64_MAX);
  if (!number) return to_answer(number.error());
  if (*number < 0) return to_answer(Stop{400, "parameter 'number' (the trial) is missing"});
  auto trial = store.find_trial(study->row.id, *number);
  if (!trial) return to_answer(db_error(trial.error()));
  if (!*trial) {
    return to_answer(Stop{404, "study '" + study->row.name + "' has no trial " +
                                   std::to_string(*number)});
  }
  const results::TrialRow& t = **trial;
  std::vector<std::pair<std::string, nlohmann::json>> leaves;
  results::flatten(t.config, "", leaves);
  nlohmann::ordered_json flat = nlohmann::ordered_json::object();
  for (auto& [name, value] : leaves) flat[name] = std::move(value);
  std::string host;
  if (auto agents = store.agents()) {
    for (const auto& a : *agents) {
      if (a.id == t.agent) host = a.host;
    }
  }
  auto metrics = store.metrics(t.id);
  if (!metrics) return to_answer(db_error(metrics.error()));
  nlohmann::json curves = nlohmann::json::object();
  for (const auto& m : *metrics) curves[m.name].push_back({m.step, m.value, m.time});
  auto events = store.trial_events(t.id);
  if (!events) return to_answer(db_error(events.error()));
  nlohmann::json history = nlohmann::json::array();
  for (const auto& e : *events) {
    history.push_back({{"kind", e.kind}, {"time", e.time}, {"detail", e.detail}});
  }
  // PBT's lineage, nearest ancestor first; bounded, so a corrupt cycle cannot hang a request.
  nlohmann::json lineage = nlohmann::json::array();
  std::optional<std::int64_t> parent = t.parent, step = t.parent_step;
  for (int depth = 0; parent && depth < 1000; ++depth) {
    lineage.push_back({{"number", *parent}, {"parent_step", step ? nlohmann::json(*step) : nullptr}});
    auto up = store.find_trial(study->row.id, *parent);
    if (!up) return to_answer(db_error(up.error()));
    if (!*up) break;
    parent = (*up)->parent;
    step = (*up)->parent_step;
  }
  nlohmann::json out = {{"study", study->row.name},
                        {"metric", study->row.metric},
                        {"number", t.number},
                        {"state", state_name(t.state)},
                        {"value", opt(t.value)},
                        {"config", t.config},
                        {"params", nlohmann::json(flat)},
                        {"attempt", t.attempt},
                        {"failures", t.failures},
                        {"interruptions", t.interruptions},
                        {"agent", t.agent},
                        {"host", host},
                        {"queued", t.queued},
                        {"started", opt(t.started)},
                        {"finished", opt(t.finished)},
                        {"error", t.error},
                        {"log_tail", t.log_tail},
                        {"metrics", std::move(curves)},
                        {"events", std::move(history)},
                        {"lineage", std::move(lineage)}};
  return Answer{200, std::move(out)};
}

Answer agents_view(Store& store, double now) {
  auto agents = store.agents();
  if (!agents) return to_answer(db_error(agents.error()));
  auto studies = store.list_studies();
  if (!studies) return to_answer(db_error(studies.error()));
  std::map<std::string, nlohmann::json> running;
  for (const auto& s : *studies) {
    auto trials = store.trials(s.id, search::TrialState::kRunning);
    if (!trials) return to_answer(db_error(trials.error()));
    for (const auto& t : *trials) running[t.agent].push_back({{"study", s.name}, {"number", t.number}});
  }
  nlohmann::json list = nlohmann::json::array();
  for (const auto& a : *agents) {
    auto held = running.find(a.id);
    list.push_back({{"id", a.id},
                    {"host", a.host},
                    {"slots", a.slots},
                    {"gpus", a.gpus},
                    {"state", results::agent_status(a, now)},
                    {"drained", a.drained},
                    {"running", held == running.end() ? nlohmann::json::array() : held->second},
                    {"first_seen", a.first_seen},
                    {"last_seen", a.last_seen},
                    {"seen_ago_s", std::max(0.0, now - a.last_seen)}});
  }
  return Answer{200, {{"agents", std::move(list)}}};
}

// What encodeURIComponent leaves as it is: letters, digits and - _ . ! ~ * ' ( ).
bool unreserved(unsigned char c) {
  return std::isalnum(c) != 0 || std::string_view("-_.!~*'()").find(static_cast<char>(c)) !=
                                     std::string_view::npos;
}

}  // namespace

Result<BriefsCache::Briefs> BriefsCache::get(Store& store, std::int64_t study, std::int64_t mark) {
  std::lock_guard lock(mutex_);
  auto it = studies_.find(study);
  if (it != studies_.end() && it->second.first == mark) return it->second.second;
  auto read = store.trial_briefs(study);
  if (!read) return std::unexpected(read.error());
  auto shared = std::make_shared<const std::vector<results::TrialBrief>>(std::move(*read));
  studies_[study] = {mark, shared};
  return shared;
}

namespace detail {

Out<BriefsCache::Briefs> briefs(const Request& r, std::int64_t study) {
  if (r.cache != nullptr) {
    auto cached = r.cache->get(r.store, study, r.mark);
    if (!cached) return std::unexpected(db_error(cached.error()));
    return *cached;
  }
  auto read = r.store.trial_briefs(study);
  if (!read) return std::unexpected(db_error(read.error()));
  return std::make_shared<const std::vector<results::TrialBrief>>(std::move(*read));
}

}  // namespace detail

Answer answer(Store& store, std::string_view path, const Params& params, double now,
              BriefsCache* cache, std::int64_t mark) {
  const Request r{store, params, now, cache, mark};
  if (path == "/api/studies") return studies_view(store, now);
  if (path == "/api/study") return study_view(r);
  if (path == "/api/leaderboard") return leaderboard_view(store, params);
  if (path == "/api/history") return history_view(r);
  if (path == "/api/parallel") return parallel_view(r);
  if (path == "/api/importance") return importance_view(r);
  if (path == "/api/curves") return curves_view(r);
  if (path == "/api/slice") return slice_view(r);
  if (path == "/api/timeline") return timeline_view(r);
  if (path == "/api/trial") return trial_view(store, params);
  if (path == "/api/agents") return agents_view(store, now);
  return Answer{404, {{"error", "no such API path '" + std::string(path) + "' (see API.md)"}}};
}

std::string canonical_key(std::string_view path, const Params& params) {
  std::string key(path.starts_with('/') ? path.substr(1) : path);
  char sep = '?';
  // A multimap keeps equal names in insertion order: sorted by name, stable within one.
  for (const auto& [name, value] : params) {
    key += sep;
    sep = '&';
    key += name;
    key += '=';
    for (unsigned char c : value) {
      if (unreserved(c)) {
        key += static_cast<char>(c);
      } else {
        char hex[4];
        std::snprintf(hex, sizeof hex, "%%%02X", c);
        key += hex;
      }
    }
  }
  return key;
}

}  // namespace hpo::dashboard
