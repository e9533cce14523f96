// Store: trials, their metrics, and the history a resumed sampler is rebuilt from.
#include <cctype>
#include <map>
#include <string>
#include <unordered_map>

#include "results/store_impl.h"

namespace hpo::results {
namespace {

using detail::dump_json;
using detail::parse_json;
using detail::Query;

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Status no_trial(const Store::Impl& impl, std::int64_t trial) {
  return fail(impl.path + ": no trial with id " + std::to_string(trial));
}

// Logs a lifecycle event for `trial` from its current row, in the caller's transaction.
Status log_trial_event(Store::Impl& impl, std::int64_t trial, std::string_view kind, double time) {
  auto q = impl.prepare(
      "INSERT INTO events(study, trial, kind, detail, time) SELECT study, id, ?, json_object("
      "'number', number, 'attempt', attempt, 'lease', lease, 'agent', agent, 'value', value, "
      "'error', error), ? FROM trials WHERE id = ?");
  if (!q) return std::unexpected(q.error());
  q->bind(1, kind).bind(2, time).bind(3, trial);
  return impl.run(*q, "logging event '" + std::string(kind) + "'");
}

Result<std::vector<MetricRow>> read_metrics(Store::Impl& impl, Query& q, std::string_view what) {
  std::vector<MetricRow> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    out.push_back(MetricRow{q.i64(0), q.i64(1), q.i64(2), q.text(3), q.f64(4), q.f64(5)});
  }
  if (rc != SQLITE_DONE) return std::unexpected(impl.error(what));
  return out;
}

}  // namespace

Result<TrialRow> read_trial(const Store::Impl& impl, const Query& q) {
  TrialRow t;
  t.id = q.i64(0);
  t.study = q.i64(1);
  t.number = q.i64(2);
  const std::string state = q.text(3);
  auto parsed = search::trial_state_from_string(state);
  if (!parsed) {
    return fail(impl.path + ": trial " + std::to_string(t.number) + " has unknown state '" + state +
                "'");
  }
  t.state = *parsed;
  auto config =
      parse_json(q.text(4), impl.path + ": trial " + std::to_string(t.number) + " config");
  if (!config) return std::unexpected(config.error());
  t.config = std::move(*config);
  t.hash = q.text(5);
  t.value = q.opt_f64(6);
  t.attempt = q.i64(7);
  t.lease = q.text(8);
  t.agent = q.text(9);
  t.queued = q.f64(10);
  t.started = q.opt_f64(11);
  t.finished = q.opt_f64(12);
  t.error = q.text(13);
  t.log_tail = q.text(14);
  t.failures = q.i64(15);
  t.interruptions = q.i64(16);
  t.agent_key = q.text(17);
  t.parent = q.opt_i64(18);
  t.parent_step = q.opt_i64(19);
  return t;
}

Result<std::int64_t> Store::add_trial(std::int64_t study, std::int64_t number,
                                      const nlohmann::json& config, std::string_view hash,
                                      double time) {
  if (auto ok = impl_->writable("add trial"); !ok) return std::unexpected(ok.error());
  auto text = dump_json(config, "trial config");
  if (!text) return std::unexpected(text.error());
  auto q = impl_->prepare(
      "INSERT INTO trials(study, number, state, config, hash, attempt, queued) "
      "VALUES (?, ?, 'QUEUED', ?, ?, 0, ?)");
  if (!q) return std::unexpected(q.error());
  q->bind(1, study).bind(2, number).bind(3, std::string_view(*text)).bind(4, hash).bind(5, time);
  if (q->step() != SQLITE_DONE) {
    const int code = sqlite3_extended_errcode(impl_->db.get());
    if (code == SQLITE_CONSTRAINT_UNIQUE) {
      return fail(impl_->path + ": study " + std::to_string(study) + " already has trial " +
                  std::to_string(number));
    }
    if (code == SQLITE_CONSTRAINT_FOREIGNKEY) {
      return fail(impl_->path + ": no study with id " + std::to_string(study));
    }
    return std::unexpected(impl_->error("adding trial " + std::to_string(number)));
  }
  return sqlite3_last_insert_rowid(impl_->db.get());
}

