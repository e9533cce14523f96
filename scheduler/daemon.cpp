// The daemon's loop and its message handlers (daemon.h). Over 450 lines: State holds the
// handlers of every message type, the per-message unit (savepoint, refusal, the FINISH that
// cannot be recorded) and the timers; its pieces (agents, leases, dispatcher, studies,
// outcomes, outbox) live in files of their own. Next to split: the HELLO handling.
#include "scheduler/daemon.h"

#include <algorithm>
#include <map>
#include <cstdio>
#include <optional>
#include <random>
#include <vector>

#include "scheduler/agent_records.h"
#include "scheduler/agents.h"
#include "scheduler/dispatcher.h"
#include "scheduler/leases.h"
#include "scheduler/log.h"
#include "scheduler/outbox.h"
#include "scheduler/outcomes.h"
#include "scheduler/protocol.h"
#include "scheduler/studies.h"
#include "scheduler/transfers.h"

namespace hpo::scheduler {
namespace {

using nlohmann::json;
using search::TrialState;
namespace p = protocol;

// "5 s", "2.5 s": a duration for a log line.
std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", s);
  return buf;
}

std::string random_hex() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

}  // namespace

// Everything the loop owns. Each piece keeps its own part of the state
// (agents, leases, studies, the round-robin cursor, the replies); the
// handlers here read a message, ask the pieces, write the store and reply.
struct Daemon::State {
  const Clock* clock = nullptr;
  DaemonOptions options;
  std::optional<results::Store> store;
  std::unique_ptr<zmq::socket_t> router;
  std::string instance;
  std::string endpoint;

  Studies studies;
  AgentRegistry agents{1.0, 1};  // replaced in create() from the options
  AgentRecords records;          // likewise
  LeaseTable leases;
  Dispatcher dispatcher;
  Outbox outbox;
  bool shutting_down = false;
  Stats stats;
  // Security: the ZAP handler and the lists it answers from (null/empty on plaintext).
  std::unique_ptr<ZapHandler> zap;
  KeyLists keys;
  bool open_to_all = false;            // plaintext on an address others can reach (--insecure)
  double insecure_warned = -1e18;      // monotonic time of the last warning about it
  double refusal_log_window = -1e18;   // handshake refusals logged in the current second
  int refusal_logs = 0;
  std::size_t joins_since_prune = 0;  // new agent connections since the last prune
  std::optional<Transfers> transfers;  // checkpoints in and out (none without checkpoint_dir)
  std::optional<p::SharedCheckpoints> shared_checkpoints;  // told in WELCOME when shared

  double mono() const { return clock->monotonic(); }
  double now() const { return clock->now(); }

  void reply(const std::string& to, p::Message m) { outbox.push(to, std::move(m)); }

  // Forgets an agent; the trials it held are interrupted and requeued.
  // Releases and requeues the leases `routing_id` holds, except those in `kept`, each
  // recorded INTERRUPTED with `why`; returns how many were requeued.
  Result<std::size_t> requeue_held(const std::string& routing_id, const std::string& why,
                                   const std::vector<std::string>& kept = {}) {
    std::size_t requeued = 0;
    for (const auto& id : leases.held_by(routing_id)) {
      if (std::find(kept.begin(), kept.end(), id) != kept.end()) continue;
      Lease l = *leases.release(id);
      if (auto r = end_run(*store, studies[l.study], l, why, now()); !r) {
        return std::unexpected(r.error());
      }
      ++requeued;
    }
    return requeued;
  }

  Status drop_agent(const std::string& routing_id, const std::string& why) {
    const Agent* a = agents.find(routing_id);
    if (!a) return {};
    std::string name = a->name;
    // left, lost, revoked or reconnected; a reconnect's HELLO records the agent itself.
    const std::string kind = why.substr(0, why.find(' '));
    if (kind != "reconnected") {
      if (auto r = AgentRecords::changed(*store, *a, kind, mono(), now()); !r) return r;
    }
    auto requeued = requeue_held(routing_id, "agent " + name + " " + why);
    if (!requeued) return std::unexpected(requeued.error());
    agents.remove(routing_id);
    log_line("agent " + name + " " + why +
             (*requeued == 0 ? "" : "; requeued " + std::to_string(*requeued) + " trial(s)"));
    return store->append_event(std::nullopt, std::nullopt, "agent_" + kind,
                               json{{"agent", name}, {"requeued", *requeued}}, now());
  }

