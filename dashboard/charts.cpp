// The dashboard's charts: optimization history, parallel coordinates, parameter importance,
// learning curves, slice and the timeline of slots. Each is downsampled here (views.h).
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "dashboard/views_internal.h"
#include "search/importance.h"

namespace hpo::dashboard::detail {
namespace {

using results::Store;
using results::TrialBrief;

// What a page draws at most: set so that a 100,000-trial study's page is drawn in about a
// second on 2 cores (experiments/results/dashboard.txt); a chart this size is already denser
// than its pixels.
constexpr std::size_t kHistoryFull = 5'000;     // more completed trials: downsampled
constexpr std::size_t kHistoryBuckets = 2'000;  // ... to a best and a worst point per bucket
constexpr std::size_t kParallelRows = 500;
constexpr std::size_t kParallelBest = 100;
constexpr std::size_t kSlicePoints = 2'000;
constexpr std::size_t kSliceBest = 200;
constexpr std::size_t kTimelineBars = 2'000;
constexpr std::size_t kImportanceTrials = 2'000;

struct Loaded {
  StudyView study;
  BriefsCache::Briefs all;
  const std::vector<TrialBrief>& trials = *all;
};

Out<Loaded> load(const Request& r) {
  auto study = study_param(r.store, r.params);
  if (!study) return std::unexpected(study.error());
  auto trials = briefs(r, study->row.id);
  if (!trials) return std::unexpected(trials.error());
  return Loaded{std::move(*study), std::move(*trials)};
}

nlohmann::json history_point(const TrialBrief& t) {
  return {t.number, *t.value, opt(t.started), opt(t.finished)};
}

// The configs of `trials`, in their order (a trial whose config is gone is dropped).
Out<std::vector<std::pair<const TrialBrief*, nlohmann::json>>> with_configs(
    Store& store, const std::vector<const TrialBrief*>& trials) {
  std::vector<std::int64_t> ids;
  for (const auto* t : trials) ids.push_back(t->id);
  auto configs = store.trial_configs(ids);
  if (!configs) return std::unexpected(db_error(configs.error()));
  std::vector<std::pair<const TrialBrief*, nlohmann::json>> out;
  for (const auto* t : trials) {
    auto it = configs->find(t->id);
    if (it != configs->end()) out.emplace_back(t, std::move(it->second));
  }
  return out;
}

// The best `best` completed trials and an even sample of the rest, `cap` in all, each with
// its config, and their parameters as axes (parallel coordinates and slices read the same).
struct Sampled {
  std::vector<const TrialBrief*> ranked;  // every completed trial, best first
  std::vector<std::pair<const TrialBrief*, nlohmann::json>> rows;
  ParamTable table;                       // one row of cells per entry of `rows`
};

Out<Sampled> sample_params(Store& store, const Loaded& loaded, std::size_t best, std::size_t cap) {
  Sampled out;
  out.ranked = ranked(loaded.trials, loaded.study.row.direction);
  auto rows = with_configs(store, front_and_sample(out.ranked, best, cap));
  if (!rows) return std::unexpected(rows.error());
  out.rows = std::move(*rows);
  std::vector<const nlohmann::json*> configs;
  for (const auto& [t, config] : out.rows) configs.push_back(&config);
  out.table = param_table(configs);
  return out;
}

}  // namespace

Answer history_view(const Request& r) {
  auto loaded = load(r);
  if (!loaded) return to_answer(loaded.error());
  const auto direction = loaded->study.row.direction;
  const std::vector<const TrialBrief*> done = completed(loaded->trials);
  nlohmann::json points = nlohmann::json::array(), best = nlohmann::json::array();
  std::optional<double> so_far;
  for (const auto* t : done) {
    if (!so_far || better(*t->value, *so_far, direction)) {
      so_far = *t->value;
      best.push_back({t->number, *so_far});  // a step line needs only the points it moves at
    }
  }
  if (!done.empty()) best.push_back({done.back()->number, *so_far});
  const bool downsample = done.size() > kHistoryFull;
  if (!downsample) {
    for (const auto* t : done) points.push_back(history_point(*t));
  } else {
    // Consecutive trials per bucket; its best and worst keep the spread and the front visible.
    for (std::size_t b = 0; b < kHistoryBuckets; ++b) {
      const std::size_t lo = b * done.size() / kHistoryBuckets;
      const std::size_t hi = (b + 1) * done.size() / kHistoryBuckets;
      if (lo == hi) continue;
      const TrialBrief *top = done[lo], *bottom = done[lo];
      for (std::size_t i = lo; i < hi; ++i) {
        if (better(*done[i]->value, *top->value, direction)) top = done[i];
        if (better(*bottom->value, *done[i]->value, direction)) bottom = done[i];
      }
      const TrialBrief* first = top->number < bottom->number ? top : bottom;
      const TrialBrief* second = first == top ? bottom : top;
      points.push_back(history_point(*first));
      if (second != first) points.push_back(history_point(*second));
    }
  }
  return Answer{200,
                {{"metric", loaded->study.row.metric},
                 {"direction", std::string(search::to_string(direction))},
                 {"completed", done.size()},
                 {"points", std::move(points)},
                 {"best", std::move(best)},
                 {"downsampled", downsample}}};
}

Answer parallel_view(const Request& r) {
  Store& store = r.store;
  auto loaded = load(r);
  if (!loaded) return to_answer(loaded.error());
  auto sampled = sample_params(store, *loaded, kParallelBest, kParallelRows);
  if (!sampled) return to_answer(sampled.error());
  const auto& order = sampled->ranked;
  const auto* rows = &sampled->rows;
  const ParamTable& table = sampled->table;
  nlohmann::json out_rows = nlohmann::json::array();
  for (std::size_t i = 0; i < rows->size(); ++i) {
    nlohmann::json row = table.cells[i];
    row.push_back(*(*rows)[i].first->value);
    row.push_back((*rows)[i].first->number);
    out_rows.push_back(std::move(row));
  }
  return Answer{200,
                {{"params", axes_json(table.axes)},
                 {"metric", loaded->study.row.metric},
                 {"direction", std::string(search::to_string(loaded->study.row.direction))},
                 {"rows", std::move(out_rows)},
                 {"shown", rows->size()},
                 {"completed", order.size()}}};
}

Answer importance_view(const Request& r) {
  Store& store = r.store;
  auto loaded = load(r);
  if (!loaded) return to_answer(loaded.error());
  const std::string method =
      "fANOVA over a random forest (Hutter, Hoos & Leyton-Brown 2014): each parameter's share of "
      "the objective's variance on its own";
  nlohmann::json out = {{"method", method}, {"parameters", nlohmann::json::array()}};
  if (!loaded->study.spec) {
    out["note"] = "the study's stored spec does not parse: its space is unknown";
    return Answer{200, std::move(out)};
  }
  // An even sample of the completed trials in number order: the forest is fitted to at most
  // kImportanceTrials anyway, and reading every config of a huge study would cost seconds.
  const std::vector<const TrialBrief*> done = completed(loaded->trials);
  std::vector<const TrialBrief*> used;
  for (std::size_t i = 0; i < std::min(done.size(), kImportanceTrials); ++i) {
    used.push_back(done[i * done.size() / std::min(done.size(), kImportanceTrials)]);
  }
  auto rows = with_configs(store, used);
  if (!rows) return to_answer(rows.error());
  search::History history;
  for (auto& [t, config] : *rows) {
    search::TrialRecord r;
    r.number = t->number;
    r.state = t->state;
    r.config = std::move(config);
    r.value = t->value;
    history.push_back(std::move(r));
  }
  search::ImportanceOptions options;
  options.seed = static_cast<std::uint64_t>(loaded->study.row.seed);
  auto report = search::parameter_importance(loaded->study.spec->space, history, options);
  out["trials_completed"] = done.size();
  if (!report) {
    out["note"] = report.error().message;
    return Answer{200, std::move(out)};
  }
  for (const auto& p : report->parameters) {
    out["parameters"].push_back(
        {{"name", p.key}, {"importance", p.importance}, {"stddev", p.stddev}, {"absent", p.absent}});
  }
  out["main_effects"] = report->main_effects;
  out["trials_used"] = report->trials_used;
  return Answer{200, std::move(out)};
}

Answer curves_view(const Request& r) {
  Store& store = r.store;
  const Params& params = r.params;
  auto loaded = load(r);
  if (!loaded) return to_answer(loaded.error());
  auto limit = int_param(params, "limit", 50, 1, 1000);
  if (!limit) return to_answer(limit.error());
  const std::string metric = param(params, "metric").value_or(loaded->study.row.metric);
  const auto cap = static_cast<std::size_t>(*limit);
  // The running ones (what a user watches), the best completed, then the stopped ones (the
  // newest): a pruner's and a scheduler's decisions are what the marks show.
  std::vector<const TrialBrief*> shown, stopped;
  for (const auto& t : loaded->trials) {
    if (t.state == search::TrialState::kRunning && shown.size() < cap / 5) shown.push_back(&t);
  }
  for (auto it = loaded->trials.rbegin(); it != loaded->trials.rend(); ++it) {
    if ((it->state == search::TrialState::kPruned || it->state == search::TrialState::kPaused) &&
        stopped.size() < cap * 2 / 5) {
      stopped.push_back(&*it);
    }
  }
  for (const auto* t : ranked(loaded->trials, loaded->study.row.direction)) {
    if (shown.size() + stopped.size() >= cap) break;
    shown.push_back(t);
  }
  shown.insert(shown.end(), stopped.begin(), stopped.end());
  std::vector<std::int64_t> ids;
  for (const auto* t : shown) ids.push_back(t->id);
  auto names = store.metric_names(ids);
  if (!names) return to_answer(db_error(names.error()));
  auto rows = store.trial_metrics(ids, metric);
  if (!rows) return to_answer(db_error(rows.error()));
  std::map<std::int64_t, nlohmann::json> points;
  for (const auto& m : *rows) points[m.trial].push_back({m.step, m.value});
  nlohmann::json trials = nlohmann::json::array();
  for (const auto* t : shown) {
    auto it = points.find(t->id);
    if (it == points.end()) continue;
    trials.push_back({{"number", t->number},
                      {"state", state_name(t->state)},
                      {"value", opt(t->value)},
                      {"points", std::move(it->second)}});
  }
  const std::size_t count = trials.size();
  return Answer{200,
                {{"metric", metric},
                 {"metrics", *names},
                 {"trials", std::move(trials)},
                 {"shown", count},
                 {"total", loaded->trials.size()}}};
}

Answer slice_view(const Request& r) {
  Store& store = r.store;
  const Params& params = r.params;
  auto loaded = load(r);
  if (!loaded) return to_answer(loaded.error());
  auto sampled = sample_params(store, *loaded, kSliceBest, kSlicePoints);
  if (!sampled) return to_answer(sampled.error());
  const auto& order = sampled->ranked;
  const auto* rows = &sampled->rows;
  const ParamTable& table = sampled->table;
  auto find = [&](const std::string& name) -> std::optional<std::size_t> {
    for (std::size_t a = 0; a < table.axes.size(); ++a) {
      if (table.axes[a].name == name) return a;
    }
    return std::nullopt;
  };
  // Defaults: the first two parameters that vary, numbers before categories.
  std::vector<std::size_t> varying;
  for (int pass = 0; pass < 2; ++pass) {
    for (std::size_t a = 0; a < table.axes.size(); ++a) {
      if (table.axes[a].numeric != (pass == 0)) continue;
      std::set<std::string> values;
      for (const auto& row : table.cells) values.insert(row[a].dump());
      if (values.size() > 1) varying.push_back(a);
    }
  }
  std::optional<std::size_t> x, y;
  if (auto name = param(params, "x")) {
    x = find(*name);
    if (!x) return to_answer(Stop{400, "parameter 'x': the study has no parameter '" + *name + "'"});
  } else if (!varying.empty()) {
    x = varying[0];
  }
  if (auto name = param(params, "y")) {
    if (!name->empty()) {
      y = find(*name);
      if (!y) {
        return to_answer(Stop{400, "parameter 'y': the study has no parameter '" + *name + "'"});
      }
    }
  } else if (varying.size() > 1) {
    y = varying[0] == *x ? varying[1] : varying[0];
  }
  nlohmann::json points = nlohmann::json::array();
  if (x) {
    for (std::size_t i = 0; i < rows->size(); ++i) {
      const auto& cells = table.cells[i];
      if (cells[*x].is_null() || (y && cells[*y].is_null())) continue;
      points.push_back({cells[*x], y ? cells[*y] : nlohmann::json(nullptr),
                        *(*rows)[i].first->value, (*rows)[i].first->number});
    }
  }
  const std::size_t count = points.size();
  nlohmann::json names = nlohmann::json::array();
  for (const auto& a : table.axes) names.push_back(a.name);
  return Answer{200,
                {{"params", std::move(names)},
                 {"axes", axes_json(table.axes)},
                 {"metric", loaded->study.row.metric},
                 {"x", x ? nlohmann::json(table.axes[*x].name) : nlohmann::json(nullptr)},
                 {"y", y ? nlohmann::json(table.axes[*y].name) : nlohmann::json(nullptr)},
                 {"points", std::move(points)},
                 {"shown", count},
                 {"completed", order.size()}}};
}

Answer timeline_view(const Request& r) {
  const double now = r.now;
  auto loaded = load(r);
  if (!loaded) return to_answer(loaded.error());
  // The latest runs (by start); each agent's runs are then laid on its slots: a run takes the
  // lowest slot free at its start, which is the slot count when the agent was never overbooked.
  std::vector<const TrialBrief*> runs;
  for (const auto& t : loaded->trials) {
    if (t.started && !t.agent.empty()) runs.push_back(&t);
  }
  std::stable_sort(runs.begin(), runs.end(),
                   [](const auto* a, const auto* b) { return *a->started < *b->started; });
  const std::size_t total = runs.size();
  if (runs.size() > kTimelineBars) runs.erase(runs.begin(), runs.end() - kTimelineBars);
  std::map<std::string, std::vector<double>> slot_ends;  // per agent: when each slot frees
  std::vector<std::pair<std::string, std::size_t>> lanes;
  std::map<std::pair<std::string, std::size_t>, std::size_t> lane_index;
  nlohmann::json bars = nlohmann::json::array();
  for (const auto* t : runs) {
    const double start = *t->started;
    const double end = t->state == search::TrialState::kRunning ? std::max(now, start)
                                                                 : t->finished.value_or(start);
    auto& ends = slot_ends[t->agent];
    std::size_t slot = 0;
    while (slot < ends.size() && ends[slot] > start + 1e-6) ++slot;
    if (slot == ends.size()) ends.push_back(end);
    ends[slot] = end;
    auto [it, added] = lane_index.emplace(std::make_pair(t->agent, slot), lanes.size());
    if (added) lanes.emplace_back(t->agent, slot);
    bars.push_back({{"lane", it->second},
                    {"number", t->number},
                    {"state", state_name(t->state)},
                    {"start", start},
                    {"end", end},
                    {"attempt", t->attempt}});
  }
  // Lanes sorted by agent, then slot; bars renumbered to match.
  std::vector<std::size_t> order(lanes.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return lanes[a] < lanes[b]; });
  std::vector<std::size_t> renumber(lanes.size());
  nlohmann::json names = nlohmann::json::array();
  for (std::size_t i = 0; i < order.size(); ++i) {
    renumber[order[i]] = i;
    names.push_back(lanes[order[i]].first + "/" + std::to_string(lanes[order[i]].second));
  }
  for (auto& bar : bars) bar["lane"] = renumber[bar["lane"].get<std::size_t>()];
  const std::size_t count = bars.size();
  return Answer{200,
                {{"lanes", std::move(names)},
                 {"bars", std::move(bars)},
                 {"now", now},
                 {"shown", count},
                 {"total", total}}};
}

}  // namespace hpo::dashboard::detail
