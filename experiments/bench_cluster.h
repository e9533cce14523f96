// A scheduler and its agents on 127.0.0.1, started and timed for the benchmarks
// (bench_dispatch, bench_security): the real `hpo scheduler` process, and agents that are
// either Agent objects (trainer/agent.h, builtin runner), one thread each, in the
// benchmark's process, or real `hpo agent` processes (children of it, N slots each).
// Plaintext, or CURVE with one key pair per agent (as `hpo keys new` makes them).
//
// Threads: the benchmark's main thread; run() starts and joins the agent threads itself.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scheduler/keys.h"

namespace hpo::bench {

struct RunResult {
  std::int64_t completed = 0;
  double seconds = 0;  // first start -> last finish, from the database
  double trials_per_s = 0;
  double peak_rss_mb = 0;  // the scheduler process
  // CPU time (user + system) of the scheduler process, and of the agents: the agent
  // processes, or this whole process over the run when the agents are its threads.
  double scheduler_cpu_s = 0;
  double agents_cpu_s = 0;
  // Lease -> finish of each completed trial (the store's started and finished times: the
  // scheduler's clock when it leased the trial, and when it took the FINISH), in ms.
  double lease_to_finish_median_ms = 0;
  double lease_to_finish_p90_ms = 0;
};

// Who runs the trials: `agents` Agent threads in this process (processes == 0),
// or `processes` child `hpo agent` processes with `slots` slots each.
struct Agents {
  int agents = 1;
  int processes = 0;
  int slots = 1;
  int total() const { return processes > 0 ? processes * slots : agents; }
  std::string describe() const;
};

// CURVE key files for a scheduler and `agents` agents, written with scheduler/keys.h as
// `hpo keys new` writes them: DIR/scheduler/scheduler.{key,secret} and
// DIR/agents/agent-I.{key,secret} (the agents' directory is the scheduler's --agent-keys).
struct Curve {
  std::filesystem::path scheduler_secret;
  std::filesystem::path scheduler_public;
  std::filesystem::path agent_keys;            // directory of agent-I.key (and .secret)
  std::vector<scheduler::ClientKeys> clients;  // agent I's pair and the scheduler's key
  std::vector<std::filesystem::path> secrets;  // agent I's .secret file
};

// Errors: libzmq without CURVE, or a file that cannot be written.
Result<Curve> make_curve(const std::filesystem::path& dir, int agents);

// A study of instant trials over Branin's box (random sampler, seed 7).
nlohmann::json study(const std::string& name, std::int64_t trials, int parallel,
                     const nlohmann::json& trial);

// Where the processes run, for agent processes on other hosts (the network test bed of
// tests/netbed: `ip netns exec ...`): each program's argv is prefixed with its launcher.
// Empty vectors: everything on 127.0.0.1, on a free port.
struct Placement {
  std::vector<std::string> scheduler_launcher;            // argv before hpo; must exec, not fork
  std::string bind;                                       // the scheduler's --bind
  std::vector<std::vector<std::string>> agent_launchers;  // agent process i: [i % size]
  std::vector<std::string> agent_connect;                 // agent process i: [i % size]
};

// Runs `trials` trials of `trial` to the end with `who`, under DIR/NAME.{db,json,log};
// with `curve`, the scheduler and every agent use its keys; with `where`, the scheduler and
// the agent processes run where it says (agent threads are not placed: use processes). A run
// that fails returns completed = 0 (the scheduler's log is named on stderr).
RunResult run(const std::string& hpo, const std::filesystem::path& dir, const std::string& name,
              const Agents& who, std::int64_t trials, const nlohmann::json& trial,
              const Curve* curve = nullptr, const Placement* where = nullptr);

// A free TCP port on 127.0.0.1 (ZeroMQ binds :* and the port is read back).
int free_port();
// Starts `hpo scheduler ARGS...`, its stderr to `log`; returns its pid (-1: fork failed).
pid_t spawn_scheduler(const std::string& hpo, const std::vector<std::string>& args,
                      const std::filesystem::path& log);
// The scheduler arguments for `curve` (none for plaintext).
std::vector<std::string> curve_args(const Curve* curve);

// "/proc/loadavg" 1/5/15 minutes.
std::string loadavg();
std::string fixed(double v, int digits);
double median(std::vector<double> v);
double quantile(std::vector<double> v, double q);

}  // namespace hpo::bench