  // --- message handlers ---
  Status on_hello(const std::string& from, const std::string& key, const p::Hello& h) {
    // Checked before anything changes: a refused HELLO leaves no trace.
    if (auto why = agents.refusal(from, h.agent, h.host, h.pid, options.max_agents); !why.empty()) {
      return fail("HELLO: " + why);
    }
    // A name belongs to the key that holds it: host and pid in a HELLO are only claims.
    if (const Agent* holder = agents.find(agents.routing_of(h.agent));
        holder && holder->routing_id != from && holder->key != key) {
      return fail("HELLO: agent name '" + h.agent + "' is held by a live connection with another key");
    }
    const bool repeated = agents.contains(from);
    const std::string said_before = repeated ? agents.find(from)->joined : "";
    p::Welcome w{instance, options.heartbeat_ms, options.liveness, {}, {}, shared_checkpoints};
    const double m = mono();
    // The same agent name under another routing id: the agent reconnected
    // with a new socket. Its leases move here if it re-announces them.
    std::string old_routing = agents.routing_of(h.agent);
    if (agents.contains(from)) old_routing = from;
    Announcements announced;
    for (const auto& t : h.running) {
      announced[t.lease] = Announced{studies.find(t.study), t.trial, t.attempt};
    }
    // Leases of the old connection: kept when announced, else interrupted.
    if (!old_routing.empty()) {
      w.adopted = leases.transfer(old_routing, from, key, announced);
      if (old_routing != from) {
        if (auto r = drop_agent(old_routing, "reconnected"); !r) return r;
      } else {
        // A repeated HELLO on the same connection (an agent re-sends HELLO until it is
        // welcomed, and ZeroMQ queues them through an outage): the connection keeps what it
        // announced again; a lease it no longer announces has ended on its side. Dropping the
        // whole agent would requeue trials the WELCOME just called adopted.
        auto r = requeue_held(from, "agent " + h.agent + " no longer runs it", w.adopted);
        if (!r) return std::unexpected(r.error());
      }
    }
    // Trials of the recovery window leased to this key are re-adopted; any other is stopped
    // unless this connection holds it.
    auto [readopt, stop] = leases.sort(from, key, announced);
    for (const auto& r : readopt) {
      auto& s = studies[r.study];
      const auto& t = r.trial;
      if (auto st = store->start_trial(t.trial_id, t.attempt, t.lease, h.agent, key, now()); !st) {
        return st;
      }
      s.readopted(t.number);
      leases.readopt(t.lease, from, key);
      ++stats.readopted;
      w.adopted.push_back(t.lease);
      if (options.verbose) log_line("re-adopted " + s.name() + "#" + std::to_string(t.number));
    }
    w.stop = std::move(stop);
    Agent& joined =
        agents.join(from, h.agent, h.slots, static_cast<std::int64_t>(w.adopted.size()), m, h.pid);
    joined.host = h.host;
    joined.key = key;
    if (auto r = store->upsert_agent(h.agent, h.host, h.gpus, h.slots, now(),
                                     records.stale_after());
        !r) {
      return r;
    }
    if (auto r = store->set_agent_drained(h.agent, joined.drained, now()); !r) return r;
    // An agent re-sends HELLO until welcomed, and ZeroMQ queues them through an outage: a
    // repeat on the same connection that says what the last one said is no news.
    joined.joined = "(" + std::to_string(h.slots) + " slot(s), re-adopted " +
                    std::to_string(w.adopted.size()) + ", stopped " +
                    std::to_string(w.stop.size()) + ")";
    if (!repeated || joined.joined != said_before) {
      log_line("agent " + h.agent + " joined " + joined.joined);
      if (auto r = store->append_event(std::nullopt, std::nullopt, "agent_joined",
                                       json{{"agent", h.agent},
                                            {"host", h.host},
                                            {"slots", h.slots},
                                            {"readopted", w.adopted.size()}},
                                       now());
          !r) {
        return r;
      }
    }
    reply(from, std::move(w));
    if (!repeated && ++joins_since_prune >= std::min<std::size_t>(256, options.agent_records)) {
      joins_since_prune = 0;
      std::vector<std::string> connected = agents.names();
      auto pruned = store->prune_agent_records(options.agent_records, connected);
      if (!pruned) return std::unexpected(pruned.error());
    }
    return {};
  }

