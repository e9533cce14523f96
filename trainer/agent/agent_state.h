// Agent::State: what one agent holds, and the steps of its loop (agent.h). agent.cpp has the
// connection (HELLO, WELCOME, heartbeats, reconnects, the loop itself); agent_trials.cpp the
// trials (ASSIGN, the runner's events, FINISH, pause and resume with their checkpoint
// transfers). Private to trainer/agent.
#pragma once

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "scheduler/handshake.h"
#include "trainer/agent/agent.h"
#include "trainer/agent/transfer.h"
#include "trainer/agent/winddown.h"

namespace hpo::agent {

using SteadyClock = std::chrono::steady_clock;

std::string hostname();

struct Agent::State {
  using milliseconds = std::chrono::milliseconds;

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

  // Trials started and not finished, by lease: running, or paused and uploading their
  // checkpoint, or fetching the checkpoint they resume from (announced in HELLO as running:
  // their FINISH is not sent yet).
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
  Transfers transfers{[this](const std::string& line) { log(line); }};
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
  // Slots in use: trials the runner runs, and trials whose checkpoint is on its way (a
  // paused trial's slot is free once its FINISH is sent).
  std::size_t busy() const { return runner->running() + transfers.count(); }
  static std::string trial_name(const protocol::Assign& a) {
    return a.study + "#" + std::to_string(a.trial) + " attempt " + std::to_string(a.attempt);
  }

  // agent.cpp
  int next_backoff(int wanted) const;
  void send(const protocol::Message& m);
  void close_socket();
  Status connect();
  void send_hello();
  void send_ready();
  void handle(protocol::Message m);
  void on_welcome(const protocol::Welcome& w);
  void drain_socket();
  Status check_handshakes();
  void timers();
  milliseconds timeout() const;

  // agent_trials.cpp
  void finish_now(protocol::Finish f);
  void on_assign(const protocol::Assign& a);
  void start_trial(const protocol::Assign& a, const TrialFiles& files);
  void on_decision(const protocol::Decision& d);
  Status start(const protocol::Assign& a, const TrialFiles& files);
  TrialFiles files_of(const protocol::Assign& a) const;
  std::string trial_dir_of(const std::string& study, std::int64_t trial,
                           std::int64_t attempt) const;
  void drain_runner();
  void take(TransferEvent event);
  // Sends the PUTs and GETs the transfers' credit allows (to a scheduler that WELCOMEd us).
  void pump_transfers();
  // The scheduler no longer counts `lease`: stops its trial or drops its transfer.
  void drop_lease(const std::string& lease);
};

}  // namespace hpo::agent
