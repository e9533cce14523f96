#include "scheduler/studies.h"

#include "scheduler/log.h"
#include "scheduler/outcomes.h"
#include "search/study.h"

namespace hpo::scheduler {

using nlohmann::json;
namespace p = protocol;

Result<std::vector<Recovering>> Studies::load_unfinished(results::Store& store, double now) {
  // Remember what was RUNNING, then mark it INTERRUPTED. An INTERRUPTED trial that still
  // has its lease was awaiting its agent when the scheduler stopped (a restart inside the
  // recovery window of the one before, or a stop): its agent may still run it, so it
  // waits again rather than being requeued at once.
  auto rows = store.list_studies();
  if (!rows) return std::unexpected(rows.error());
  std::vector<std::pair<const results::StudyRow*, std::vector<RecoveringTrial>>> unfinished;
  for (const auto& row : *rows) {
    if (row.status == "finished") continue;
    std::vector<RecoveringTrial> rec;
    for (auto state : {search::TrialState::kRunning, search::TrialState::kInterrupted}) {
      auto trials = store.trials(row.id, state);
      if (!trials) return std::unexpected(trials.error());
      for (const auto& t : *trials) {
        if (state == search::TrialState::kRunning || !t.lease.empty()) {
          rec.push_back({t.number, t.id, t.attempt, t.lease, t.agent_key});
        }
      }
    }
    unfinished.emplace_back(&row, std::move(rec));
  }
  if (auto m = store.mark_running_interrupted(now); !m) return std::unexpected(m.error());
  std::vector<Recovering> recovering;
  for (auto& [row, rec] : unfinished) {
    auto index = load(store, *row, rec, now);
    if (!index) return std::unexpected(index.error());
    for (auto& r : rec) recovering.push_back(Recovering{*index, r});
    if (auto u = store.set_study_status(row->id, "running", now); !u) {
      return std::unexpected(u.error());
    }
  }
  return recovering;
}

Result<std::size_t> Studies::load(results::Store& store, const results::StudyRow& row,
                                  const std::vector<RecoveringTrial>& recovering, double now) {
  auto s = StudyRuntime::load(store, row, recovering, now);
  if (!s) return std::unexpected(s.error());
  std::size_t index = studies_.size();
  index_[row.name] = index;
  studies_.push_back(std::move(*s));
  return index;
}

namespace {

// Why the trials of `spec` could not be sent to an agent, or "": an ASSIGN carries the trial
// spec and a config, and a config is at most about as big as the search space.
std::string assign_too_big(const search::StudySpec& spec) {
  p::Assign worst{spec.name,
                  p::kMaxInteger,
                  p::kMaxInteger,
                  std::string(p::kMaxNameBytes, 'x'),
                  spec.raw.contains("space") ? spec.raw["space"] : json(),
                  spec.trial};
  const std::size_t bytes = p::encode(worst).body.size();
  if (bytes <= p::kMaxBodyBytes) return "";
  auto size_of = [](const json& j) {
    return std::to_string(j.dump(-1, ' ', false, json::error_handler_t::replace).size());
  };
  return "study '" + spec.name + "': a trial's ASSIGN message would take up to " +
         std::to_string(bytes) + " bytes (trial spec " + size_of(worst.spec) +
         " bytes, search space " + size_of(worst.config) + " bytes), over the limit of " +
         std::to_string(p::kMaxBodyBytes) + " bytes";
}

}  // namespace

Result<p::Message> Studies::submit(results::Store& store, const json& study, double now) {
  auto spec = search::parse_study(study, "SUBMIT");
  if (!spec) return p::ErrorReply{spec.error().message, false, false};
  if (auto why = assign_too_big(*spec); !why.empty()) return p::ErrorReply{why, false, false};
  auto row = store.find_study(spec->name);
  if (!row) return std::unexpected(row.error());
  std::int64_t id = 0;
  if (!*row) {
    results::StudyRow r;
    r.name = spec->name;
    r.spec = spec->raw;
    r.metric = spec->objective_metric;
    r.direction = spec->direction;
    r.seed = static_cast<std::int64_t>(spec->seed);
    r.status = "running";
    r.created = now;
    r.updated = now;
    auto created = store.create_study(r);
    if (!created) return std::unexpected(created.error());
    auto fresh = store.get_study(*created);
    if (!fresh) return std::unexpected(fresh.error());
    if (!*fresh) return fail("study '" + spec->name + "' vanished after create");
    if (auto l = load(store, **fresh, {}, now); !l) return std::unexpected(l.error());
    id = *created;
    log_line("study " + spec->name + " added");
  } else {
    id = (*row)->id;
    // The stored trials were valued and ranked by this objective: a new budget is fine, another
    // objective would mix two meanings in one study.
    if ((*row)->metric != spec->objective_metric || (*row)->direction != spec->direction) {
      auto shown = [](const std::string& metric, search::Direction d) {
        return "'" + metric + "' (" +
               (d == search::Direction::kMinimize ? "minimize" : "maximize") + ")";
      };
      return p::ErrorReply{"study '" + spec->name + "' exists with the objective " +
                               shown((*row)->metric, (*row)->direction) +
                               "; a SUBMIT may change its budget, not its objective metric or "
                               "direction (got " +
                               shown(spec->objective_metric, spec->direction) + ")",
                           false, false};
    }
    const bool changed = (*row)->spec != spec->raw;
    if (changed) {
      if (auto u = store.update_study_spec(id, spec->raw, now); !u)
        return std::unexpected(u.error());
    }
    if (auto u = store.set_study_status(id, "running", now); !u) return std::unexpected(u.error());
    if (auto index = find(spec->name)) {
      auto& s = *studies_[*index];
      if (changed) {
        if (auto u = s.update_spec(*spec); !u) return p::ErrorReply{u.error().message, false, false};
        log_line("study " + spec->name + " updated (new spec)");
      }
      s.marked_finished = false;
    } else {
      auto fresh = store.get_study(id);
      if (!fresh) return std::unexpected(fresh.error());
      if (auto l = load(store, **fresh, {}, now); !l) return std::unexpected(l.error());
      log_line("study " + spec->name + " continued");
    }
  }
  return p::Ok{json{{"study", spec->name}, {"id", id}}};
}

Result<std::vector<Studies::Stop>> Studies::wind_down(results::Store& store, LeaseTable& leases,
                                                      double now) {
  std::vector<Stop> stops;
  std::vector<std::string> why(studies_.size());
  bool any = false;
  for (std::size_t i = 0; i < studies_.size(); ++i) {
    auto& s = *studies_[i];
    if (s.marked_finished || !s.ending(now, &why[i])) continue;
    why[i] = "study finished: " + why[i];
    any = true;
    if (auto r = cancel_queued(store, s, why[i], now); !r) return std::unexpected(r.error());
    if (auto r = end_paused(store, s, why[i], now); !r) return std::unexpected(r.error());
  }
  if (!any) return stops;
  for (const auto& [id, held] : leases.all()) {
    if (why[held.study].empty() || !held.cancelled.empty()) continue;
    Lease& l = *leases.find(id);
    l.cancelled = why[l.study];
    log_line("stopping " + studies_[l.study]->name() + "#" + std::to_string(l.number) + " (" +
             l.cancelled + ")");
    stops.emplace_back(l.agent, protocol::Decision{l.number, l.attempt, id, true});
  }
  return stops;
}

Status Studies::record_finished(results::Store& store, double now) {
  for (auto& sp : studies_) {
    auto& s = *sp;
    std::string why;
    if (s.marked_finished || !s.finished(now, &why)) continue;
    s.marked_finished = true;
    // Nothing runs and nothing can be promoted any more: what is still paused is done.
    if (auto r = end_paused(store, s, "not promoted before the study finished (" + why + ")", now);
        !r) {
      return r;
    }
    if (auto r = store.set_study_status(s.id(), "finished", now); !r) return r;
    std::string best = s.best() ? std::to_string(*s.best()) : "none";
    log_line("study " + s.name() + " finished (" + why + "): " + std::to_string(s.trial_count()) +
             " trial(s), best " + best);
    if (auto r = store.append_event(s.id(), std::nullopt, "study_finished",
                                    json{{"reason", why}, {"trials", s.trial_count()}}, now);
        !r) {
      return r;
    }
  }
  return {};
}

bool Studies::all_done() const {
  for (const auto& s : studies_) {
    if (!s->marked_finished) return false;
  }
  return true;
}

std::optional<std::size_t> Studies::find(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

}  // namespace hpo::scheduler
