// The agent's connection and loop (agent.h); its trials are in agent_trials.cpp.
#include "trainer/agent/agent.h"

#include <unistd.h>

#include <exception>
#include <thread>

#include "trainer/agent/agent_state.h"

namespace hpo::agent {

using std::chrono::milliseconds;

std::string hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

std::string default_agent_name() { return hostname() + "-" + std::to_string(getpid()); }

// The wait before the next reconnect: `wanted`, at most reconnect_max_ms and never more than
// the liveness window the scheduler announced. A restarted scheduler waits twice that window
// for its agents to re-announce their trials; an agent that slept longer would find them
// requeued.
int Agent::State::next_backoff(int wanted) const {
  auto cap = std::min<std::int64_t>(std::max(1, options.reconnect_max_ms), window().count());
  return static_cast<int>(std::clamp<std::int64_t>(wanted, 1, std::max<std::int64_t>(1, cap)));
}

void Agent::State::send(const protocol::Message& m) {
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

void Agent::State::close_socket() {
  watch.reset();
  socket.reset();
}

Status Agent::State::connect() {
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

void Agent::State::send_hello() {
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

void Agent::State::send_ready() {
  int used = static_cast<int>(busy());
  int free = stopping ? 0 : std::max(0, options.slots - used);
  send(protocol::Ready{free, stopping});
}

void Agent::State::on_welcome(const protocol::Welcome& w) {
  welcomed = true;
  if (!scheduler.empty() && scheduler != w.scheduler) log("scheduler restarted");
  scheduler = w.scheduler;
  heartbeat_ms = w.heartbeat_ms;
  liveness = w.liveness;
  for (const auto& lease : w.stop) drop_lease(lease);
  for (const auto& lease : w.adopted) {
    auto r = reports.find(lease);
    if (r == reports.end()) continue;
    for (const auto& report : r->second) send(report);
  }
  for (auto& [lease, p] : unacked) {
    p.sent = SteadyClock::now();
    send(p.finish);
  }
  // A (re)started scheduler has dropped the uploads in progress, and answers to the old
  // connection are lost: every checkpoint transfer starts again at offset 0.
  transfers.restart();
  transfers.share(w.checkpoints);
  send_ready();
}

void Agent::State::handle(protocol::Message m) {
  last_heard = SteadyClock::now();
  backoff_ms = std::max(1, options.reconnect_min_ms);
  if (auto* w = std::get_if<protocol::Welcome>(&m)) {
    on_welcome(*w);
  } else if (auto* a = std::get_if<protocol::Assign>(&m)) {
    on_assign(*a);
  } else if (auto* d = std::get_if<protocol::Decision>(&m)) {
    on_decision(*d);
  } else if (auto* put_ack = std::get_if<protocol::PutAck>(&m)) {
    if (auto event = transfers.on_put_ack(*put_ack)) take(std::move(*event));
  } else if (auto* chunk = std::get_if<protocol::Chunk>(&m)) {
    if (auto event = transfers.on_chunk(*chunk)) take(std::move(*event));
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

void Agent::State::drain_socket() {
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
      source.append(" ").append(trial_name(*a)).append(" lease ").append(a->lease);
    }
    try {
      handle(std::move(*r->message));
    } catch (const std::exception& e) {
      log("dropped " + source + ": " + e.what());
    }
  }
}

// Reads the handshake watch: a failure is logged when it is news (or every 30 s), and an
// agent that never got through gives up after a few (Agent::run's contract).
Status Agent::State::check_handshakes() {
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
void Agent::State::timers() {
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

milliseconds Agent::State::timeout() const {
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

Agent::Agent(zmq::context_t& context, AgentOptions options, std::unique_ptr<TrialRunner> runner)
    : state_(std::make_unique<State>(context, std::move(options), std::move(runner))) {
  if (state_->options.name.empty()) state_->options.name = default_agent_name();
}

Agent::~Agent() = default;

Agent::Stats Agent::stats() const { return state_->stats; }

Status Agent::run(const std::atomic<bool>& stop, const std::atomic<bool>* drain) {
  State& s = *state_;
  if (auto c = s.connect(); !c) return c;
  bool interrupted = false;  // a stop's grace is over
  while (true) {
    auto now = SteadyClock::now();
    const auto grace = std::chrono::duration_cast<SteadyClock::duration>(
        std::chrono::duration<double>(s.options.shutdown_grace_s));
    const bool was_stopping = s.stopping;
    if (drain && drain->load() && s.winddown.drain()) {
      s.log("draining: " + std::to_string(s.busy()) +
            " running trial(s) finish, no new ones; leaving once their FINISH is acknowledged");
    }
    if (stop.load() && s.winddown.stop(now, grace)) {
      s.runner->agent_stopping();
      if (!s.running.empty()) s.log("stopping: waiting for running trials");
    }
    s.stopping = s.winddown.active();
    if (s.stopping && !was_stopping && s.welcomed) s.send_ready();
    if (s.winddown.interrupt_due(now)) {
      interrupted = true;
      for (const auto& [lease, t] : s.running) s.runner->stop(lease, StopReason::kInterrupted);
    }
    // Past the grace, a checkpoint on its way (or one that a trial paused since) is given up.
    if (interrupted && s.transfers.count() > 0) {
      for (auto& f : s.transfers.abandon("agent is stopping")) s.finish_now(std::move(f));
    }
    if (s.winddown.may_exit(now, s.busy(), s.unacked.empty(), s.welcomed)) break;

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
    s.pump_transfers();
  }
  if (s.socket && s.welcomed) s.send(protocol::Bye{});
  s.close_socket();
  if (!s.fatal.empty()) return fail("agent: the scheduler refused this agent: " + s.fatal);
  return {};
}

}  // namespace hpo::agent
