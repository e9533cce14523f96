// parameter_importance (importance.h): from the history to the forest's points, and from the
// forest's per-tree fractions to the report. The forest is in importance_forest.cpp.
#include "search/importance.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "search/importance_forest.h"
#include "search/internal.h"
#include "search/tpe_parzen.h"

namespace hpo::search {

namespace {

constexpr std::uint64_t kSubsampleSalt = 0x1a7e5ab0ull;
constexpr const char* kWhere = "parameter importance: ";

// Replays a config's decisions through the walk and records each decision point it meets,
// so that every key found in the configs gets its domain (bounds, scale, categories).
class DomainRecorder : public Decider {
 public:
  DomainRecorder(std::unordered_map<std::string, Dimension>& domains,
                 std::vector<std::string>& keys)
      : domains_(domains), keys_(keys) {}
  void replay(const Decisions& decisions) { decisions_ = &decisions; }

  double decide(const Dimension& d) override {
    if (domains_.emplace(d.key, d).second) keys_.push_back(d.key);
    auto it = decisions_->find(d.key);
    return it == decisions_->end() ? d.low : it->second;
  }

 private:
  std::unordered_map<std::string, Dimension>& domains_;
  std::vector<std::string>& keys_;  // in the order first met
  const Decisions* decisions_ = nullptr;
};

// The completed trials to fit: all of them, or a seeded subsample of max_trials in
// history order.
std::vector<std::size_t> pick_trials(std::vector<std::size_t> completed,
                                     const ImportanceOptions& o) {
  const auto cap = static_cast<std::size_t>(o.max_trials);
  if (completed.size() <= cap) return completed;
  auto rng = detail::make_rng(o.seed, 0, kSubsampleSalt);
  for (std::size_t i = 0; i < cap; ++i) {
    const auto j = i + detail::uniform_index(rng, completed.size() - i);
    std::swap(completed[i], completed[j]);
  }
  completed.resize(cap);
  std::sort(completed.begin(), completed.end());
  return completed;
}

// One parameter's raw values (NaN where inactive) as a forest coordinate; nullopt when it
// does not vary. `y` orders the categories by their mean objective.
std::optional<detail::ForestFeature> feature_of(const Dimension& d, const std::vector<double>& raw,
                                                const std::vector<double>& y) {
  const std::size_t n = raw.size();
  std::vector<double> unit(n, NAN);  // present values mapped onto [0, 1] (categories: index)
  std::size_t absent = 0;
  if (d.kind == Dimension::Kind::kCategorical) {
    for (std::size_t i = 0; i < n; ++i) {
      if (raw[i] >= 0 && raw[i] < static_cast<double>(d.choices)) unit[i] = std::floor(raw[i]);
    }
  } else {
    const detail::Range r = detail::range_of(d);
    const double width = r.high - r.low;
    for (std::size_t i = 0; i < n; ++i) {
      if (std::isfinite(raw[i]) && width > 0) {
        unit[i] = std::clamp((r.to(std::clamp(raw[i], d.low, d.high)) - r.low) / width, 0.0, 1.0);
      }
    }
  }
  double first = NAN;
  bool varies = false;
  for (double u : unit) {
    if (std::isnan(u)) {
      ++absent;
    } else if (std::isnan(first)) {
      first = u;
    } else {
      varies = varies || u != first;
    }
  }
  if (absent == n || (!varies && absent == 0)) return std::nullopt;

  detail::ForestFeature f;
  f.absent = static_cast<double>(absent) / static_cast<double>(n);
  f.values.resize(n);
  std::vector<double> rank;  // categories: the cell of each category
  if (d.kind == Dimension::Kind::kCategorical) {
    const auto k = static_cast<std::size_t>(d.choices);
    std::vector<double> sum(k, 0.0), hits(k, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
      if (std::isnan(unit[i])) continue;
      sum[static_cast<std::size_t>(unit[i])] += y[i];
      hits[static_cast<std::size_t>(unit[i])] += 1;
    }
    // Observed categories by mean objective, then the unseen ones by index.
    std::vector<std::size_t> by(k);
    for (std::size_t c = 0; c < k; ++c) by[c] = c;
    auto key = [&](std::size_t c) {
      return std::make_pair(hits[c] > 0 ? 0 : 1, hits[c] > 0 ? sum[c] / hits[c] : 0.0);
    };
    std::stable_sort(by.begin(), by.end(),
                     [&](std::size_t a, std::size_t b) { return key(a) < key(b); });
    rank.resize(k);
    for (std::size_t r = 0; r < k; ++r) rank[by[r]] = static_cast<double>(r);
    f.cells = d.choices;
  }
  const double w = f.cells > 0 ? (1 - f.absent) / static_cast<double>(f.cells) : 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    if (std::isnan(unit[i])) {
      f.values[i] = 0.5 * f.absent;
    } else if (f.cells > 0) {
      f.values[i] = f.absent + (rank[static_cast<std::size_t>(unit[i])] + 0.5) * w;
    } else {
      f.values[i] = f.absent + (1 - f.absent) * unit[i];
    }
  }
  return f;
}

Status check(const ImportanceOptions& o) {
  auto bad = [](const char* what, std::int64_t v, std::int64_t min) -> Status {
    std::string m = kWhere;
    m.append(what).append(" must be at least ").append(std::to_string(min));
    m.append(", got ").append(std::to_string(v));
    return fail(std::move(m));
  };
  if (o.trees < 1) return bad("trees", o.trees, 1);
  if (o.max_depth < 1) return bad("max_depth", o.max_depth, 1);
  if (o.min_samples_split < 2) return bad("min_samples_split", o.min_samples_split, 2);
  if (o.min_samples_leaf < 1) return bad("min_samples_leaf", o.min_samples_leaf, 1);
  if (o.max_trials < 2) return bad("max_trials", o.max_trials, 2);
  return {};
}

}  // namespace

