#include "scheduler/daemon.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <random>
#include <unordered_map>
#include <vector>

#include "scheduler/protocol.h"
#include "scheduler/study.h"

namespace hpo::scheduler {
namespace {

using nlohmann::json;
using search::TrialState;
namespace p = protocol;

struct AgentState {
  std::string routing_id;
  std::string name;
  int slots = 0;
  int free = 0;           // slots the scheduler may still lease on this agent
  bool stopping = false;  // said READY draining: do not refill
  std::int64_t leases = 0;
  double last_heard = 0;  // monotonic
  double last_sent = 0;
};

struct Lease {
  std::size_t study = 0;  // index into State::studies
  std::int64_t number = 0;
  std::int64_t attempt = 0;
  std::string agent;  // routing id
  std::int64_t last_step = 0;
};

struct Recovering {
  std::size_t study = 0;
  RecoveringTrial trial;
};

std::string random_hex() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

}  // namespace

struct Daemon::State {
  const Clock* clock = nullptr;
  DaemonOptions options;
  std::optional<results::Store> store;
  std::unique_ptr<zmq::socket_t> router;
  std::string instance;
  std::string endpoint;

  std::vector<std::unique_ptr<StudyRuntime>> studies;
  std::unordered_map<std::string, std::size_t> study_index;  // by name
  std::size_t next_study = 0;                                // round-robin cursor

  std::unordered_map<std::string, AgentState> agents;        // by routing id
  std::unordered_map<std::string, std::string> agent_names;  // name -> routing id
  std::unordered_map<std::string, Lease> leases;             // by lease id
  std::unordered_map<std::string, Recovering> recovering;    // by lease id
  double recovery_deadline = 0;

  std::vector<std::pair<std::string, p::Message>> outbox;
  bool shutting_down = false;
  Stats stats;

  double window() const { return options.heartbeat_ms / 1000.0 * options.liveness; }
  double mono() const { return clock->monotonic(); }
  double now() const { return clock->now(); }

  void log(const std::string& line) const { std::cerr << "hpo scheduler: " << line << "\n"; }

  void reply(const std::string& to, p::Message m) { outbox.emplace_back(to, std::move(m)); }

  static std::string lease_id(const StudyRuntime& s, std::int64_t number, std::int64_t attempt) {
    return std::to_string(s.id()) + "." + std::to_string(number) + "." + std::to_string(attempt);
  }

  std::string trial_name(const Lease& l) const {
    return studies[l.study]->name() + "#" + std::to_string(l.number);
  }

  // --- store helpers: any error is fatal for the turn ---
  Status check(const Status& s) { return s; }

  // A trial that lost its run (agent lost or left, lease dropped): INTERRUPTED
  // in the store and back in the queue with the next attempt.
  Status interrupt_and_requeue(std::size_t si, std::int64_t number, const std::string& why) {
    auto& s = *studies[si];
    std::int64_t id = s.trial_id(number);
    double t = now();
    if (auto r = store->finish_trial(id, TrialState::kInterrupted, std::nullopt, why, "", t); !r)
      return r;
    if (auto r = store->requeue_trial(id, t); !r) return r;
    s.requeued(number, /*front=*/true);
    return {};
  }

  Status drop_agent(const std::string& routing_id, const std::string& why) {
    auto it = agents.find(routing_id);
    if (it == agents.end()) return {};
    std::string name = it->second.name;
    std::vector<std::string> held;
    for (const auto& [id, l] : leases) {
      if (l.agent == routing_id) held.push_back(id);
    }
    for (const auto& id : held) {
      Lease l = leases[id];
      leases.erase(id);
      if (auto r = interrupt_and_requeue(l.study, l.number, "agent " + name + " " + why); !r)
        return r;
    }
    auto n = agent_names.find(name);
    if (n != agent_names.end() && n->second == routing_id) agent_names.erase(n);
    agents.erase(it);
    log("agent " + name + " " + why +
        (held.empty() ? "" : "; requeued " + std::to_string(held.size()) + " trial(s)"));
    return store->append_event(std::nullopt, std::nullopt, "agent_" + why.substr(0, why.find(' ')),
                               json{{"agent", name}, {"requeued", held.size()}}, now());
  }

