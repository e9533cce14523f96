#include "tests/cluster/slurm.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <sstream>

#include "tests/support/ports.h"
#include "tests/support/temp_dir.h"

namespace hpo::cluster {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The daemons live in /usr/sbin, which a non-login root shell may not have on its PATH.
std::string find_binary(const std::string& name) {
  auto r = test::run_shell("PATH=\"$PATH:/usr/sbin:/sbin\" command -v " + name);
  std::string path = r.out.substr(0, r.out.find('\n'));
  return r.code == 0 ? path : "";
}

std::string short_hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  std::string name = buf;
  return name.substr(0, name.find('.'));
}

std::string trimmed(const std::string& s) {
  const auto first = s.find_first_not_of(" \n\t");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \n\t") - first + 1);
}

std::string tail(const std::string& text, std::size_t lines) {
  std::size_t at = text.size();
  for (std::size_t n = 0; n <= lines && at > 0; ++n) {
    at = text.rfind('\n', at - 1);
    if (at == std::string::npos) return text;
  }
  return text.substr(at + 1);
}

// A /proc file's whole content (environ and cmdline have size 0 in stat).
std::string read_proc(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Alive and not a zombie (a killed child of ours stays one until it is reaped).
bool alive(pid_t pid) {
  const std::string stat = read_proc("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

}  // namespace

Daemon::Daemon(const std::vector<std::string>& argv, const fs::path& log) : log_(log) {
  std::vector<std::string> copy = argv;  // built before the fork: the child only execs
  std::vector<char*> args;
  for (auto& a : copy) args.push_back(a.data());
  args.push_back(nullptr);
  pid_ = ::fork();
  REQUIRE(pid_ >= 0);
  if (pid_ == 0) {
    ::setpgid(0, 0);
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) {
      ::_exit(126);
    }
    ::execv(args[0], args.data());
    ::_exit(127);
  }
}

Daemon::~Daemon() {
  if (pid_ <= 0 || exited_) return;
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
}

bool Daemon::running() {
  if (!exited_ && ::waitpid(pid_, nullptr, WNOHANG) == pid_) exited_ = true;
  return !exited_;
}

int kill_processes_naming(const std::string& text, std::chrono::milliseconds limit) {
  std::set<pid_t> killed;
  DIR* proc = ::opendir("/proc");
  if (!proc) return 0;
  while (const dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(entry->d_name, &end, 10);
    if (*end != '\0' || pid <= 1 || pid == ::getpid()) continue;
    const fs::path dir = fs::path("/proc") / entry->d_name;
    if (read_proc(dir / "environ").find(text) == std::string::npos &&
        read_proc(dir / "cmdline").find(text) == std::string::npos) {
      continue;
    }
    if (::kill(static_cast<pid_t>(pid), SIGKILL) == 0) killed.insert(static_cast<pid_t>(pid));
  }
  ::closedir(proc);
  test::wait_until(
      [&] {
        for (pid_t pid : killed) {
          if (alive(pid)) return false;
        }
        return true;
      },
      limit);
  return static_cast<int>(killed.size());
}

std::string OneNodeSlurm::missing_prerequisite() {
  if (::geteuid() != 0) return "not root: slurmd and munged run here as root";
  for (const char* name :
       {"munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo"}) {
    if (find_binary(name).empty()) {
      return std::string(name) + " is not installed (Debian: apt-get install slurm-wlm munge)";
    }
  }
  return "";
}

OneNodeSlurm::OneNodeSlurm(const fs::path& dir)
    : dir_(dir),
      node_(short_hostname()),
      ctld_port_(test::free_port()),
      slurmd_port_(test::free_port()) {
  // munged wants every directory above its socket searchable by all, and the socket's own
  // not writable by others; the key readable by its owner only.
  fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  for (const char* sub : {"munge", "state", "spool"}) fs::create_directories(dir_ / sub);
  fs::permissions(dir_ / "munge", fs::perms::owner_all | fs::perms::group_read |
                                      fs::perms::group_exec | fs::perms::others_read |
                                      fs::perms::others_exec);
  std::random_device random;
  std::string key;
  for (int i = 0; i < 1024; ++i) key += static_cast<char>(random() & 0xff);
  test::write_text(dir_ / "munge.key", key);
  fs::permissions(dir_ / "munge.key", fs::perms::owner_read | fs::perms::owner_write);
  write_config();
}

void OneNodeSlurm::write_config() {
  const std::string d = dir_.string();
  std::ostringstream text;
  text << "# A one-node cluster for hpo's tests (tests/cluster/slurm.h)\n"
       << "ClusterName=hpotest\n"
       << "SlurmctldHost=" << node_ << "(127.0.0.1)\n"
       << "SlurmctldPort=" << ctld_port_ << "\n"
       << "SlurmdPort=" << slurmd_port_ << "\n"
       << "SlurmUser=root\nSlurmdUser=root\n"
       << "AuthType=auth/munge\nCredType=cred/munge\n"
       << "AuthInfo=socket=" << d << "/munge/munge.sock\n"
       << "StateSaveLocation=" << d << "/state\n"
       << "SlurmdSpoolDir=" << d << "/spool\n"
       << "SlurmctldPidFile=" << d << "/slurmctld.pid\n"
       << "SlurmdPidFile=" << d << "/slurmd.pid\n"
       << "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
       << "SelectType=select/cons_tres\nSelectTypeParameters=CR_CPU\n"
       << "SchedulerType=sched/builtin\nMpiDefault=none\nReturnToService=2\nMailProg=/bin/true\n"
       << "JobCompType=jobcomp/none\nAccountingStorageType=accounting_storage/none\n"
       << "JobAcctGatherType=jobacct_gather/none\n"
       << "NodeName=" << node_ << " NodeAddr=127.0.0.1 CPUs=1 State=UNKNOWN\n"
       << "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n";
  test::write_text(conf(), text.str());
  test::write_text(dir_ / "cgroup.conf",
                   "CgroupPlugin=cgroup/v1\nConstrainCores=no\nConstrainRAMSpace=no\n"
                   "ConstrainSwapSpace=no\nConstrainDevices=no\n");
}

std::string OneNodeSlurm::start(std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  auto left = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(until -
                                                                 std::chrono::steady_clock::now());
  };
  const std::string d = dir_.string();
  munged_ = std::make_unique<Daemon>(
      std::vector<std::string>{
          find_binary("munged"), "--foreground", "--key-file=" + d + "/munge.key",
          "--socket=" + d + "/munge/munge.sock", "--pid-file=" + d + "/munge/munged.pid",
          "--seed-file=" + d + "/munge/munged.seed"},
      dir_ / "munged.log");
  if (!test::wait_until(
          [&] { return fs::exists(dir_ / "munge/munge.sock") || !munged_->running(); }, left())) {
    return "munged made no socket in time\n" + log_tails();
  }
  if (!munged_->running()) return "munged exited\n" + log_tails();
  slurmctld_ = std::make_unique<Daemon>(
      std::vector<std::string>{find_binary("slurmctld"), "-D", "-i", "-f", conf().string()},
      dir_ / "slurmctld.log");
  slurmd_ = std::make_unique<Daemon>(
      std::vector<std::string>{find_binary("slurmd"), "-D", "-N", node_, "-f", conf().string()},
      dir_ / "slurmd.log");
  std::string state;
  const bool idle = test::wait_until(
      [&] {
        if (!slurmctld_->running() || !slurmd_->running()) return true;
        state = trimmed(client("sinfo -h -n " + node_ + " -o %T").out);
        return state == "idle";
      },
      left());
  for (auto* daemon : {munged_.get(), slurmctld_.get(), slurmd_.get()}) {
    if (!daemon->running()) return daemon->log().filename().string() + ": exited\n" + log_tails();
  }
  if (!idle) return "node " + node_ + " not idle in time (sinfo: " + state + ")\n" + log_tails();
  return "";
}