Status Store::start_trial(std::int64_t trial, std::int64_t attempt, std::string_view lease,
                          std::string_view agent, std::string_view agent_key, double time) {
  return impl_->atomically("start trial", [&]() -> Status {
    auto q = impl_->prepare(
        "UPDATE trials SET state = 'RUNNING', attempt = ?, lease = ?, agent = ?, agent_key = ?, "
        "started = ?, finished = NULL, value = NULL, error = NULL, log_tail = NULL WHERE id = ?");
    if (!q) return std::unexpected(q.error());
    q->bind(1, attempt).bind(2, lease).bind(3, agent).bind(4, agent_key).bind(5, time);
    q->bind(6, trial);
    if (auto ok = impl_->run(*q, "starting trial"); !ok) return ok;
    if (sqlite3_changes(impl_->db.get()) == 0) return no_trial(*impl_, trial);
    return log_trial_event(*impl_, trial, "assigned", time);
  });
}

Status Store::record_metric(std::int64_t trial, std::int64_t step, std::string_view name,
                            double value, double time) {
  if (auto ok = impl_->writable("record metric"); !ok) return ok;
  auto q = impl_->prepare(
      "INSERT OR REPLACE INTO metrics(trial, attempt, name, step, value, time) "
      "SELECT id, attempt, ?, ?, ?, ? FROM trials WHERE id = ?");
  if (!q) return std::unexpected(q.error());
  q->bind(1, name).bind(2, step).bind(3, value).bind(4, time).bind(5, trial);
  if (auto ok = impl_->run(*q, "recording metric '" + std::string(name) + "'"); !ok) return ok;
  if (sqlite3_changes(impl_->db.get()) == 0) return no_trial(*impl_, trial);
  return {};
}

Status Store::carry_metrics(std::int64_t trial, std::int64_t from, std::int64_t to) {
  if (auto ok = impl_->writable("carry metrics"); !ok) return ok;
  auto q = impl_->prepare(
      "INSERT OR REPLACE INTO metrics(trial, attempt, name, step, value, time) "
      "SELECT trial, ?, name, step, value, time FROM metrics WHERE trial = ? AND attempt = ?");
  if (!q) return std::unexpected(q.error());
  q->bind(1, to).bind(2, trial).bind(3, from);
  return impl_->run(*q, "carrying a resumed trial's metrics");
}

Status Store::finish_trial(std::int64_t trial, TrialState state, std::optional<double> value,
                           std::string_view error, std::string_view log_tail, double time) {
  if (state == TrialState::kQueued || state == TrialState::kRunning) {
    return fail(impl_->path + ": finish trial: " + std::string(search::to_string(state)) +
                " is not a final state");
  }
  return impl_->atomically("finish trial", [&]() -> Status {
    auto q = impl_->prepare(
        "UPDATE trials SET state = ?, value = ?, error = ?, log_tail = ?, finished = ? "
        "WHERE id = ?");
    if (!q) return std::unexpected(q.error());
    q->bind(1, search::to_string(state)).bind(2, value).bind(3, error).bind(4, log_tail);
    q->bind(5, time).bind(6, trial);
    if (auto ok = impl_->run(*q, "finishing trial"); !ok) return ok;
    if (sqlite3_changes(impl_->db.get()) == 0) return no_trial(*impl_, trial);
    return log_trial_event(*impl_, trial, lower(search::to_string(state)), time);
  });
}

Status Store::requeue_trial(std::int64_t trial, double time) {
  return impl_->atomically("requeue trial", [&]() -> Status {
    // The event first: it keeps the attempt, agent and error being given up.
    if (auto ok = log_trial_event(*impl_, trial, "requeued", time); !ok) return ok;
    if (sqlite3_changes(impl_->db.get()) == 0) return no_trial(*impl_, trial);
    auto q = impl_->prepare(
        "UPDATE trials SET state = 'QUEUED', lease = NULL, agent = NULL, agent_key = NULL, "
        "started = NULL, "
        "finished = NULL, value = NULL, queued = ? WHERE id = ?");
    if (!q) return std::unexpected(q.error());
    q->bind(1, time).bind(2, trial);
    return impl_->run(*q, "requeueing trial");
  });
}