  // --- message handlers ---
  Status on_hello(const std::string& from, const p::Hello& h) {
    p::Welcome w{instance, options.heartbeat_ms, options.liveness, {}, {}};
    // The same agent name under another routing id: the agent reconnected
    // with a new socket. Its leases move here if it re-announces them.
    std::string old_routing;
    if (auto n = agent_names.find(h.agent); n != agent_names.end()) old_routing = n->second;
    if (agents.count(from)) old_routing = from;
    std::unordered_map<std::string, const p::RunningTrial*> announced;
    for (const auto& t : h.running) announced[t.lease] = &t;

    auto matches = [&](const p::RunningTrial& t, std::size_t si, std::int64_t number,
                       std::int64_t attempt) {
      return studies[si]->name() == t.study && number == t.trial && attempt == t.attempt;
    };
    AgentState a;
    a.routing_id = from;
    a.name = h.agent;
    a.slots = h.slots;
    a.last_heard = mono();
    a.last_sent = mono();
    // Leases of the old connection: kept when announced, else interrupted.
    if (!old_routing.empty()) {
      std::vector<std::string> held;
      for (const auto& [id, l] : leases) {
        if (l.agent == old_routing) held.push_back(id);
      }
      for (const auto& id : held) {
        auto& l = leases[id];
        auto t = announced.find(id);
        if (t != announced.end() && matches(*t->second, l.study, l.number, l.attempt)) {
          l.agent = from;
          ++a.leases;
          w.adopted.push_back(id);
          announced.erase(t);
        }
      }
      if (auto r = drop_agent(old_routing, "reconnected"); !r) return r;
    }
    for (const auto& [id, t] : announced) {
      auto rec = recovering.find(id);
      if (rec != recovering.end() &&
          matches(*t, rec->second.study, rec->second.trial.number, rec->second.trial.attempt)) {
        const auto& r = rec->second;
        auto& s = *studies[r.study];
        if (auto st = store->start_trial(r.trial.trial_id, r.trial.attempt, id, h.agent, now());
            !st) {
          return st;
        }
        s.readopted(r.trial.number);
        leases[id] = Lease{r.study, r.trial.number, r.trial.attempt, from, 0};
        ++a.leases;
        ++stats.readopted;
        w.adopted.push_back(id);
        if (options.verbose) log("re-adopted " + s.name() + "#" + std::to_string(r.trial.number));
        recovering.erase(rec);
      } else if (leases.count(id) == 0 || leases[id].agent != from) {
        w.stop.push_back(id);
      }
    }
    a.free = 0;  // until READY
    agents[from] = a;
    agent_names[h.agent] = from;
    if (auto r = store->upsert_agent(h.agent, h.host, h.gpus, h.slots, now()); !r) return r;
    log("agent " + h.agent + " joined (" + std::to_string(h.slots) + " slot(s), re-adopted " +
        std::to_string(w.adopted.size()) + ", stopped " + std::to_string(w.stop.size()) + ")");
    if (auto r = store->append_event(std::nullopt, std::nullopt, "agent_joined",
                                     json{{"agent", h.agent},
                                          {"host", h.host},
                                          {"slots", h.slots},
                                          {"readopted", w.adopted.size()}},
                                     now());
        !r) {
      return r;
    }
    reply(from, std::move(w));
    return {};
  }

  Status on_ready(AgentState& a, const p::Ready& r) {
    a.stopping = r.draining;
    a.free = std::max<std::int64_t>(0, std::min<std::int64_t>(r.free_slots, a.slots - a.leases));
    return {};
  }

