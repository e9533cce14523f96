// Store: studies, agents and the event log; the rows around the trials.
#include <string>

#include "results/store_impl.h"

namespace hpo::results {
namespace {

using detail::dump_json;
using detail::parse_json;
using detail::Query;

Result<StudyRow> read_study(const Store::Impl& impl, const Query& q) {
  StudyRow s;
  s.id = q.i64(0);
  s.name = q.text(1);
  auto spec = parse_json(q.text(2), impl.path + ": study '" + s.name + "' spec");
  if (!spec) return std::unexpected(spec.error());
  s.spec = std::move(*spec);
  s.metric = q.text(3);
  s.direction = search::direction_from_string(q.text(4)).value_or(Direction::kMinimize);
  s.seed = q.i64(5);
  s.status = q.text(6);
  s.created = q.f64(7);
  s.updated = q.f64(8);
  s.checkpoint_bytes = q.i64(9);
  return s;
}

constexpr const char* kStudyColumns =
    "id, name, spec, metric, direction, seed, status, created, updated, checkpoint_bytes";

bool is_study_status(std::string_view status) {
  return status == "running" || status == "finished" || status == "interrupted";
}

}  // namespace

// ---------------------------------------------------------------- studies

Result<std::int64_t> Store::create_study(const StudyRow& study) {
  if (auto ok = impl_->writable("create study"); !ok) return std::unexpected(ok.error());
  if (!is_study_status(study.status)) {
    return fail(impl_->path + ": study '" + study.name + "': unknown status '" + study.status +
                "'");
  }
  auto spec = dump_json(study.spec, "study spec");
  if (!spec) return std::unexpected(spec.error());
  auto q = impl_->prepare(
      "INSERT INTO studies(name, spec, metric, direction, seed, status, created, updated) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  if (!q) return std::unexpected(q.error());
  q->bind(1, std::string_view(study.name))
      .bind(2, std::string_view(*spec))
      .bind(3, std::string_view(study.metric))
      .bind(4, search::to_string(study.direction))
      .bind(5, study.seed)
      .bind(6, std::string_view(study.status))
      .bind(7, study.created)
      .bind(8, study.created);
  if (q->step() != SQLITE_DONE) {
    if (sqlite3_extended_errcode(impl_->db.get()) == SQLITE_CONSTRAINT_UNIQUE) {
      return fail(impl_->path + ": a study named '" + study.name + "' already exists");
    }
    return std::unexpected(impl_->error("creating study '" + study.name + "'"));
  }
  return sqlite3_last_insert_rowid(impl_->db.get());
}

Result<std::optional<StudyRow>> Store::find_study(std::string_view name) {
  auto q = impl_->prepare(std::string("SELECT ") + kStudyColumns + " FROM studies WHERE name = ?");
  if (!q) return std::unexpected(q.error());
  q->bind(1, name);
  int rc = q->step();
  if (rc == SQLITE_DONE) return std::optional<StudyRow>();
  if (rc != SQLITE_ROW) return std::unexpected(impl_->error("finding a study"));
  auto row = read_study(*impl_, *q);
  if (!row) return std::unexpected(row.error());
  return std::optional<StudyRow>(std::move(*row));
}

Result<std::optional<StudyRow>> Store::get_study(std::int64_t id) {
  auto q = impl_->prepare(std::string("SELECT ") + kStudyColumns + " FROM studies WHERE id = ?");
  if (!q) return std::unexpected(q.error());
  q->bind(1, id);
  int rc = q->step();
  if (rc == SQLITE_DONE) return std::optional<StudyRow>();
  if (rc != SQLITE_ROW) return std::unexpected(impl_->error("reading a study"));
  auto row = read_study(*impl_, *q);
  if (!row) return std::unexpected(row.error());
  return std::optional<StudyRow>(std::move(*row));
}

Result<std::vector<StudyRow>> Store::list_studies() {
  auto q = impl_->prepare(std::string("SELECT ") + kStudyColumns + " FROM studies ORDER BY id");
  if (!q) return std::unexpected(q.error());
  std::vector<StudyRow> out;
  int rc;
  while ((rc = q->step()) == SQLITE_ROW) {
    auto row = read_study(*impl_, *q);
    if (!row) return std::unexpected(row.error());
    out.push_back(std::move(*row));
  }
  if (rc != SQLITE_DONE) return std::unexpected(impl_->error("listing studies"));
  return out;
}

Status Store::set_study_status(std::int64_t study, std::string_view status, double time) {
  if (auto ok = impl_->writable("set study status"); !ok) return ok;
  if (!is_study_status(status)) {
    return fail(impl_->path + ": unknown study status '" + std::string(status) +
                "' (running, finished, interrupted)");
  }
  auto q = impl_->prepare("UPDATE studies SET status = ?, updated = ? WHERE id = ?");
  if (!q) return std::unexpected(q.error());
  q->bind(1, status).bind(2, time).bind(3, study);
  if (auto ok = impl_->run(*q, "setting study status"); !ok) return ok;
  if (sqlite3_changes(impl_->db.get()) == 0) {
    return fail(impl_->path + ": no study with id " + std::to_string(study));
  }
  return {};
}

Status Store::set_study_checkpoint_bytes(std::int64_t study, std::int64_t bytes) {
  if (auto ok = impl_->writable("set study checkpoint bytes"); !ok) return ok;
  auto q = impl_->prepare("UPDATE studies SET checkpoint_bytes = ? WHERE id = ?");
  if (!q) return std::unexpected(q.error());
  q->bind(1, bytes).bind(2, study);
  return impl_->run(*q, "setting a study's checkpoint bytes");
}

Status Store::update_study_spec(std::int64_t study, const nlohmann::json& spec, double time) {
  if (auto ok = impl_->writable("update study spec"); !ok) return ok;
  auto text = dump_json(spec, "study spec");
  if (!text) return std::unexpected(text.error());
  auto q = impl_->prepare("UPDATE studies SET spec = ?, updated = ? WHERE id = ?");
  if (!q) return std::unexpected(q.error());
  q->bind(1, std::string_view(*text)).bind(2, time).bind(3, study);
  if (auto ok = impl_->run(*q, "updating study spec"); !ok) return ok;
  if (sqlite3_changes(impl_->db.get()) == 0) {
    return fail(impl_->path + ": no study with id " + std::to_string(study));
  }
  return {};
}

Result<std::map<TrialState, std::int64_t>> Store::count_trials(std::int64_t study) {
  auto q = impl_->prepare("SELECT state, count(*) FROM trials WHERE study = ? GROUP BY state");
  if (!q) return std::unexpected(q.error());
  q->bind(1, study);
  std::map<TrialState, std::int64_t> out;
  int rc;
  while ((rc = q->step()) == SQLITE_ROW) {
    if (auto s = search::trial_state_from_string(q->text(0))) out[*s] = q->i64(1);
  }
  if (rc != SQLITE_DONE) return std::unexpected(impl_->error("counting trials"));
  return out;
}

// ---------------------------------------------------------------- agents and events

Status Store::upsert_agent(std::string_view id, std::string_view host, const nlohmann::json& gpus,
                           int slots, double time, double stale_after) {
  if (auto ok = impl_->writable("record agent"); !ok) return ok;
  auto text = dump_json(gpus, "agent gpus");
  if (!text) return std::unexpected(text.error());
  auto q = impl_->prepare(
      "INSERT INTO agents(id, host, gpus, slots, first_seen, last_seen, state, stale_after) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?5, 'live', ?6) ON CONFLICT(id) DO UPDATE SET host = ?2, "
      "gpus = ?3, slots = ?4, last_seen = ?5, state = 'live', stale_after = ?6");
  if (!q) return std::unexpected(q.error());
  q->bind(1, id).bind(2, host).bind(3, std::string_view(*text)).bind(4, slots).bind(5, time);
  q->bind(6, stale_after);
  return impl_->run(*q, "recording agent");
}

Result<std::vector<AgentRow>> Store::agents() {
  // One pass over the trials for the running counts, not one per agent.
  auto q = impl_->prepare(
      "SELECT a.id, a.host, a.gpus, a.slots, a.first_seen, a.last_seen, a.drained, a.state, "
      "a.stale_after, coalesce(r.n, 0) FROM agents a LEFT JOIN (SELECT agent, count(*) AS n "
      "FROM trials WHERE state = 'RUNNING' GROUP BY agent) r ON r.agent = a.id "
      "ORDER BY a.first_seen, a.id");
  if (!q) return std::unexpected(q.error());
  std::vector<AgentRow> out;
  int rc;
  while ((rc = q->step()) == SQLITE_ROW) {
    AgentRow a;
    a.id = q->text(0);
    a.host = q->text(1);
    auto gpus = parse_json(q->text(2), impl_->path + ": agent '" + a.id + "' gpus");
    if (!gpus) return std::unexpected(gpus.error());
    a.gpus = std::move(*gpus);
    a.slots = static_cast<int>(q->i64(3));
    a.first_seen = q->f64(4);
    a.last_seen = q->f64(5);
    a.drained = q->text(6);
    a.state = q->text(7);
    a.stale_after = q->f64(8);
    a.running = q->i64(9);
    out.push_back(std::move(a));
  }
  if (rc != SQLITE_DONE) return std::unexpected(impl_->error("listing agents"));
  return out;
}

Status Store::set_agent_state(std::string_view id, std::string_view state, double last_seen) {
  if (auto ok = impl_->writable("record agent state"); !ok) return ok;
  auto q =
      impl_->prepare("UPDATE agents SET state = ?, last_seen = max(last_seen, ?) WHERE id = ?");
  if (!q) return std::unexpected(q.error());
  q->bind(1, state).bind(2, last_seen).bind(3, id);
  if (auto ok = impl_->run(*q, "recording agent state"); !ok) return ok;
  if (sqlite3_changes(impl_->db.get()) == 0) {
    return fail(ErrorCode::kNotFound, impl_->path + ": no agent '" + std::string(id) + "'");
  }
  return {};
}

Status Store::touch_agents(const std::vector<std::pair<std::string, double>>& seen) {
  if (auto ok = impl_->writable("record agent sightings"); !ok) return ok;
  for (const auto& [id, time] : seen) {
    auto q = impl_->prepare("UPDATE agents SET last_seen = ? WHERE id = ? AND last_seen < ?");
    if (!q) return std::unexpected(q.error());
    q->bind(1, time).bind(2, std::string_view(id)).bind(3, time);
    if (auto ok = impl_->run(*q, "recording agent sightings"); !ok) return ok;
  }
  return {};
}

std::string agent_status(const AgentRow& agent, double now) {
  const bool connected = agent.state == "live" || agent.state == "draining";
  if (connected && agent.stale_after > 0 && now - agent.last_seen > agent.stale_after) {
    return "lost";
  }
  if (agent.state == "live" && !agent.drained.empty()) return "drained";
  return agent.state;
}

Status Store::set_agent_drained(std::string_view id, std::string_view reason, double time) {
  if (auto ok = impl_->writable("drain agent"); !ok) return ok;
  auto q = impl_->prepare("UPDATE agents SET drained = NULLIF(?, ''), last_seen = ? WHERE id = ?");
  if (!q) return std::unexpected(q.error());
  q->bind(1, reason).bind(2, time).bind(3, id);
  if (auto ok = impl_->run(*q, "recording a drained agent"); !ok) return ok;
  if (sqlite3_changes(impl_->db.get()) == 0) {
    return fail(ErrorCode::kNotFound, impl_->path + ": no agent '" + std::string(id) + "'");
  }
  return {};
}

Result<std::int64_t> Store::prune_agent_records(std::size_t keep,
                                                const std::vector<std::string>& connected) {
  if (auto ok = impl_->writable("prune agent records"); !ok) return std::unexpected(ok.error());
  auto names = dump_json(nlohmann::json(connected), "connected agents");
  if (!names) return std::unexpected(names.error());
  const auto limit = static_cast<std::int64_t>(keep);
  std::int64_t deleted = 0;
  auto agents = impl_->prepare(
      "DELETE FROM agents WHERE id NOT IN (SELECT value FROM json_each(?1)) AND id NOT IN "
      "(SELECT id FROM agents ORDER BY last_seen DESC, id LIMIT ?2)");
  if (!agents) return std::unexpected(agents.error());
  agents->bind(1, std::string_view(*names)).bind(2, limit);
  if (auto r = impl_->run(*agents, "pruning agents"); !r) return std::unexpected(r.error());
  deleted += sqlite3_changes(impl_->db.get());
  auto events = impl_->prepare(
      "DELETE FROM events WHERE substr(kind, 1, 6) = 'agent_' AND id NOT IN (SELECT id FROM "
      "events WHERE substr(kind, 1, 6) = 'agent_' ORDER BY id DESC LIMIT ?1)");
  if (!events) return std::unexpected(events.error());
  events->bind(1, limit);
  if (auto r = impl_->run(*events, "pruning agent events"); !r) return std::unexpected(r.error());
  deleted += sqlite3_changes(impl_->db.get());
  return deleted;
}

Status Store::append_event(std::optional<std::int64_t> study, std::optional<std::int64_t> trial,
                           std::string_view kind, const nlohmann::json& detail, double time) {
  if (auto ok = impl_->writable("append event"); !ok) return ok;
  auto text = dump_json(detail, "event detail");
  if (!text) return std::unexpected(text.error());
  auto q =
      impl_->prepare("INSERT INTO events(study, trial, kind, detail, time) VALUES (?, ?, ?, ?, ?)");
  if (!q) return std::unexpected(q.error());
  q->bind(1, study).bind(2, trial).bind(3, kind).bind(4, std::string_view(*text)).bind(5, time);
  return impl_->run(*q, "appending event '" + std::string(kind) + "'");
}

namespace {

Result<std::vector<EventRow>> read_events(Store::Impl& impl, detail::Query& q) {
  std::vector<EventRow> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    EventRow e;
    e.id = q.i64(0);
    e.study = q.opt_i64(1);
    e.trial = q.opt_i64(2);
    e.kind = q.text(3);
    auto detail = parse_json(q.text(4), impl.path + ": event " + std::to_string(e.id));
    if (!detail) return std::unexpected(detail.error());
    e.detail = std::move(*detail);
    e.time = q.f64(5);
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return std::unexpected(impl.error("listing events"));
  return out;
}

}  // namespace

Result<std::vector<EventRow>> Store::events(std::optional<std::int64_t> study, std::size_t limit) {
  auto q = impl_->prepare(
      "SELECT id, study, trial, kind, detail, time FROM (SELECT * FROM events WHERE ?1 IS NULL "
      "OR study = ?1 ORDER BY id DESC LIMIT ?2) ORDER BY id");
  if (!q) return std::unexpected(q.error());
  q->bind(1, study).bind(2, limit == 0 ? std::int64_t{-1} : static_cast<std::int64_t>(limit));
  return read_events(*impl_, *q);
}

Result<std::vector<EventRow>> Store::trial_events(std::int64_t trial) {
  auto q = impl_->prepare(
      "SELECT id, study, trial, kind, detail, time FROM events WHERE trial = ? ORDER BY id");
  if (!q) return std::unexpected(q.error());
  q->bind(1, trial);
  return read_events(*impl_, *q);
}

}  // namespace hpo::results
