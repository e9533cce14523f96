#include "trainer/agent/agent.h"

#include "scheduler/handshake.h"
#include "trainer/agent/winddown.h"

#include <unistd.h>

#include <algorithm>
#include <exception>
#include <iostream>
#include <map>
#include <set>
#include <thread>

namespace hpo::agent {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

}  // namespace

std::string default_agent_name() { return hostname() + "-" + std::to_string(getpid()); }

struct Agent::State {
  zmq::context_t& context;
  AgentOptions options;
  std::unique_ptr<TrialRunner> runner;
  std::unique_ptr<zmq::socket_t> socket;
  std::unique_ptr<scheduler::HandshakeWatch> watch;  // of `socket`; closed before it
  scheduler::HandshakeHistory handshakes;  // across reconnects
  std::string fatal;  // why the scheduler will take nothing more from us ("" = it will)

  bool welcomed = false;
  std::string scheduler;  // instance id from the last WELCOME
  int heartbeat_ms = 1000;
  int liveness = 5;
  SteadyClock::time_point last_heard{};
  SteadyClock::time_point last_sent{};
  SteadyClock::time_point last_hello{};
  SteadyClock::time_point reconnect_at{};
  int backoff_ms = 100;

  // Trials started and not finished, by lease.
  std::map<std::string, protocol::RunningTrial> running;
  // Leases the scheduler dropped: their finish is discarded.
  std::set<std::string> dropped;
  struct Pending {
    protocol::Finish finish;
    SteadyClock::time_point sent{};
  };
  std::map<std::string, Pending> unacked;  // FINISH sent, no ACK yet
  // Every REPORT of the trials above, replayed after a WELCOME re-adopts them:
  // the ones sent to a scheduler that died were lost, and the scheduler stores
  // a (name, step) once whatever the repeats.
  std::map<std::string, std::vector<protocol::Report>> reports;
  bool stopping = false;  // takes no new trials (winddown active)
  Winddown winddown;
  Stats stats;

  State(zmq::context_t& c, AgentOptions o, std::unique_ptr<TrialRunner> r)
      : context(c), options(std::move(o)), runner(std::move(r)) {
    heartbeat_ms = std::max(1, options.heartbeat_ms);
    liveness = std::max(1, options.liveness);
    backoff_ms = std::max(1, options.reconnect_min_ms);
  }

  void log(const std::string& line) const {
    std::cerr << "hpo agent " << options.name << ": " << line << "\n";
  }

  milliseconds window() const { return milliseconds(int64_t{heartbeat_ms} * liveness); }

  // The wait before the next reconnect: `wanted`, at most reconnect_max_ms and never more than
  // the liveness window the scheduler announced. A restarted scheduler waits twice that window
  // for its agents to re-announce their trials; an agent that slept longer would find them
  // requeued.
  int next_backoff(int wanted) const {
    auto cap = std::min<std::int64_t>(std::max(1, options.reconnect_max_ms), window().count());
    return static_cast<int>(std::clamp<std::int64_t>(wanted, 1, std::max<std::int64_t>(1, cap)));
  }

  void send(const protocol::Message& m) {
    if (!socket) return;
    auto s = protocol::send(*socket, m);
    if (!s) {
      // Before a WELCOME a HELLO finds no connection while a handshake fails or the scheduler
      // is away: that is said once by the handshake watch or the silence, not at every beat.
      if (welcomed || s.error().code != ErrorCode::kBusy) log(s.error().message);
      return;
    }
    last_sent = SteadyClock::now();
  }

  void close_socket() {
    watch.reset();
    socket.reset();
  }

  Status connect() {
    try {
      socket = std::make_unique<zmq::socket_t>(context, zmq::socket_type::dealer);
      socket->set(zmq::sockopt::linger, 0);
      socket->set(zmq::sockopt::sndhwm, 100000);
      socket->set(zmq::sockopt::rcvhwm, 100000);
      if (options.keys) {
        if (auto c = scheduler::make_curve_client(*socket, options.keys->mine,
                                                  options.keys->server);
            !c) {
          close_socket();
          return fail("agent: " + c.error().message);
        }
      }
      auto w = scheduler::HandshakeWatch::attach(context, *socket, options.keys.has_value());
      if (w) watch = std::move(*w);
      else log(w.error().message);
      socket->connect(options.endpoint);
    } catch (const zmq::error_t& e) {
      close_socket();
      return fail("agent: cannot connect to '" + options.endpoint + "': " + e.what());
    }
    welcomed = false;
    last_heard = SteadyClock::now();
    send_hello();
    return {};
  }