Result<ImportanceReport> parameter_importance(const Space& space, const History& history,
                                              const ImportanceOptions& options) {
  if (auto ok = check(options); !ok) return std::unexpected(ok.error());
  std::vector<std::size_t> completed;
  for (std::size_t i = 0; i < history.size(); ++i) {
    const TrialRecord& t = history[i];
    if (t.state == TrialState::kCompleted && t.value && std::isfinite(*t.value)) {
      completed.push_back(i);
    }
  }
  ImportanceReport report;
  report.trials_completed = completed.size();
  if (completed.size() < 2) {
    std::string m = kWhere;
    m.append("needs at least 2 completed trials with a finite value, the study has ");
    m.append(std::to_string(completed.size()));
    return fail(std::move(m));
  }
  const std::vector<std::size_t> used = pick_trials(std::move(completed), options);
  const std::size_t n = used.size();
  report.trials_used = n;

  std::vector<double> y(n);
  double mean = 0;
  for (std::size_t i = 0; i < n; ++i)
    mean += (y[i] = *history[used[i]].value) / static_cast<double>(n);
  double spread = 0;
  for (double v : y) spread += (v - mean) * (v - mean) / static_cast<double>(n);
  const auto [low, high] = std::minmax_element(y.begin(), y.end());
  if (!(*low < *high)) {
    std::string m = kWhere;
    m.append("the objective has the same value in all ").append(std::to_string(n));
    m.append(" trials used, so no parameter explains any of it");
    return fail(std::move(m));
  }
  // Standardized, so that the split scores and the variance floor do not depend on the
  // objective's units.
  for (double& v : y) v = (v - mean) / std::sqrt(spread);

  std::unordered_map<std::string, Dimension> domains;
  std::vector<std::string> keys;
  std::unordered_map<std::string, std::vector<double>> raw;
  DomainRecorder recorder(domains, keys);
  for (std::size_t i = 0; i < n; ++i) {
    const Decisions decisions = space.decode(history[used[i]].config);
    recorder.replay(decisions);
    (void)space.sample(recorder);
    for (const auto& [key, value] : decisions) {
      auto& column = raw[key];
      if (column.empty()) column.assign(n, NAN);
      column[i] = value;
    }
  }
  std::vector<detail::ForestFeature> features;
  std::vector<ParameterImportance> rows;
  for (const std::string& key : keys) {
    auto column = raw.find(key);
    if (column == raw.end()) continue;  // met on a replay only, in no config
    auto f = feature_of(domains.at(key), column->second, y);
    if (!f) continue;
    ParameterImportance row;
    row.key = key;
    row.absent = f->absent;
    rows.push_back(std::move(row));
    features.push_back(std::move(*f));
  }
  if (features.empty()) {
    std::string m = kWhere;
    m.append("no parameter varies among the ").append(std::to_string(n));
    m.append(" trials used, so there is nothing to rank");
    return fail(std::move(m));
  }

  const auto per_tree = detail::main_effect_fractions(features, y, options);
  if (per_tree.empty()) {
    std::string m = kWhere;
    m.append("no tree of the forest varies over the space (");
    m.append(std::to_string(n)).append(" trials used)");
    return fail(std::move(m));
  }
  const auto trees = static_cast<double>(per_tree.size());
  for (std::size_t f = 0; f < features.size(); ++f) {
    double m = 0, s = 0;
    for (const auto& t : per_tree) m += t[f] / trees;
    for (const auto& t : per_tree) s += (t[f] - m) * (t[f] - m) / trees;
    rows[f].importance = m;
    rows[f].stddev = std::sqrt(s);
    report.main_effects += m;
  }
  // Below this the single parameters explain nothing but rounding: shares of it would be noise.
  const double total = report.main_effects;
  for (auto& r : rows) {
    r.importance = total > 1e-9 ? r.importance / total : 0.0;
    r.stddev = total > 1e-9 ? r.stddev / total : 0.0;
  }
  std::sort(rows.begin(), rows.end(),
            [](const ParameterImportance& a, const ParameterImportance& b) {
              return a.importance != b.importance ? a.importance > b.importance : a.key < b.key;
            });
  report.parameters = std::move(rows);
  return report;
}

}  // namespace hpo::search
