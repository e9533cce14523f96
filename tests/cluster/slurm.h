// A real one-node Slurm cluster for tests (issue 13), Debian's slurm-wlm 22.05 and munge,
// everything inside one directory: munged with its own key, socket and pid file; slurmctld
// and slurmd for one node (this machine's short hostname, at 127.0.0.1) on free ports, with
// their state, spool and logs there. No cgroups: proctrack/linuxproc, task/none, and a
// cgroup.conf with every Constrain* off (22.05 has no "disabled" cgroup plugin).
//
// Clients (sbatch, squeue, scancel, srun inside jobs) find it through SLURM_CONF, which
// client() sets; jobs inherit it from sbatch's environment.
//
// Teardown, also when a test fails: every job is cancelled, the daemons' process groups are
// killed, and then every process still running whose environment or command line names the
// directory (slurmstepd, the job's shell, its tasks and their children, which leave the
// daemons' groups) is killed too, so that nothing outlives the test.
//
// Needs root (slurmd runs jobs as their user, munged and the daemons here run as root):
// missing_prerequisite() says what is missing, start() why the cluster did not come up.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace hpo::cluster {

// A background program in its own process group, its stdout and stderr in `log`; the group
// is SIGKILLed when the object goes away.
class Daemon {
 public:
  Daemon(const std::vector<std::string>& argv, const std::filesystem::path& log);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  bool running();  // reaps it when it has exited
  const std::filesystem::path& log() const { return log_; }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  std::filesystem::path log_;
};

class OneNodeSlurm {
 public:
  // "" when the binaries are there and we are root, else why not (for HPO_SKIP).
  static std::string missing_prerequisite();

  // Writes the key and the configuration under `dir` (which must be empty but for what the
  // test puts there itself); starts nothing.
  explicit OneNodeSlurm(const std::filesystem::path& dir);
  ~OneNodeSlurm();
  OneNodeSlurm(const OneNodeSlurm&) = delete;
  OneNodeSlurm& operator=(const OneNodeSlurm&) = delete;

  // Starts munged, slurmctld and slurmd and waits (at most `limit`) until the node is idle.
  // "" when it is, else what failed, with the tail of each daemon's log.
  std::string start(std::chrono::milliseconds limit);

  // Runs `command` through the shell with SLURM_CONF set, stdout and stderr together in out.
  test::RunResult client(const std::string& command) const;

  // The job's state as squeue reports it ("RUNNING", "PENDING"), "" once it has left the queue.
  std::string job_state(const std::string& job) const;

  const std::string& node() const { return node_; }
  std::filesystem::path conf() const { return dir_ / "slurm.conf"; }

  // The last lines of each daemon's log, for a failing test's message.
  std::string log_tails() const;

 private:
  void stop();
  void write_config();

  std::filesystem::path dir_;
  std::string node_;
  int ctld_port_ = 0;
  int slurmd_port_ = 0;
  std::unique_ptr<Daemon> munged_;
  std::unique_ptr<Daemon> slurmctld_;
  std::unique_ptr<Daemon> slurmd_;
};

// Kills (SIGKILL) every process but ours whose environment or command line contains `text`,
// and waits up to `limit` for them to be gone; returns how many were killed.
int kill_processes_naming(const std::string& text, std::chrono::milliseconds limit);

}  // namespace hpo::cluster