  void send_hello() {
    protocol::Hello h;
    h.agent = options.name;
    h.host = hostname();
    h.slots = options.slots;
    h.gpus = options.gpus;
    h.pid = getpid();
    for (const auto& [lease, t] : running) {
      if (!dropped.count(lease)) h.running.push_back(t);
    }
    for (const auto& [lease, p] : unacked) {
      const auto& f = p.finish;
      h.running.push_back({f.study, f.trial, f.attempt, f.lease, true});
    }
    last_hello = SteadyClock::now();
    send(h);
  }

  void send_ready() {
    int used = static_cast<int>(runner->running());
    int free = stopping ? 0 : std::max(0, options.slots - used);
    send(protocol::Ready{free, stopping});
  }

  void finish_now(protocol::Finish f) {
    running.erase(f.lease);
    ++stats.finished;
    if (dropped.erase(f.lease)) {
      // The scheduler no longer counts it, so no FINISH frees its slot there.
      reports.erase(f.lease);
      if (welcomed) send_ready();
      return;
    }
    // A FINISH the scheduler cannot take would be re-sent forever: cut it to fit first.
    if (auto cut = protocol::fit_to_limit(f); !cut.empty()) log("lease " + f.lease + ": " + cut);
    auto& p = unacked[f.lease];
    p.finish = std::move(f);
    p.sent = SteadyClock::now();
    if (welcomed) send(p.finish);
  }

  void handle(protocol::Message m) {
    last_heard = SteadyClock::now();
    backoff_ms = std::max(1, options.reconnect_min_ms);
    if (auto* w = std::get_if<protocol::Welcome>(&m)) {
      welcomed = true;
      if (!scheduler.empty() && scheduler != w->scheduler) log("scheduler restarted");
      scheduler = w->scheduler;
      heartbeat_ms = w->heartbeat_ms;
      liveness = w->liveness;
      for (const auto& lease : w->stop) {
        if (running.count(lease)) {
          dropped.insert(lease);
          runner->stop(lease, StopReason::kInterrupted);
        }
        unacked.erase(lease);
        reports.erase(lease);
      }
      for (const auto& lease : w->adopted) {
        auto r = reports.find(lease);
        if (r == reports.end()) continue;
        for (const auto& report : r->second) send(report);
      }
      for (auto& [lease, p] : unacked) {
        p.sent = SteadyClock::now();
        send(p.finish);
      }
      send_ready();
    } else if (auto* a = std::get_if<protocol::Assign>(&m)) {
      ++stats.assigned;
      if (options.verbose) {
        log("trial " + a->study + "#" + std::to_string(a->trial) + " attempt " +
            std::to_string(a->attempt) + " lease " + a->lease);
      }
      if (running.count(a->lease) || unacked.count(a->lease)) {
        log("ignored a repeated ASSIGN for lease " + a->lease);
        return;
      }
      protocol::Finish refused{
          a->study, a->trial, a->attempt, a->lease, protocol::Outcome::kInterrupted,
          {},       "",       "",         false,    false};
      if (stopping || static_cast<int>(runner->running()) >= options.slots) {
        refused.error = stopping ? (winddown.draining() ? "agent is draining" : "agent is stopping")
                                 : "agent has no free slot";
        refused.refused = true;
        running[a->lease] = {};
        finish_now(std::move(refused));
        return;
      }
      running[a->lease] = {a->study, a->trial, a->attempt, a->lease, false};
      if (auto s = start(*a); !s) {
        if (s.error().code == ErrorCode::kIo) {
          refused.start_failed = true;  // this agent's fault: the scheduler runs it elsewhere
          log("trial " + trial_name(*a) + " could not start: " + s.error().message);
        } else {
          refused.outcome = protocol::Outcome::kFailed;
        }
        refused.error = s.error().message;
        refused.log_tail = s.error().message + "\n";
        finish_now(std::move(refused));
      }
    } else if (auto* d = std::get_if<protocol::Decision>(&m)) {
      if (d->stop) runner->stop(d->lease, StopReason::kPruned);
    } else if (auto* ack = std::get_if<protocol::Ack>(&m)) {
      unacked.erase(ack->lease);
      reports.erase(ack->lease);
    } else if (auto* e = std::get_if<protocol::ErrorReply>(&m)) {
      if (e->hello_required) {
        // Several messages in flight each draw this answer: one HELLO per
        // heartbeat interval is enough.
        welcomed = false;
        if (SteadyClock::now() - last_hello >= milliseconds(heartbeat_ms)) {
          log("scheduler does not know us: " + e->message + "; saying HELLO again");
          send_hello();
        }
      } else if (e->fatal) {
        if (fatal.empty()) log("the scheduler will take nothing more from this agent: " +
                               e->message + "; stopping its trials and exiting");
        fatal = e->message;
      } else {
        log("scheduler error: " + e->message);
      }
    } else if (std::holds_alternative<protocol::Heartbeat>(m)) {
      // Only liveness.
    } else {
      log(std::string("ignored unexpected ") + std::string(protocol::type_name(m)));
    }
  }