  // The lease a REPORT/FINISH names, if it is live and held by the sender.
  Lease* fenced(const std::string& from, const std::string& study, std::int64_t trial,
                std::int64_t attempt, const std::string& lease, std::string_view type) {
    auto it = leases.find(lease);
    if (it != leases.end() && it->second.agent == from && it->second.number == trial &&
        it->second.attempt == attempt && studies[it->second.study]->name() == study) {
      return &it->second;
    }
    ++stats.ignored;
    log("ignored " + std::string(type) + " for " + study + "#" + std::to_string(trial) +
        " attempt " + std::to_string(attempt) + " lease " + lease + " (no such live lease)");
    return nullptr;
  }

  Status on_report(const std::string& from, const p::Report& m) {
    Lease* l = fenced(from, m.study, m.trial, m.attempt, m.lease, "REPORT");
    p::Decision d{m.trial, m.attempt, m.lease, true};
    if (l) {
      auto& s = *studies[l->study];
      std::int64_t id = s.trial_id(l->number);
      double t = now();
      std::optional<double> objective;
      for (const auto& [name, value] : m.metrics) {
        if (auto r = store->record_metric(id, m.step, name, value, t); !r) return r;
        if (name == s.spec().objective_metric) objective = value;
      }
      l->last_step = std::max(l->last_step, m.step);
      d.stop = s.reported(l->number, m.step, objective) || s.time_up(t);
      if (d.stop && options.verbose) log("pruning " + trial_name(*l));
    }
    reply(from, d);
    return {};
  }

  Status on_finish(AgentState& a, const p::Finish& m) {
    reply(a.routing_id, p::Ack{m.trial, m.attempt, m.lease});
    Lease* found = fenced(a.routing_id, m.study, m.trial, m.attempt, m.lease, "FINISH");
    if (!found) return {};
    Lease l = *found;
    leases.erase(m.lease);
    --a.leases;
    if (!a.stopping) a.free = std::min<std::int64_t>(a.free + 1, a.slots - a.leases);
    ++stats.completed;
    auto& s = *studies[l.study];
    std::int64_t id = s.trial_id(l.number);
    double t = now();
    for (const auto& [name, value] : m.metrics) {
      if (auto r = store->record_metric(id, l.last_step, name, value, t); !r) return r;
    }
    const std::string& metric = s.spec().objective_metric;
    std::optional<double> value;
    if (auto it = m.metrics.find(metric); it != m.metrics.end()) value = it->second;
    const auto& rec = s.history()[l.number];
    switch (m.outcome) {
      case p::Outcome::kOk:
        if (!value) {
          return failed_attempt(s, l, "final metrics lack the objective '" + metric + "'",
                                m.log_tail);
        }
        if (auto r = store->finish_trial(id, TrialState::kCompleted, value, "", m.log_tail, t); !r)
          return r;
        s.completed(l.number, value, TrialState::kCompleted);
        if (options.verbose) log(trial_name(l) + " completed: " + std::to_string(*value));
        return {};
      case p::Outcome::kPruned:
        if (!value && !rec.intermediates.empty()) value = rec.intermediates.back().value;
        if (auto r = store->finish_trial(id, TrialState::kPruned, value, "", m.log_tail, t); !r)
          return r;
        s.completed(l.number, value, TrialState::kPruned);
        return {};
      case p::Outcome::kFailed:
        return failed_attempt(s, l, m.error.empty() ? "trial failed" : m.error, m.log_tail);
      case p::Outcome::kInterrupted:
        return interrupt_and_requeue(l.study, l.number,
                                     m.error.empty() ? "interrupted on the agent" : m.error);
    }
    return {};
  }

  Status failed_attempt(StudyRuntime& s, const Lease& l, const std::string& error,
                        const std::string& log_tail) {
    std::int64_t id = s.trial_id(l.number);
    double t = now();
    int failures = s.count_failure(l.number);
    if (failures <= s.spec().max_retries) {
      if (auto r = store->append_event(s.id(), id, "retry",
                                       json{{"attempt", l.attempt}, {"error", error}}, t);
          !r) {
        return r;
      }
      if (auto r = store->requeue_trial(id, t); !r) return r;
      s.requeued(l.number, /*front=*/true);
      log(trial_name(l) + " attempt " + std::to_string(l.attempt) + " failed (" + error +
          "); retrying");
      return {};
    }
    if (auto r = store->finish_trial(id, TrialState::kFailed, std::nullopt, error, log_tail, t); !r)
      return r;
    s.failed(l.number);
    log(trial_name(l) + " FAILED: " + error);
    return {};
  }

