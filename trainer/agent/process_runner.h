// The TrialRunner for trials that run as child processes (kinds "native" and
// "command"), and the runner the agent uses, which sends each ASSIGN to the
// runner of its kind (builtin trials stay in-process, trainer/builtin_objectives.h).
//
// From a trial's metric records (child_process.h, metric_lines.h) to the protocol:
//   - a record that makes a report (metric_lines.h, MetricTally) is sent as a REPORT;
//   - FINISH carries the trial's final metrics (MetricTally::final_metrics());
//   - exit 0 -> FINISH ok with the final metrics (failed if it reported none);
//     non-zero, a signal or a timeout -> FINISH failed, error = the reason and the
//     last line of output, log_tail = the last 30 lines; stop() -> FINISH pruned or
//     interrupted or paused (per StopReason) after SIGTERM, and SIGKILL after kill_grace_s
//     (a trial that exited 0 before the stop reached it ends ok);
//     after agent_stopping(), killed by SIGTERM/SIGINT/SIGHUP/SIGKILL -> interrupted.
// Threading: the agent's thread only (like every TrialRunner).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "trainer/agent/agent.h"
#include "trainer/agent/child_process.h"
#include "trainer/agent/gpus.h"
#include "trainer/agent/metric_lines.h"
#include "trainer/agent/trial_spec.h"

namespace hpo::agent {

struct ProcessRunnerOptions {
  std::vector<Slot> slots;           // where trials run; one trial per slot at a time
  std::string workdir = "hpo-work";  // root of trial directories (created on demand)
  std::string hpo_binary;            // `hpo` for native trials; "" = this executable
  double kill_grace_s = 5;           // SIGTERM -> SIGKILL on stop and timeout
  bool verbose = false;              // log start/exit timings of every trial to stderr
};

class ProcessRunner final : public TrialRunner {
 public:
  explicit ProcessRunner(ProcessRunnerOptions options);
  ~ProcessRunner() override;  // kills whatever still runs

  // Errors (the agent FINISHes the trial failed with them): no free slot, an
  // unknown kind, a bad template or placeholder, the trial directory or the
  // program not usable.
  Status start(const protocol::Assign& assign, const TrialFiles& files) override;
  void stop(const std::string& lease, StopReason reason) override;
  std::vector<TrialEvent> poll() override;
  std::chrono::milliseconds wait_hint() const override;
  std::vector<int> wait_fds() const override;
  std::size_t running() const override { return trials_.size(); }
  void agent_stopping() override { agent_stopping_ = true; }

 private:
  struct Trial;
  protocol::Finish finish_of(Trial& t);
  ProcessRunnerOptions options_;
  bool agent_stopping_ = false;  // agent_stopping() was called
  std::vector<bool> slot_busy_;
  std::map<std::string, std::unique_ptr<Trial>> trials_;  // by lease
};

// Sends "builtin" trials to `builtin` and every other kind to `process`.
class KindRunner final : public TrialRunner {
 public:
  KindRunner(std::unique_ptr<TrialRunner> builtin, std::unique_ptr<TrialRunner> process);
  Status start(const protocol::Assign& assign, const TrialFiles& files) override;
  void stop(const std::string& lease, StopReason reason) override;
  std::vector<TrialEvent> poll() override;
  std::chrono::milliseconds wait_hint() const override;
  std::vector<int> wait_fds() const override;
  std::size_t running() const override;
  void agent_stopping() override;

 private:
  std::unique_ptr<TrialRunner> builtin_;
  std::unique_ptr<TrialRunner> process_;
  std::map<std::string, TrialRunner*> owner_;  // lease -> runner
};

}  // namespace hpo::agent