test::RunResult OneNodeSlurm::client(const std::string& command) const {
  return test::run_shell("SLURM_CONF='" + conf().string() + "' " + command + " 2>&1");
}

std::string OneNodeSlurm::job_state(const std::string& job) const {
  auto r = client("squeue -h -t all -j " + job + " -o %T");
  return r.code == 0 ? trimmed(r.out) : "";
}

std::string OneNodeSlurm::log_tails() const {
  std::string all;
  for (const char* name : {"munged.log", "slurmctld.log", "slurmd.log"}) {
    const std::string text = test::read_text(dir_ / name);
    if (!text.empty()) all += "--- " + std::string(name) + " (tail)\n" + tail(text, 15);
  }
  return all;
}

void OneNodeSlurm::stop() {
  // Jobs first, so that slurmd still sees its steps end; then the daemons; then whatever
  // of the jobs is left (slurmstepd and the tasks are not in the daemons' groups).
  if (slurmctld_ && slurmctld_->running()) {
    client("scancel --partition=debug");
    test::wait_until([&] { return trimmed(client("squeue -h -o %i").out).empty(); }, 15s);
  }
  slurmd_.reset();
  slurmctld_.reset();
  munged_.reset();
  kill_processes_naming(dir_.string(), 10s);
}

OneNodeSlurm::~OneNodeSlurm() { stop(); }

}  // namespace hpo::cluster