  Status on_submit(const std::string& from, const p::Submit& m);

  Status handle(const std::string& from, p::Message m) {
    if (auto* h = std::get_if<p::Hello>(&m)) return on_hello(from, *h);
    if (auto* sub = std::get_if<p::Submit>(&m)) return on_submit(from, *sub);
    auto it = agents.find(from);
    if (it == agents.end()) {
      // Unknown sender: restarted scheduler, or an agent declared lost.
      if (!std::holds_alternative<p::Bye>(m)) {
        if (std::holds_alternative<p::Finish>(m) || std::holds_alternative<p::Report>(m)) {
          ++stats.ignored;
        }
        reply(from, p::ErrorReply{"unknown agent; say HELLO", true});
      }
      return {};
    }
    AgentState& a = it->second;
    a.last_heard = mono();
    if (auto* r = std::get_if<p::Ready>(&m)) return on_ready(a, *r);
    if (auto* r = std::get_if<p::Report>(&m)) return on_report(from, *r);
    if (auto* f = std::get_if<p::Finish>(&m)) return on_finish(a, *f);
    if (std::holds_alternative<p::Heartbeat>(m)) return {};
    if (std::holds_alternative<p::Bye>(m)) return drop_agent(from, "left");
    log("agent " + a.name + " sent unexpected " + std::string(p::type_name(m)) + "; ignored");
    return {};
  }

  // --- timers ---
  Status expire() {
    double m = mono();
    std::vector<std::string> lost;
    for (const auto& [id, a] : agents) {
      if (m - a.last_heard > window()) lost.push_back(id);
    }
    for (const auto& id : lost) {
      ++stats.agents_lost;
      if (auto r = drop_agent(id, "lost (silent for " + std::to_string(window()) + " s)"); !r)
        return r;
    }
    if (!recovering.empty() && m >= recovery_deadline) {
      log("recovery window closed: requeueing " + std::to_string(recovering.size()) +
          " trial(s) no agent re-announced");
      for (const auto& [id, r] : recovering) {
        auto& s = *studies[r.study];
        if (auto q = store->requeue_trial(r.trial.trial_id, now()); !q) return q;
        s.requeued(r.trial.number, /*front=*/true);
      }
      recovering.clear();
    }
    return {};
  }

  // Leases trials to free slots: one per agent per pass, studies round-robin.
  Status dispatch() {
    if (shutting_down || studies.empty()) return {};
    std::vector<AgentState*> free;
    for (auto& [id, a] : agents) {
      if (a.free > 0) free.push_back(&a);
    }
    double t = now();
    bool progress = true;
    while (progress && !free.empty()) {
      progress = false;
      for (AgentState* a : free) {
        if (a->free <= 0) continue;
        // The next study (round-robin) that can lease and has a trial.
        std::optional<std::int64_t> number;
        std::size_t si = 0;
        for (std::size_t k = 0; k < studies.size() && !number; ++k) {
          si = (next_study + k) % studies.size();
          if (!studies[si]->can_lease(t)) continue;
          auto n = studies[si]->next_trial(*store, t);
          if (!n) return std::unexpected(n.error());
          number = *n;
        }
        if (!number) return {};
        next_study = (si + 1) % studies.size();
        auto& s = *studies[si];
        std::int64_t attempt = s.next_attempt(*number);
        std::string id = lease_id(s, *number, attempt);
        if (auto r = store->start_trial(s.trial_id(*number), attempt, id, a->name, t); !r) return r;
        s.started(*number, attempt);
        leases[id] = Lease{si, *number, attempt, a->routing_id, 0};
        --a->free;
        ++a->leases;
        ++stats.assigned;
        if (options.verbose) {
          log("lease " + id + ": " + s.name() + "#" + std::to_string(*number) + " attempt " +
              std::to_string(attempt) + " -> " + a->name);
        }
        reply(a->routing_id, p::Assign{s.name(), *number, attempt, id, s.history()[*number].config,
                                       s.spec().trial});
        progress = true;
      }
    }
    return {};
  }

