// Built-in benchmark objectives, run inside the agent without child
// processes, so the whole scheduler loop is exercised without training:
//   {"kind": "builtin", "function": "branin" | "hartmann6" | "sleep" | "curves",
//    "seconds": S, "steps": N}
// - branin reads config x1 in [-5,10], x2 in [0,15] (minimum 0.397887);
//   hartmann6 reads x1..x6 in [0,1] (minimum -3.32237). Both finish at once
//   with metric "value"; with steps > 0 they first report N intermediate values.
// - sleep waits `seconds` (config "seconds" wins if present), reporting metric
//   "value" at each of `steps` evenly spaced steps; its final value is config
//   "x" if present, else the seconds slept, and intermediate step k of N is
//   value + (N - k), so better configs look better early (the pruner can act).
// - curves (trainer/agent/curves.h has the model) reports metric "val_accuracy"
//   at each epoch 1..N (N = steps, 27 when 0), `seconds` (default 0.1) apart, and
//   finishes with the last one. Two more spec keys, set by the agent rather than a
//   study file, make it pausable and resumable like a command trial with
//   $HPO_CHECKPOINT_DIR and $HPO_RESUME_FROM: "checkpoint_dir" (it writes
//   <dir>/state = {"epoch": k} after each epoch k, before reporting it) and
//   "resume_from" (a directory holding such a state: it goes on at epoch k + 1,
//   with the values an uninterrupted run would have had). BuiltinRunner::start sets them
//   from the agent's TrialFiles (checkpoint_dir only when ASSIGN.pausable; a spec's own
//   keys win). A paused curves trial stops at once: its state is its last epoch's.
// - Test hooks: config or spec "fail_attempts": K makes attempts <= K fail
//   with an error (retries); config "fail": true always fails.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <string>

#include "trainer/agent/agent.h"

namespace hpo::agent {

double branin(double x1, double x2);
double hartmann6(const std::array<double, 6>& x);

// A TrialRunner for "builtin" trials. Cooperative: time advances in poll(),
// which emits the reports and finishes that are due. Not thread-safe.
class BuiltinRunner final : public TrialRunner {
 public:
  BuiltinRunner();
  ~BuiltinRunner() override;
  Status start(const protocol::Assign& assign, const TrialFiles& files) override;
  void stop(const std::string& lease, StopReason reason) override;
  std::vector<TrialEvent> poll() override;
  std::chrono::milliseconds wait_hint() const override;
  std::size_t running() const override;

 private:
  struct Trial;
  Status start_curves(Trial& trial);
  std::map<std::string, std::unique_ptr<Trial>> trials_;  // by lease
};

}  // namespace hpo::agent