  // The lease a REPORT/FINISH names, if it is live and held by the sender (its connection
  // and the key it joined with); else the message is counted as ignored and logged.
  Lease* fenced(const std::string& from, const std::string& study, std::int64_t trial,
                std::int64_t attempt, const std::string& lease, std::string_view type) {
    const Agent* a = agents.find(from);
    const std::string key = a ? a->key : "";
    if (Lease* l = leases.fenced(lease, from, key, studies.find(study), trial, attempt)) return l;
    ++stats.ignored;
    log_line("ignored " + std::string(type) + " for " + study + "#" + std::to_string(trial) +
             " attempt " + std::to_string(attempt) + " lease " + lease + " (no such live lease)");
    return nullptr;
  }

  Status on_report(const std::string& from, const p::Report& m) {
    Lease* l = fenced(from, m.study, m.trial, m.attempt, m.lease, "REPORT");
    p::Decision d{m.trial, m.attempt, m.lease, true};
    if (l) {
      auto verdict = record_report(*store, studies[l->study], *l, m, now(), options.verbose);
      if (!verdict) return std::unexpected(verdict.error());
      d.stop = *verdict == StudyRuntime::Verdict::kStop;
      d.pause = *verdict == StudyRuntime::Verdict::kPause;
    }
    reply(from, d);
    return {};
  }

  Status on_finish(Agent& a, const p::Finish& m) {
    reply(a.routing_id, p::Ack{m.trial, m.attempt, m.lease});
    Lease* l = fenced(a.routing_id, m.study, m.trial, m.attempt, m.lease, "FINISH");
    if (!l) return {};
    // Recorded before the lease is released: if recording fails, the lease is still there
    // for finish_unrecorded().
    if (m.outcome == p::Outcome::kPaused && m.checkpoint) {
      if (m.checkpoint->shared) adopt_shared(*l, m.lease, *m.checkpoint);
      check_upload(*l, *m.checkpoint);
    }
    if (auto r = record_finish(*store, studies[l->study], *l, m, now(), options.verbose); !r) {
      return r;
    }
    leases.release(m.lease);
    AgentRegistry::released(a);
    ++stats.completed;
    auto drained = count_start(*store, agents, a, m, options.drain_after_start_failures, now());
    if (!drained) return std::unexpected(drained.error());
    if (m.start_failed) ++stats.start_failures;
    if (*drained) ++stats.agents_drained;
    return {};
  }

  // The FINISH `m` from `from` could not be recorded (`why`; its writes are rolled back): its
  // trial ends FAILED with why, its lease and slot are freed and it is ACKed, so that the
  // agent stops re-sending it. Nothing when the FINISH does not hold a live lease.
  Status finish_unrecorded(const std::string& from, const p::Finish& m, const std::string& why) {
    Agent* a = agents.find(from);
    Lease* l = a ? leases.fenced(m.lease, from, a->key, studies.find(m.study), m.trial, m.attempt)
                 : nullptr;
    if (!l) return {};
    auto& study = studies[l->study];
    const std::string error = "the scheduler could not record this trial's FINISH: " + why;
    if (auto r = store->finish_trial(study.trial_id(l->number), TrialState::kFailed, std::nullopt,
                                     error, m.log_tail.substr(0, 64 * 1024), now());
        !r) {
      return r;
    }
    study.failed(l->number);
    leases.release(m.lease);
    AgentRegistry::released(*a);
    ++stats.completed;
    reply(from, p::Ack{m.trial, m.attempt, m.lease});
    return {};
  }

  // A FINISH paused whose pack the agent wrote to the shared directory: moved into the store
  // (size and digest checked), or refused with the reason logged (check_upload then says what
  // the trial resumes from).
  void adopt_shared(const Lease& l, const std::string& lease, const p::CheckpointRef& ref) {
    const auto& study = studies[l.study];
    const std::string who = study.name() + "#" + std::to_string(l.number);
    if (!transfers || !shared_checkpoints) {
      log_line(who + ": its FINISH names a pack in a shared checkpoint directory, and this "
                     "scheduler shares none");
      return;
    }
    auto r = transfers->store().adopt({study.id(), l.number}, static_cast<std::uint64_t>(ref.bytes),
                                      ref.sha256, p::shared_pack_name(ref.sha256, lease));
    if (!r) log_line(who + ": " + r.error().message);
  }