  Status mark_finished() {
    for (auto& sp : studies) {
      auto& s = *sp;
      std::string why;
      if (s.marked_finished || !s.finished(now(), &why)) continue;
      s.marked_finished = true;
      if (auto r = store->set_study_status(s.id(), "finished", now()); !r) return r;
      std::string best = s.best() ? std::to_string(*s.best()) : "none";
      log("study " + s.name() + " finished (" + why + "): " + std::to_string(s.trial_count()) +
          " trial(s), best " + best);
      if (auto r = store->append_event(s.id(), std::nullopt, "study_finished",
                                       json{{"reason", why}, {"trials", s.trial_count()}}, now());
          !r) {
        return r;
      }
    }
    return {};
  }

  void flush() {
    double m = mono();
    for (auto& [to, msg] : outbox) {
      if (auto s = p::send(*router, msg, to); !s) {
        log(s.error().message);
      } else if (auto it = agents.find(to); it != agents.end()) {
        it->second.last_sent = m;
      }
    }
    outbox.clear();
    double beat = options.heartbeat_ms / 1000.0;
    for (auto& [id, a] : agents) {
      if (m - a.last_sent >= beat) {
        (void)p::send(*router, p::Heartbeat{}, id);
        a.last_sent = m;
      }
    }
  }

  double next_timer() const {
    double m = mono();
    double next = m + options.heartbeat_ms / 1000.0;
    for (const auto& [id, a] : agents) {
      next = std::min(next, a.last_sent + options.heartbeat_ms / 1000.0);
      next = std::min(next, a.last_heard + window() + 1e-3);
    }
    if (!recovering.empty()) next = std::min(next, recovery_deadline);
    return std::max(0.0, next - m);
  }

