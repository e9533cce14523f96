// Time, injected so that lease expiry, heartbeats and liveness are tested
// without sleeping (STYLE.md habit 3). Used by the scheduler and its tests.
#pragma once

#include <chrono>

namespace hpo {

// Two readings: `now()` is wall time (seconds since the Unix epoch, what the
// store records); `monotonic()` is seconds on a clock that never jumps, used
// for every deadline. Called from the scheduler's one thread only.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual double now() const = 0;
  virtual double monotonic() const = 0;
};

class SystemClock final : public Clock {
 public:
  double now() const override {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  double monotonic() const override {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

// A clock that moves only when told; both readings advance together.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(double start = 1'700'000'000.0) : now_(start) {}
  double now() const override { return now_; }
  double monotonic() const override { return now_; }
  void advance(double seconds) { now_ += seconds; }

 private:
  double now_;
};

}  // namespace hpo