  // A FINISH paused names the upload it made: the checkpoint store should hold exactly that.
  // When it does not (the upload was cut off, a digest differs) the trial still pauses, and
  // resumes from what the store holds (an older checkpoint, or none: from the start).
  void check_upload(const Lease& l, const p::CheckpointRef& ref) {
    const auto& study = studies[l.study];
    std::optional<CheckpointInfo> held;
    if (transfers) held = transfers->store().find({study.id(), l.number});
    if (held && held->sha256 == ref.sha256 &&
        held->bytes == static_cast<std::uint64_t>(ref.bytes)) {
      return;
    }
    log_line(study.name() + "#" + std::to_string(l.number) + ": its FINISH names checkpoint " +
             ref.sha256.substr(0, 12) + "... (" + std::to_string(ref.bytes) +
             " bytes), which this scheduler does not hold; it resumes from " +
             (held ? "checkpoint " + held->sha256.substr(0, 12) + "..." : std::string("the start")));
  }

  // Checkpoints of trials that ended this turn, deleted once the turn is committed; and each
  // study's checkpoint bytes, written to the store when they change (one turn late).
  std::vector<CheckpointKey> ended_checkpoints;
  std::map<std::int64_t, std::int64_t> checkpoint_bytes;  // by study id: what the store says

  Status track_checkpoints() {
    for (std::size_t i = 0; i < studies.size(); ++i) {
      auto& study = studies[i];
      for (auto n : study.take_ended()) ended_checkpoints.push_back({study.id(), n});
      if (!transfers) continue;
      const auto bytes = static_cast<std::int64_t>(transfers->store().study_bytes(study.id()));
      auto [it, added] = checkpoint_bytes.try_emplace(study.id(), -1);
      if (it->second == bytes) continue;
      it->second = bytes;
      if (auto r = store->set_study_checkpoint_bytes(study.id(), bytes); !r) return r;
    }
    return {};
  }

  void remove_ended_checkpoints() {
    if (!transfers) {
      ended_checkpoints.clear();
      return;
    }
    for (const auto& key : ended_checkpoints) {
      if (auto r = transfers->store().remove(key); !r) {
        log_line("could not delete a checkpoint: " + r.error().message);
      }
    }
    ended_checkpoints.clear();
  }

  // A chunk of a paused trial's checkpoint: only from the live lease's holder.
  Status on_put(const std::string& from, const p::Put& m) {
    Lease* l = fenced(from, m.study, m.trial, m.attempt, m.lease, "PUT");
    if (!l || !transfers) {
      reply(from, p::PutAck{m.lease, 0, false,
                            l ? "this scheduler keeps no checkpoints" : "no such live lease"});
      return {};
    }
    reply(from, transfers->put({studies[l->study].id(), l->number}, m));
    return {};
  }

  // A chunk of the checkpoint the lease's trial resumes from.
  Status on_get(const std::string& from, const p::Get& m) {
    Lease* l = fenced(from, m.study, m.trial, m.attempt, m.lease, "GET");
    if (!l || !transfers) {
      reply(from, p::Chunk{m.lease, m.offset, 0, "",
                           l ? "this scheduler keeps no checkpoints" : "no such live lease"});
      return {};
    }
    reply(from, transfers->get({studies[l->study].id(), l->number}, m));
    return {};
  }

  // SUBMIT needs no HELLO; it writes in the turn's open transaction.
  Status on_submit(const std::string& from, const p::Submit& m) {
    auto answer = studies.submit(*store, m.study, now());
    if (!answer) return std::unexpected(answer.error());
    // A refused study leaves nothing behind: the ERROR goes out as a refusal, which rolls the
    // message's writes back.
    if (auto* e = std::get_if<p::ErrorReply>(&*answer)) return fail(e->message);
    reply(from, std::move(*answer));
    return {};
  }