namespace {

// Adds one to `column` (a counter of trials) and returns the new value.
Result<std::int64_t> count_up(Store::Impl& impl, std::int64_t trial, const char* column) {
  if (auto ok = impl.writable(std::string("count ") + column); !ok) {
    return std::unexpected(ok.error());
  }
  auto q = impl.prepare(std::string("UPDATE trials SET ") + column + " = " + column +
                        " + 1 WHERE id = ? RETURNING " + column);
  if (!q) return std::unexpected(q.error());
  q->bind(1, trial);
  int rc = q->step();
  if (rc == SQLITE_DONE) return std::unexpected(no_trial(impl, trial).error());
  if (rc != SQLITE_ROW) return std::unexpected(impl.error(std::string("counting ") + column));
  std::int64_t count = q->i64(0);
  if (q->step() != SQLITE_DONE)
    return std::unexpected(impl.error(std::string("counting ") + column));
  return count;
}

}  // namespace

Result<std::int64_t> Store::count_failure(std::int64_t trial) {
  return count_up(*impl_, trial, "failures");
}

Result<std::int64_t> Store::count_interruption(std::int64_t trial) {
  return count_up(*impl_, trial, "interruptions");
}

Result<std::int64_t> Store::mark_running_interrupted(double time) {
  std::int64_t count = 0;
  auto ok = impl_->atomically("mark running trials interrupted", [&]() -> Status {
    auto log = impl_->prepare(
        "INSERT INTO events(study, trial, kind, detail, time) SELECT study, id, 'interrupted', "
        "json_object('number', number, 'attempt', attempt, 'lease', lease, 'agent', agent, "
        "'reason', 'the scheduler stopped while it ran'), ? FROM trials WHERE state = 'RUNNING'");
    if (!log) return std::unexpected(log.error());
    log->bind(1, time);
    if (auto ok = impl_->run(*log, "logging interrupted trials"); !ok) return ok;
    auto q = impl_->prepare(
        "UPDATE trials SET state = 'INTERRUPTED', finished = ? WHERE state = 'RUNNING'");
    if (!q) return std::unexpected(q.error());
    q->bind(1, time);
    if (auto ok = impl_->run(*q, "marking running trials interrupted"); !ok) return ok;
    count = sqlite3_changes64(impl_->db.get());
    return {};
  });
  if (!ok) return std::unexpected(ok.error());
  return count;
}

Result<std::vector<TrialRow>> Store::trials(std::int64_t study, std::optional<TrialState> state) {
  auto q = state ? impl_->prepare(std::string("SELECT ") + kTrialColumns +
                                  " FROM trials t WHERE t.study = ? AND t.state = ? ORDER BY "
                                  "t.number")
                 : impl_->prepare(std::string("SELECT ") + kTrialColumns +
                                  " FROM trials t WHERE t.study = ? ORDER BY t.number");
  if (!q) return std::unexpected(q.error());
  q->bind(1, study);
  if (state) q->bind(2, search::to_string(*state));
  std::vector<TrialRow> out;
  int rc;
  while ((rc = q->step()) == SQLITE_ROW) {
    auto row = read_trial(*impl_, *q);
    if (!row) return std::unexpected(row.error());
    out.push_back(std::move(*row));
  }
  if (rc != SQLITE_DONE) return std::unexpected(impl_->error("listing trials"));
  return out;
}

Result<std::optional<TrialRow>> Store::find_trial(std::int64_t study, std::int64_t number) {
  auto q = impl_->prepare(std::string("SELECT ") + kTrialColumns +
                          " FROM trials t WHERE t.study = ? AND t.number = ?");
  if (!q) return std::unexpected(q.error());
  q->bind(1, study).bind(2, number);
  int rc = q->step();
  if (rc == SQLITE_DONE) return std::optional<TrialRow>();
  if (rc != SQLITE_ROW) return std::unexpected(impl_->error("finding a trial"));
  auto row = read_trial(*impl_, *q);
  if (!row) return std::unexpected(row.error());
  return std::optional<TrialRow>(std::move(*row));
}

Result<std::optional<TrialRow>> Store::get_trial(std::int64_t trial) {
  auto q = impl_->prepare(std::string("SELECT ") + kTrialColumns + " FROM trials t WHERE t.id = ?");
  if (!q) return std::unexpected(q.error());
  q->bind(1, trial);
  int rc = q->step();
  if (rc == SQLITE_DONE) return std::optional<TrialRow>();
  if (rc != SQLITE_ROW) return std::unexpected(impl_->error("reading a trial"));
  auto row = read_trial(*impl_, *q);
  if (!row) return std::unexpected(row.error());
  return std::optional<TrialRow>(std::move(*row));
}