  static std::string trial_name(const protocol::Assign& a) {
    return a.study + "#" + std::to_string(a.trial) + " attempt " + std::to_string(a.attempt);
  }

  // runner->start with the exception boundary: an exception (a spec whose fields have the
  // wrong JSON types, say) is the trial's failure, not the agent's end.
  Status start(const protocol::Assign& a) {
    try {
      return runner->start(a);
    } catch (const std::exception& e) {
      return fail("agent: ASSIGN " + trial_name(a) + ": cannot start: " + e.what());
    }
  }

  void drain_socket() {
    for (int i = 0; socket && i < 1000; ++i) {
      auto r = protocol::receive(*socket, /*router=*/false);
      if (!r) return;
      if (!r->message) {
        log("dropped bad message: " + r->message.error().message);
        continue;
      }
      const std::string type(protocol::type_name(*r->message));
      std::string source = type;
      if (auto* a = std::get_if<protocol::Assign>(&*r->message)) {
        source += " " + trial_name(*a) + " lease " + a->lease;
      }
      try {
        handle(std::move(*r->message));
      } catch (const std::exception& e) {
        log("dropped " + source + ": " + e.what());
      }
    }
  }

  void drain_runner() {
    std::vector<TrialEvent> events;
    try {
      events = runner->poll();
    } catch (const std::exception& e) {
      // A runner ends a trial whose output it cannot handle itself (ProcessRunner::poll);
      // this is the last line, so that one bad trial never ends the agent.
      log("trial runner failed: " + std::string(e.what()) + "; going on");
      return;
    }
    for (auto& event : events) {
      if (auto* report = std::get_if<protocol::Report>(&event)) {
        if (dropped.count(report->lease)) continue;
        reports[report->lease].push_back(*report);
        if (welcomed) send(*report);
      } else {
        finish_now(std::move(std::get<protocol::Finish>(event)));
      }
    }
  }

  // Reads the handshake watch: a failure is logged when it is news (or every 30 s), and an
  // agent that never got through gives up after a few (Agent::run's contract).
  Status check_handshakes() {
    if (!watch) return {};
    for (const auto& why : handshakes.update(*watch)) log(why);
    const int limit = options.give_up_after_handshake_failures;
    if (limit > 0 && handshakes.failures() >= limit && running.empty() && unacked.empty() &&
        scheduler.empty()) {
      return fail("agent: cannot join the scheduler at " + options.endpoint + ": " +
                  handshakes.last() + " (" + std::to_string(handshakes.failures()) +
                  " handshakes failed; giving up)");
    }
    return {};
  }

  // Heartbeats, lost-scheduler detection and FINISH re-sends.
  void timers() {
    auto now = SteadyClock::now();
    if (!socket) {
      if (now >= reconnect_at) {
        ++stats.reconnects;
        if (auto s = connect(); !s) log(s.error().message);
      }
      return;
    }
    if (now - last_heard > window()) {
      backoff_ms = next_backoff(backoff_ms);
      log("scheduler silent for " + std::to_string(window().count()) + " ms; reconnecting in " +
          std::to_string(backoff_ms) + " ms");
      close_socket();
      welcomed = false;
      reconnect_at = now + milliseconds(backoff_ms);
      backoff_ms = next_backoff(backoff_ms * 2);
      return;
    }
    if (!welcomed) {
      if (now - last_hello >= milliseconds(heartbeat_ms)) send_hello();
      return;
    }
    for (auto& [lease, p] : unacked) {
      if (now - p.sent > milliseconds(2 * heartbeat_ms)) {
        p.sent = now;
        send(p.finish);
      }
    }
    if (now - last_sent >= milliseconds(heartbeat_ms)) send(protocol::Heartbeat{});
  }