  // `key`: the sender's CURVE public key ("" on plaintext).
  Status handle(const std::string& from, const std::string& key, const p::Message& m) {
    if (zap) {
      const Role needed = std::holds_alternative<p::Submit>(m) ? Role::kSubmitter : Role::kAgent;
      if (!keys.allows(key, needed)) {
        refuse_role(from, key, m, needed);
        return {};
      }
    }
    if (auto* h = std::get_if<p::Hello>(&m)) return on_hello(from, key, *h);
    if (auto* sub = std::get_if<p::Submit>(&m)) return on_submit(from, *sub);
    Agent* a = agents.find(from);
    if (!a) {
      // Unknown sender: restarted scheduler, or an agent declared lost.
      if (!std::holds_alternative<p::Bye>(m)) {
        if (std::holds_alternative<p::Finish>(m) || std::holds_alternative<p::Report>(m)) {
          ++stats.ignored;
        }
        outbox.push_error(from, p::ErrorReply{"unknown agent; say HELLO", true, false}, mono(),
                          options.max_refusals_per_s);
      }
      return {};
    }
    a->last_heard = mono();
    if (auto* r = std::get_if<p::Ready>(&m)) {
      const bool was_draining = a->stopping;
      AgentRegistry::ready(*a, r->free_slots, r->draining);
      return AgentRecords::after_ready(*store, *a, was_draining, mono(), now());
    }
    if (auto* r = std::get_if<p::Report>(&m)) return on_report(from, *r);
    if (auto* f = std::get_if<p::Finish>(&m)) return on_finish(*a, *f);
    if (auto* put = std::get_if<p::Put>(&m)) return on_put(from, *put);
    if (auto* g = std::get_if<p::Get>(&m)) return on_get(from, *g);
    if (std::holds_alternative<p::Heartbeat>(m)) return {};
    if (std::holds_alternative<p::Bye>(m)) return drop_agent(from, "left");
    log_line("agent " + a->name + " sent unexpected " + std::string(p::type_name(m)) + "; ignored");
    return {};
  }

  // A message whose key lacks the role it needs: nothing of it is done. An agent message is
  // answered with a fatal ERROR (the agent stops: only an operator can give its key back).
  void refuse_role(const std::string& from, const std::string& key, const p::Message& m,
                   Role needed) {
    ++stats.refused;
    const std::string why = std::string(p::type_name(m)) + ": refused: key " +
                            keys.name_of(key) + " is not on the scheduler's " +
                            role_name(needed) + " list";
    log_line("refused a message from " + peer(from) + ": " + why);
    outbox.push_error(from, p::ErrorReply{why, false, needed == Role::kAgent}, mono(),
                      options.max_refusals_per_s);
  }

  // Answers waiting handshakes; a flood of refusals is logged 10 a second at most.
  void answer_handshakes() {
    if (!zap) return;
    const auto refusals = zap->answer(keys);
    stats.handshakes_refused = zap->refused();
    for (const auto& line : refusals) {
      if (mono() - refusal_log_window >= 1.0) {
        refusal_log_window = mono();
        refusal_logs = 0;
      }
      if (++refusal_logs <= 10) log_line(line);
      else if (refusal_logs == 11) log_line("(more refused connections this second not logged)");
    }
  }

  // The reload of the contract (daemon.h): new lists, or the old ones kept when a file is bad.
  Status reload_keys() {
    if (!zap) {
      log_line("reload: this scheduler uses no keys (plaintext); nothing to reload");
      return {};
    }
    auto lists = load_key_lists(options.keys);
    if (!lists) {
      log_line("reload: keeping the old key lists: " + lists.error().message);
      return {};
    }
    keys = std::move(*lists);
    std::vector<std::pair<std::string, std::string>> revoked;  // routing id, key
    for (const auto& name : agents.names()) {
      const std::string routing = agents.routing_of(name);
      const Agent* a = agents.find(routing);
      if (a && !keys.allows(a->key, Role::kAgent)) revoked.emplace_back(routing, a->key);
    }
    for (const auto& [routing, key] : revoked) {
      ++stats.agents_revoked;
      if (auto r = drop_agent(routing, "revoked (its key " + key.substr(0, 8) +
                                           "... is no longer on the agent list)");
          !r) {
        return r;
      }
      outbox.push(routing, p::ErrorReply{"this agent's key was removed from the scheduler's "
                                         "agent list: its trials were requeued elsewhere",
                                         false, true});
    }
    log_line("reload: " + std::to_string(keys.agents.size()) + " agent key(s), " +
             std::to_string(keys.submitters.size()) + " submitter key(s); " +
             std::to_string(revoked.size()) + " connected agent(s) revoked");
    return {};
  }

  void warn_if_open() {
    if (!open_to_all || mono() - insecure_warned < 60) return;
    insecure_warned = mono();
    log_line("WARNING: --insecure: listening on " + endpoint +
             " with no keys: anyone who can reach this port can run commands on every agent "
             "and read every trial's environment");
  }

  // The name of a peer in a log line: its agent name, else its routing id.
  std::string peer(const std::string& routing_id) {
    const Agent* a = agents.find(routing_id);
    return a ? "agent " + a->name : peer_id(routing_id);
  }

  // A message that is refused: logged with its peer, answered ERROR (capped per second).
  void refuse(const std::string& from, const std::string& why) {
    log_line("refused a message from " + peer(from) + ": " + why);
    outbox.push_error(from, p::ErrorReply{why, false, false}, mono(), options.max_refusals_per_s);
  }

