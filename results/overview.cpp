// Store: the light reads of the dashboard (dashboard/views.h). They leave out what a chart does
// not draw (configs, logs) and seek by trial id, so that a 100,000-trial study answers in
// tens of milliseconds.
#include <set>
#include <string>

#include "results/store_impl.h"

namespace hpo::results {

using detail::parse_json;

Result<std::vector<TrialBrief>> Store::trial_briefs(std::int64_t study) {
  auto q = impl_->prepare(
      "SELECT id, number, state, value, attempt, agent, queued, started, finished, parent, "
      "parent_step FROM trials WHERE study = ? ORDER BY number");
  if (!q) return std::unexpected(q.error());
  q->bind(1, study);
  std::vector<TrialBrief> out;
  int rc;
  while ((rc = q->step()) == SQLITE_ROW) {
    TrialBrief t;
    t.id = q->i64(0);
    t.number = q->i64(1);
    const std::string state = q->text(2);
    auto parsed = search::trial_state_from_string(state);
    if (!parsed) {
      return fail(impl_->path + ": trial " + std::to_string(t.number) + " has unknown state '" +
                  state + "'");
    }
    t.state = *parsed;
    t.value = q->opt_f64(3);
    t.attempt = q->i64(4);
    t.agent = q->text(5);
    t.queued = q->f64(6);
    t.started = q->opt_f64(7);
    t.finished = q->opt_f64(8);
    t.parent = q->opt_i64(9);
    t.parent_step = q->opt_i64(10);
    out.push_back(std::move(t));
  }
  if (rc != SQLITE_DONE) return std::unexpected(impl_->error("reading trials"));
  return out;
}

Result<std::map<std::int64_t, nlohmann::json>> Store::trial_configs(
    const std::vector<std::int64_t>& trials) {
  std::map<std::int64_t, nlohmann::json> out;
  for (std::int64_t id : trials) {
    auto q = impl_->prepare("SELECT number, config FROM trials WHERE id = ?");
    if (!q) return std::unexpected(q.error());
    q->bind(1, id);
    const int rc = q->step();
    if (rc == SQLITE_DONE) continue;
    if (rc != SQLITE_ROW) return std::unexpected(impl_->error("reading trial configs"));
    auto config = parse_json(q->text(1), impl_->path + ": trial " +
                                             std::to_string(q->i64(0)) + " config");
    if (!config) return std::unexpected(config.error());
    out.emplace(id, std::move(*config));
  }
  return out;
}

Result<std::vector<MetricRow>> Store::trial_metrics(const std::vector<std::int64_t>& trials,
                                                    std::string_view name) {
  std::vector<MetricRow> out;
  for (std::int64_t id : trials) {
    auto q = impl_->prepare(
        "SELECT m.trial, t.number, m.step, m.name, m.value, m.time FROM trials t JOIN metrics m "
        "ON m.trial = t.id AND m.attempt = t.attempt WHERE t.id = ? AND m.name = ? "
        "ORDER BY m.step");
    if (!q) return std::unexpected(q.error());
    q->bind(1, id).bind(2, name);
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) {
      out.push_back(MetricRow{q->i64(0), q->i64(1), q->i64(2), q->text(3), q->f64(4), q->f64(5)});
    }
    if (rc != SQLITE_DONE) {
      return std::unexpected(impl_->error("reading metric '" + std::string(name) + "'"));
    }
  }
  return out;
}

Result<std::vector<std::string>> Store::metric_names(const std::vector<std::int64_t>& trials) {
  std::set<std::string> names;
  for (std::int64_t id : trials) {
    // The primary key (trial, attempt, name, step) orders a trial's names: DISTINCT walks it.
    auto q = impl_->prepare(
        "SELECT DISTINCT m.name FROM trials t JOIN metrics m ON m.trial = t.id AND m.attempt = "
        "t.attempt WHERE t.id = ?");
    if (!q) return std::unexpected(q.error());
    q->bind(1, id);
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) names.insert(q->text(0));
    if (rc != SQLITE_DONE) return std::unexpected(impl_->error("reading metric names"));
  }
  return std::vector<std::string>(names.begin(), names.end());
}

Result<std::int64_t> Store::data_version() {
  auto q = impl_->prepare("PRAGMA data_version");
  if (!q) return std::unexpected(q.error());
  if (q->step() != SQLITE_ROW) return std::unexpected(impl_->error("reading data_version"));
  return q->i64(0);
}

}  // namespace hpo::results