  milliseconds timeout() const {
    auto now = SteadyClock::now();
    auto hb = milliseconds(heartbeat_ms);
    milliseconds t = runner->wait_hint();
    auto until = [&](SteadyClock::time_point when) {
      return std::max(milliseconds(0), std::chrono::ceil<milliseconds>(when - now));
    };
    if (!socket) return std::min(t, until(reconnect_at));
    t = std::min(t, until(last_sent + hb));
    t = std::min(t, until(last_heard + window() + milliseconds(1)));
    if (!welcomed) t = std::min(t, until(last_hello + hb));
    if (stopping) t = std::min(t, milliseconds(50));
    return std::max(t, milliseconds(0));
  }
};

Agent::Agent(zmq::context_t& context, AgentOptions options, std::unique_ptr<TrialRunner> runner)
    : state_(std::make_unique<State>(context, std::move(options), std::move(runner))) {
  if (state_->options.name.empty()) state_->options.name = default_agent_name();
}

Agent::~Agent() = default;

Agent::Stats Agent::stats() const { return state_->stats; }

Status Agent::run(const std::atomic<bool>& stop, const std::atomic<bool>* drain) {
  State& s = *state_;
  if (auto c = s.connect(); !c) return c;
  while (true) {
    auto now = SteadyClock::now();
    const auto grace = std::chrono::duration_cast<SteadyClock::duration>(
        std::chrono::duration<double>(s.options.shutdown_grace_s));
    const bool was_stopping = s.stopping;
    if (drain && drain->load() && s.winddown.drain()) {
      s.log("draining: " + std::to_string(s.runner->running()) +
            " running trial(s) finish, no new ones; leaving once their FINISH is acknowledged");
    }
    if (stop.load() && s.winddown.stop(now, grace)) {
      s.runner->agent_stopping();
      if (!s.running.empty()) s.log("stopping: waiting for running trials");
    }
    s.stopping = s.winddown.active();
    if (s.stopping && !was_stopping && s.welcomed) s.send_ready();
    if (s.winddown.interrupt_due(now)) {
      for (const auto& [lease, t] : s.running) s.runner->stop(lease, StopReason::kInterrupted);
    }
    if (s.winddown.may_exit(now, s.runner->running(), s.unacked.empty(), s.welcomed)) break;

    std::vector<zmq::pollitem_t> items;
    if (s.socket) items.push_back({s.socket->handle(), 0, ZMQ_POLLIN, 0});
    if (s.watch) items.push_back({s.watch->socket(), 0, ZMQ_POLLIN, 0});
    for (int fd : s.runner->wait_fds()) items.push_back({nullptr, fd, ZMQ_POLLIN, 0});
    try {
      if (items.empty()) {
        std::this_thread::sleep_for(s.timeout());
      } else {
        zmq::poll(items.data(), items.size(), s.timeout());
      }
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) return fail(std::string("agent: poll: ") + e.what());
    }
    s.drain_socket();
    if (auto h = s.check_handshakes(); !h) {
      s.close_socket();
      return h;
    }
    if (!s.fatal.empty() && s.winddown.stop(now, {})) {
      // Nothing it sends counts any more: stop at once, no grace, no ACKs to wait for.
      s.stopping = true;
      s.welcomed = false;
    }
    // A stop first (READY stopping, the runner told) when its signal also reached our trials
    // (a batch system ending the job): their deaths are then interruptions, not free slots.
    if (stop.load() && s.winddown.mode() != Winddown::Mode::kStopping) continue;
    s.drain_runner();
    s.timers();
  }
  if (s.socket && s.welcomed) s.send(protocol::Bye{});
  s.close_socket();
  if (!s.fatal.empty()) return fail("agent: the scheduler refused this agent: " + s.fatal);
  return {};
}

}  // namespace hpo::agent