  // Handles one decoded message as one unit (the contract in daemon.h): a savepoint for its
  // writes, its replies held back, both undone when it fails. Returns an error only when the
  // failure is fatal (the store itself failed).
  Status handle_one(const std::string& from, const std::string& key, p::Message m) {
    const std::string type(p::type_name(m));
    auto savepoint = store->savepoint();
    if (!savepoint) return std::unexpected(savepoint.error());
    const std::size_t replies = outbox.size();
    Status result;
    try {
      result = handle(from, key, m);
    } catch (const std::exception& e) {
      result = fail(ErrorCode::kInternal, type + ": " + e.what());
    } catch (...) {
      result = fail(ErrorCode::kInternal, type + ": unknown exception");
    }
    if (result) return savepoint->release();
    if (result.error().code == ErrorCode::kIo) return result;
    if (auto r = savepoint->rollback(); !r) return r;
    outbox.drop_after(replies);
    ++stats.refused;
    std::string why = result.error().message;
    if (why.rfind(type, 0) != 0) why = type + ": " + why;
    refuse(from, why);
    if (auto* f = std::get_if<p::Finish>(&m)) {
      // Ended anyway (FAILED), in a unit of its own, so that no lease waits forever on it.
      auto again = store->savepoint();
      if (!again) return std::unexpected(again.error());
      const std::size_t before = outbox.size();
      Status ended;
      try {
        ended = finish_unrecorded(from, *f, result.error().message);
      } catch (const std::exception& e) {
        ended = fail(ErrorCode::kInternal, e.what());
      }
      if (ended) return again->release();
      if (ended.error().code == ErrorCode::kIo) return ended;
      outbox.drop_after(before);
      log_line("could not end " + f->study + "#" + std::to_string(f->trial) +
               " either: " + ended.error().message);
      return again->rollback();
    }
    return {};
  }

  // --- timers ---
  Status expire() {
    const double m = mono();
    for (const auto& id : agents.silent(m)) {
      ++stats.agents_lost;
      if (auto r = drop_agent(id, "lost (silent for " + seconds_text(agents.window()) + ")");
          !r) {
        return r;
      }
    }
    if (leases.recovery_due(m)) {
      log_line("recovery window closed: requeueing " + std::to_string(leases.recovering_count()) +
               " trial(s) no agent re-announced");
      for (const auto& r : leases.close_recovery()) {
        if (auto q = store->requeue_trial(r.trial.trial_id, now()); !q) return q;
        studies[r.study].requeued(r.trial.number, /*front=*/true);
      }
    }
    return {};
  }

  // Studies that reached their target or time budget stop what they still run.
  Status wind_down() {
    auto stops = studies.wind_down(*store, leases, now());
    if (!stops) return std::unexpected(stops.error());
    for (auto& [to, decision] : *stops) reply(to, decision);
    return {};
  }

  Status dispatch() {
    if (shutting_down) return {};
    auto assigned = dispatcher.fill(*store, studies, agents, leases, now(),
                                    transfers ? &transfers->store() : nullptr);
    if (!assigned) return std::unexpected(assigned.error());
    for (auto& [to, assign] : *assigned) {
      if (const auto bytes = p::encode(assign).body.size(); bytes > p::kMaxBodyBytes) {
        // The agent could not take it: the trial fails now rather than hold a lease forever.
        if (auto r = fail_unsendable(to, assign, bytes); !r) return r;
        continue;
      }
      ++stats.assigned;
      reply(to, std::move(assign));
    }
    return {};
  }

  Status fail_unsendable(const std::string& to, const p::Assign& assign, std::size_t bytes) {
    auto l = leases.release(assign.lease);
    if (!l) return {};
    auto& study = studies[l->study];
    const std::string error = "its ASSIGN of " + std::to_string(bytes) +
                              " bytes (config and trial spec) is over the message limit of " +
                              std::to_string(p::kMaxBodyBytes) + " bytes";
    log_line(study.name() + "#" + std::to_string(l->number) + " FAILED: " + error);
    if (auto r = store->finish_trial(study.trial_id(l->number), TrialState::kFailed, std::nullopt,
                                     error, "", now());
        !r) {
      return r;
    }
    study.failed(l->number);
    if (Agent* a = agents.find(to)) AgentRegistry::released(*a);
    return {};
  }