  Result<std::size_t> load_study(const results::StudyRow& row,
                                 const std::vector<RecoveringTrial>& rec) {
    auto s = StudyRuntime::load(*store, row, rec, now());
    if (!s) return std::unexpected(s.error());
    std::size_t index = studies.size();
    study_index[row.name] = index;
    studies.push_back(std::move(*s));
    return index;
  }
};

Status Daemon::State::on_submit(const std::string& from, const p::Submit& m) {
  auto spec = search::parse_study(m.study, "SUBMIT");
  if (!spec) {
    reply(from, p::ErrorReply{spec.error().message, false});
    return {};
  }
  // add_study writes in the turn's open transaction: the caller (turn) holds it.
  auto row = store->find_study(spec->name);
  if (!row) return std::unexpected(row.error());
  double t = now();
  std::int64_t id = 0;
  if (!*row) {
    results::StudyRow r;
    r.name = spec->name;
    r.spec = spec->raw;
    r.metric = spec->objective_metric;
    r.direction = spec->direction;
    r.seed = static_cast<std::int64_t>(spec->seed);
    r.status = "running";
    r.created = t;
    r.updated = t;
    auto created = store->create_study(r);
    if (!created) return std::unexpected(created.error());
    auto fresh = store->get_study(*created);
    if (!fresh) return std::unexpected(fresh.error());
    if (!*fresh) return fail("study '" + spec->name + "' vanished after create");
    if (auto l = load_study(**fresh, {}); !l) return std::unexpected(l.error());
    id = *created;
    log("study " + spec->name + " added");
  } else {
    id = (*row)->id;
    const bool changed = (*row)->spec != spec->raw;
    if (changed) {
      if (auto u = store->update_study_spec(id, spec->raw, t); !u) return u;
    }
    if (auto u = store->set_study_status(id, "running", t); !u) return u;
    auto it = study_index.find(spec->name);
    if (it != study_index.end()) {
      auto& s = *studies[it->second];
      if (changed) {
        if (auto u = s.update_spec(*spec); !u) {
          reply(from, p::ErrorReply{u.error().message, false});
          return {};
        }
        log("study " + spec->name + " updated (new spec)");
      }
      s.marked_finished = false;
    } else {
      auto fresh = store->get_study(id);
      if (!fresh) return std::unexpected(fresh.error());
      if (auto l = load_study(**fresh, {}); !l) return std::unexpected(l.error());
      log("study " + spec->name + " continued");
    }
  }
  reply(from, p::Ok{json{{"study", spec->name}, {"id", id}}});
  return {};
}

Daemon::Daemon() : state_(std::make_unique<State>()) {}
Daemon::~Daemon() = default;

Result<std::unique_ptr<Daemon>> Daemon::create(zmq::context_t& context, results::Store store,
                                               DaemonOptions options, const Clock& clock) {
  std::unique_ptr<Daemon> d(new Daemon());
  State& s = *d->state_;
  s.clock = &clock;
  s.options = options;
  if (s.options.heartbeat_ms < 1) s.options.heartbeat_ms = 1;
  if (s.options.liveness < 1) s.options.liveness = 1;
  if (s.options.recovery_grace_s < 0) s.options.recovery_grace_s = 2 * s.window();
  s.store.emplace(std::move(store));
  s.instance = random_hex();
  try {
    s.router = std::make_unique<zmq::socket_t>(context, zmq::socket_type::router);
    s.router->set(zmq::sockopt::linger, 0);
    s.router->set(zmq::sockopt::sndhwm, 100000);
    s.router->set(zmq::sockopt::rcvhwm, 100000);
    // A frame far over the decoder's limit is refused by ZeroMQ before it is
    // buffered (the decoder itself checks kMaxBodyBytes).
    s.router->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(4 * p::kMaxBodyBytes));
    s.router->bind(options.bind);
    s.endpoint = s.router->get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return fail("scheduler: cannot bind '" + options.bind + "': " + e.what());
  }

  // Recovery: remember what was RUNNING, then mark it INTERRUPTED.
  auto txn = s.store->begin();
  if (!txn) return std::unexpected(txn.error());
  auto rows = s.store->list_studies();
  if (!rows) return std::unexpected(rows.error());
  std::vector<std::pair<const results::StudyRow*, std::vector<RecoveringTrial>>> load;
  for (const auto& row : *rows) {
    if (row.status == "finished") continue;
    auto running = s.store->trials(row.id, TrialState::kRunning);
    if (!running) return std::unexpected(running.error());
    std::vector<RecoveringTrial> rec;
    for (const auto& t : *running) rec.push_back({t.number, t.id, t.attempt, t.lease});
    load.emplace_back(&row, std::move(rec));
  }
  if (auto m = s.store->mark_running_interrupted(s.now()); !m) return std::unexpected(m.error());
  s.recovery_deadline = s.mono() + s.options.recovery_grace_s;
  for (auto& [row, rec] : load) {
    auto index = s.load_study(*row, rec);
    if (!index) return std::unexpected(index.error());
    for (auto& r : rec) s.recovering[r.lease] = Recovering{*index, r};
    if (auto u = s.store->set_study_status(row->id, "running", s.now()); !u)
      return std::unexpected(u.error());
  }
  if (auto c = txn->commit(); !c) return std::unexpected(c.error());
  if (!s.recovering.empty()) {
    s.log("recovered " + std::to_string(s.recovering.size()) + " running trial(s); waiting " +
          std::to_string(s.options.recovery_grace_s) + " s for their agents to re-announce them");
  }
  s.log("listening on " + s.endpoint + " (" + std::to_string(s.studies.size()) + " study(ies))");
  return d;
}

