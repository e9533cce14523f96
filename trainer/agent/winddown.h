// How an agent winds down (Agent::run). Two ways:
// - a stop (SIGTERM, SIGINT): no new trials; the running ones get shutdown_grace_s to end,
//   then are stopped (INTERRUPTED); their FINISHes get a second for their ACKs; then BYE.
// - a drain (SIGUSR1): no new trials (READY draining), the running ones end on their own
//   however long they take, and the agent leaves once every FINISH is ACKed (it keeps
//   re-sending them, through reconnects, until then).
// A stop during a drain takes over with its grace; a drain during a stop changes nothing.
// A fatal ERROR from the scheduler is a stop with no grace.
//
// Pure bookkeeping over times passed in; used by the agent's one thread.
#pragma once

#include <chrono>

namespace hpo::agent {

class Winddown {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Mode { kRunning, kDraining, kStopping };

  Mode mode() const { return mode_; }
  bool active() const { return mode_ != Mode::kRunning; }
  bool draining() const { return mode_ == Mode::kDraining; }

  // A drain was asked for; true when this starts one.
  bool drain() {
    if (mode_ != Mode::kRunning) return false;
    mode_ = Mode::kDraining;
    return true;
  }
  // A stop was asked for at `now` with `grace` for running trials; true when this starts one.
  bool stop(Clock::time_point now, Clock::duration grace) {
    if (mode_ == Mode::kStopping) return false;
    mode_ = Mode::kStopping;
    interrupt_at_ = now + grace;
    return true;
  }
  // True once, when a stop's grace is over: the caller stops the running trials.
  bool interrupt_due(Clock::time_point now) {
    if (mode_ != Mode::kStopping || interrupted_ || now < interrupt_at_) return false;
    interrupted_ = true;
    return true;
  }
  // Whether run() may return now: nothing runs, and every FINISH is ACKed (a drain waits for
  // that however long; a stop waits a second at most, and not at all when the scheduler is not
  // listening).
  bool may_exit(Clock::time_point now, std::size_t running, bool all_acked, bool welcomed) {
    if (mode_ == Mode::kRunning || running > 0) return false;
    if (mode_ == Mode::kDraining) return all_acked;
    if (acks_until_ == Clock::time_point{}) acks_until_ = now + std::chrono::seconds(1);
    return all_acked || now >= acks_until_ || !welcomed;
  }

 private:
  Mode mode_ = Mode::kRunning;
  Clock::time_point interrupt_at_{};
  bool interrupted_ = false;
  Clock::time_point acks_until_{};
};

}  // namespace hpo::agent