  // Seconds until the next heartbeat, loss or end of the recovery window.
  double next_timer() const {
    const double m = mono();
    double next = agents.next_deadline(m);
    if (auto deadline = leases.recovery_deadline()) next = std::min(next, *deadline);
    return std::max(0.0, next - m);
  }
};

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
  s.agents = AgentRegistry(s.options.heartbeat_ms / 1000.0, s.options.liveness);
  s.records = AgentRecords(s.agents.window());
  s.dispatcher = Dispatcher(s.options.verbose);
  if (s.options.recovery_window_s < 0) s.options.recovery_window_s = 2 * s.agents.window();
  s.store.emplace(std::move(store));
  s.instance = random_hex();
  const bool local = loopback_only(options.bind);
  if (!options.server_keys && !local && !options.insecure) {
    return fail(ErrorCode::kInvalidInput,
                "scheduler: refusing to listen on '" + options.bind +
                    "' without keys: anyone who reaches that port could run commands on every "
                    "agent. Make keys (hpo keys new scheduler; hpo keys new NAME --dir "
                    "agent-keys; ...) and give --key, --agent-keys and --submitter-keys, or bind "
                    "127.0.0.1, or pass --insecure on a network you trust entirely");
  }
  if (options.server_keys) {
    auto lists = load_key_lists(options.keys);
    if (!lists) return fail(lists.error().code, "scheduler: " + lists.error().message);
    s.keys = std::move(*lists);
    if (s.keys.agents.empty()) {
      log_line("warning: no agent keys: no agent can join until keys are added to the agent "
               "list and the scheduler is sent SIGHUP");
    }
    // The handler must answer before the first client connects.
    auto zap = ZapHandler::create(context);
    if (!zap) return std::unexpected(zap.error());
    s.zap = std::move(*zap);
  }
  s.open_to_all = !options.server_keys && !local;
  if (!options.checkpoint_dir.empty()) {
    auto store = CheckpointStore::open(options.checkpoint_dir, options.checkpoint_max_bytes);
    if (!store) return fail(store.error().code, "scheduler: checkpoints: " + store.error().message);
    if (options.checkpoint_shared) {
      auto token = store->share();
      if (!token) {
        return fail(token.error().code, "scheduler: checkpoints: " + token.error().message);
      }
      std::error_code ec;
      const auto dir = std::filesystem::absolute(options.checkpoint_dir, ec).lexically_normal();
      s.shared_checkpoints = p::SharedCheckpoints{dir.string(), *token};
    }
    s.transfers.emplace(std::move(*store));
  }
  try {
    s.router = std::make_unique<zmq::socket_t>(context, zmq::socket_type::router);
    if (options.server_keys) {
      if (auto c = make_curve_server(*s.router, *options.server_keys); !c) {
        return std::unexpected(c.error());
      }
    }
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

  // Recovery: what was RUNNING waits recovery_window_s for its agents.
  auto txn = s.store->begin();
  if (!txn) return std::unexpected(txn.error());
  auto recovering = s.studies.load_unfinished(*s.store, s.now());
  if (!recovering) return std::unexpected(recovering.error());
  s.leases.set_recovery_deadline(s.mono() + s.options.recovery_window_s);
  for (auto& r : *recovering) s.leases.await(std::move(r));
  if (auto c = txn->commit(); !c) return std::unexpected(c.error());
  if (s.leases.recovering_count() > 0) {
    log_line("recovered " + std::to_string(s.leases.recovering_count()) +
             " running trial(s); waiting " + std::to_string(s.options.recovery_window_s) +
             " s for their agents to re-announce them");
  }
  log_line("listening on " + s.endpoint + " (" + std::to_string(s.studies.size()) +
           " study(ies); " +
           (s.zap ? "CURVE, " + std::to_string(s.keys.agents.size()) + " agent key(s), " +
                        std::to_string(s.keys.submitters.size()) + " submitter key(s))"
                  : std::string("plaintext)")));
  s.warn_if_open();
  return d;
}

Status Daemon::add_study(const search::StudySpec& spec) {
  State& s = *state_;
  auto txn = s.store->begin();
  if (!txn) return std::unexpected(txn.error());
  auto answer = s.studies.submit(*s.store, spec.raw, s.now());
  if (!answer) return std::unexpected(answer.error());
  // A refused study is rolled back (~Transaction): it leaves nothing in the store.
  if (auto* e = std::get_if<p::ErrorReply>(&*answer)) return fail(e->message);
  return txn->commit();
}