Status Daemon::add_study(const search::StudySpec& spec) {
  State& s = *state_;
  auto txn = s.store->begin();
  if (!txn) return std::unexpected(txn.error());
  if (auto r = s.on_submit("", p::Submit{spec.raw}); !r) return r;
  if (auto c = txn->commit(); !c) return c;
  // on_submit answers the (here absent) peer; turn its answer into our result.
  auto answer = std::move(s.outbox.back().second);
  s.outbox.pop_back();
  if (auto* e = std::get_if<p::ErrorReply>(&answer)) return fail(e->message);
  return {};
}

std::string Daemon::endpoint() const { return state_->endpoint; }

Status Daemon::turn(std::chrono::milliseconds max_wait) {
  State& s = *state_;
  ++s.stats.turns;
  auto wait = std::min<std::int64_t>(max_wait.count(),
                                     static_cast<std::int64_t>(s.next_timer() * 1000.0 + 0.999));
  zmq::pollitem_t item{s.router->handle(), 0, ZMQ_POLLIN, 0};
  try {
    zmq::poll(&item, 1, std::chrono::milliseconds(std::max<std::int64_t>(0, wait)));
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) return fail(std::string("scheduler: poll: ") + e.what());
  }
  auto txn = s.store->begin();
  if (!txn) return std::unexpected(txn.error());
  for (std::size_t i = 0; i < s.options.max_batch; ++i) {
    auto r = p::receive(*s.router, /*router=*/true);
    if (!r) break;
    if (!r->message) {
      ++s.stats.bad_messages;
      s.log("dropped bad message: " + r->message.error().message);
      continue;
    }
    if (auto h = s.handle(r->routing_id, std::move(*r->message)); !h) return h;
  }
  if (auto e = s.expire(); !e) return e;
  if (auto d = s.dispatch(); !d) return d;
  if (auto m = s.mark_finished(); !m) return m;
  if (auto c = txn->commit(); !c) return c;
  s.flush();
  return {};
}

void Daemon::begin_shutdown() {
  if (state_->shutting_down) return;
  state_->shutting_down = true;
  state_->log("stopping: no new trials; waiting up to " +
              std::to_string(state_->options.shutdown_grace_s) + " s for " +
              std::to_string(state_->leases.size()) + " running trial(s)");
}

Status Daemon::finish_shutdown() {
  State& s = *state_;
  auto txn = s.store->begin();
  if (!txn) return std::unexpected(txn.error());
  double t = s.now();
  for (const auto& [id, l] : s.leases) {
    auto& study = *s.studies[l.study];
    if (auto r = s.store->finish_trial(study.trial_id(l.number), TrialState::kInterrupted,
                                       std::nullopt, "scheduler stopped", "", t);
        !r) {
      return r;
    }
  }
  if (!s.leases.empty()) {
    s.log("recorded " + std::to_string(s.leases.size()) + " running trial(s) INTERRUPTED");
  }
  s.leases.clear();
  for (const auto& study : s.studies) {
    if (!study->marked_finished) {
      if (auto r = s.store->set_study_status(study->id(), "interrupted", t); !r) return r;
    }
  }
  return txn->commit();
}

Status Daemon::run(const std::atomic<bool>& stop) {
  State& s = *state_;
  double deadline = 0;
  while (true) {
    if (stop.load() && !s.shutting_down) {
      begin_shutdown();
      deadline = s.mono() + s.options.shutdown_grace_s;
    }
    if (s.shutting_down && (s.leases.empty() || s.mono() >= deadline)) break;
    if (!s.shutting_down && s.options.exit_when_done && all_done() && s.leases.empty()) break;
    if (auto t = turn(std::chrono::milliseconds(s.shutting_down ? 50 : 250)); !t) return t;
  }
  return finish_shutdown();
}

bool Daemon::all_done() const {
  for (const auto& s : state_->studies) {
    if (!s->marked_finished) return false;
  }
  return true;
}

Daemon::Stats Daemon::stats() const {
  Stats st = state_->stats;
  st.agents = static_cast<std::int64_t>(state_->agents.size());
  st.leases = static_cast<std::int64_t>(state_->leases.size());
  st.recovering = static_cast<std::int64_t>(state_->recovering.size());
  return st;
}

}  // namespace hpo::scheduler