Result<search::History> Store::history(std::int64_t study) {
  auto s = get_study(study);
  if (!s) return std::unexpected(s.error());
  if (!*s) return fail(impl_->path + ": no study with id " + std::to_string(study));
  const std::string metric = (*s)->metric;

  search::History out;
  std::unordered_map<std::int64_t, std::size_t> index;  // trial id -> position in out
  {
    auto q = impl_->prepare(
        "SELECT id, number, state, config, value FROM trials WHERE study = ? ORDER BY number");
    if (!q) return std::unexpected(q.error());
    q->bind(1, study);
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) {
      search::TrialRecord r;
      r.number = q->i64(1);
      const std::string state = q->text(2);
      auto parsed = search::trial_state_from_string(state);
      if (!parsed) {
        return fail(impl_->path + ": trial " + std::to_string(r.number) + " has unknown state '" +
                    state + "'");
      }
      r.state = *parsed;
      auto config =
          parse_json(q->text(3), impl_->path + ": trial " + std::to_string(r.number) + " config");
      if (!config) return std::unexpected(config.error());
      r.config = std::move(*config);
      r.value = q->opt_f64(4);
      index.emplace(q->i64(0), out.size());
      out.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE) return std::unexpected(impl_->error("reading the history"));
  }
  {
    auto q = impl_->prepare(
        "SELECT m.trial, m.step, m.value FROM trials t JOIN metrics m ON m.trial = t.id AND "
        "m.attempt = t.attempt AND m.name = ?2 WHERE t.study = ?1 ORDER BY t.number, m.step");
    if (!q) return std::unexpected(q.error());
    q->bind(1, study).bind(2, std::string_view(metric));
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) {
      auto it = index.find(q->i64(0));
      if (it == index.end()) continue;
      out[it->second].intermediates.push_back(search::Intermediate{q->i64(1), q->f64(2)});
    }
    if (rc != SQLITE_DONE) return std::unexpected(impl_->error("reading intermediate values"));
  }
  return out;
}

Result<std::vector<MetricRow>> Store::metrics(std::int64_t trial) {
  auto q = impl_->prepare(
      "SELECT m.trial, t.number, m.step, m.name, m.value, m.time FROM trials t JOIN metrics m ON "
      "m.trial = t.id AND m.attempt = t.attempt WHERE t.id = ? ORDER BY m.name, m.step");
  if (!q) return std::unexpected(q.error());
  q->bind(1, trial);
  return read_metrics(*impl_, *q, "reading metrics");
}

Result<std::vector<MetricRow>> Store::study_metrics(std::int64_t study) {
  auto q = impl_->prepare(
      "SELECT m.trial, t.number, m.step, m.name, m.value, m.time FROM trials t JOIN metrics m ON "
      "m.trial = t.id AND m.attempt = t.attempt WHERE t.study = ? ORDER BY t.number, m.name, "
      "m.step");
  if (!q) return std::unexpected(q.error());
  q->bind(1, study);
  return read_metrics(*impl_, *q, "reading metrics");
}

Result<std::map<std::int64_t, double>> Store::last_values(const std::vector<std::int64_t>& trials,
                                                          std::string_view name) {
  // One primary-key seek per trial: (trial, attempt, name), then the highest step.
  constexpr std::string_view kSql =
      "SELECT m.value FROM trials t JOIN metrics m ON m.trial = t.id AND m.attempt = t.attempt "
      "WHERE t.id = ? AND m.name = ? ORDER BY m.step DESC LIMIT 1";
  std::map<std::int64_t, double> out;
  for (std::int64_t trial : trials) {
    auto q = impl_->prepare(kSql);  // the cached statement, reset when q goes
    if (!q) return std::unexpected(q.error());
    q->bind(1, trial).bind(2, name);
    const int rc = q->step();
    if (rc == SQLITE_ROW) {
      out[trial] = q->f64(0);
    } else if (rc != SQLITE_DONE) {
      return std::unexpected(impl_->error("reading metric '" + std::string(name) + "'"));
    }
  }
  return out;
}

}  // namespace hpo::results