std::string Daemon::endpoint() const { return state_->endpoint; }

Status Daemon::turn(std::chrono::milliseconds max_wait) {
  State& s = *state_;
  ++s.stats.turns;
  auto wait = std::min<std::int64_t>(max_wait.count(),
                                     static_cast<std::int64_t>(s.next_timer() * 1000.0 + 0.999));
  zmq::pollitem_t items[2] = {{s.router->handle(), 0, ZMQ_POLLIN, 0},
                              {s.zap ? s.zap->socket() : nullptr, 0, ZMQ_POLLIN, 0}};
  try {
    zmq::poll(items, s.zap ? 2 : 1, std::chrono::milliseconds(std::max<std::int64_t>(0, wait)));
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) return fail(std::string("scheduler: poll: ") + e.what());
  }
  s.answer_handshakes();
  s.warn_if_open();
  auto txn = s.store->begin();
  if (!txn) return std::unexpected(txn.error());
  if (s.options.reload_keys && s.options.reload_keys->exchange(false)) {
    if (auto r = s.reload_keys(); !r) return r;
  }
  for (std::size_t i = 0; i < s.options.max_batch; ++i) {
    auto r = p::receive(*s.router, /*router=*/true);
    if (!r) break;
    if (!r->message) {
      if (r->socket_error) return fail(ErrorCode::kIo, "scheduler: " + r->message.error().message);
      ++s.stats.bad_messages;
      s.refuse(r->routing_id, r->message.error().message);
      continue;
    }
    if (auto h = s.handle_one(r->routing_id, r->key, std::move(*r->message)); !h) {
      return fail(ErrorCode::kIo, "scheduler: stopping: the store failed (" + h.error().message +
                                      "); a restart recovers from the last committed turn");
    }
  }
  if (auto e = s.expire(); !e) return e;
  if (auto r = s.records.refresh(*s.store, s.agents, s.mono(), s.now()); !r) return r;
  if (auto w = s.wind_down(); !w) return w;
  if (auto d = s.dispatch(); !d) return d;
  if (auto m = s.studies.record_finished(*s.store, s.now()); !m) return m;
  if (auto k = s.track_checkpoints(); !k) return k;
  if (auto c = txn->commit(); !c) {
    return fail(ErrorCode::kIo, "scheduler: stopping: cannot commit this turn to the store (" +
                                    c.error().message +
                                    "); a restart recovers from the last committed turn");
  }
  s.remove_ended_checkpoints();
  s.outbox.flush(*s.router, s.agents, s.mono());
  return {};
}

void Daemon::begin_shutdown() {
  if (state_->shutting_down) return;
  state_->shutting_down = true;
  log_line("stopping: no new trials; waiting up to " +
           seconds_text(state_->options.shutdown_grace_s) + " for " +
           std::to_string(state_->leases.size()) + " running trial(s)");
}

Status Daemon::finish_shutdown() {
  State& s = *state_;
  auto txn = s.store->begin();
  if (!txn) return std::unexpected(txn.error());
  double t = s.now();
  if (s.options.hand_over_on_stop) {
    // Their agents run them on and re-announce them to the next scheduler (daemon.h).
    if (!s.leases.empty()) {
      log_line("left " + std::to_string(s.leases.size()) +
               " running trial(s) RUNNING for the next scheduler to re-adopt");
    }
  } else {
    for (const auto& [id, l] : s.leases.all()) {
      if (auto r =
              s.store->finish_trial(s.studies[l.study].trial_id(l.number), TrialState::kInterrupted,
                                    std::nullopt, "scheduler stopped", "", t);
          !r) {
        return r;
      }
    }
    if (!s.leases.empty()) {
      log_line("recorded " + std::to_string(s.leases.size()) + " running trial(s) INTERRUPTED");
    }
  }
  s.leases.clear();
  for (std::size_t i = 0; i < s.studies.size(); ++i) {
    const auto& study = s.studies[i];
    if (!study.marked_finished) {
      if (auto r = s.store->set_study_status(study.id(), "interrupted", t); !r) return r;
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

bool Daemon::all_done() const { return state_->studies.all_done(); }

Daemon::Stats Daemon::stats() const {
  Stats st = state_->stats;
  st.agents = static_cast<std::int64_t>(state_->agents.size());
  st.leases = static_cast<std::int64_t>(state_->leases.size());
  st.recovering = static_cast<std::int64_t>(state_->leases.recovering_count());
  return st;
}

}  // namespace hpo::scheduler
