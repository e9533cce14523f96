// Helpers for the agent end-to-end tests: a temporary directory, real `hpo`
// processes (scheduler, agents, run) on 127.0.0.1, and reads of the results
// database while they run (WAL: readers never block the scheduler).
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "results/store.h"

namespace hpo::e2e {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

inline std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p);
  out << text;
}

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("hpo-e2e-" + name + "-" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// A child `hpo` process with its output in <dir>/<name>.out; SIGKILLed if still running at the end.
class Process {
 public:
  Process(const std::vector<std::string>& args, const fs::path& output, const fs::path& cwd = {}) {
    output_ = output;
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::setpgid(0, 0);
      FILE* out = std::fopen(output.c_str(), "w");
      if (out) {
        ::dup2(fileno(out), 1);
        ::dup2(fileno(out), 2);
      }
      if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
      std::vector<char*> argv;
      std::string bin = HPO_BINARY;
      argv.push_back(bin.data());
      std::vector<std::string> copy = args;
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(bin.c_str(), argv.data());
      ::_exit(127);
    }
  }
  ~Process() {
    if (pid_ > 0 && !exited_) {
      ::kill(-pid_, SIGKILL);
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig) { ::kill(pid_, sig); }
  // Exit code (or 128 + signal), or nullopt if still running after `limit`.
  std::optional<int> wait(std::chrono::milliseconds limit) {
    if (exited_) return code_;
    auto until = std::chrono::steady_clock::now() + limit;
    while (true) {
      int st = 0;
      pid_t r = ::waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return code_;
      }
      if (std::chrono::steady_clock::now() >= until) return std::nullopt;
      std::this_thread::sleep_for(10ms);
    }
  }
  std::string output() const { return read_text(output_); }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int code_ = -1;
  fs::path output_;
};

inline bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

// The trials of `study` in `db` (empty when the study does not exist yet).
inline std::vector<results::TrialRow> trials_of(const fs::path& db, const std::string& study) {
  if (!fs::exists(db)) return {};
  auto store = results::Store::open(db.string(), results::OpenMode::kReadOnly);
  if (!store) return {};
  auto row = store->find_study(study);
  if (!row || !*row) return {};
  auto t = store->trials((*row)->id);
  return t ? *t : std::vector<results::TrialRow>{};
}

inline std::vector<results::MetricRow> metrics_of(const fs::path& db, std::int64_t trial_id) {
  auto store = results::Store::open(db.string(), results::OpenMode::kReadOnly);
  if (!store) return {};
  auto m = store->metrics(trial_id);
  return m ? *m : std::vector<results::MetricRow>{};
}

inline std::size_t count_state(const std::vector<results::TrialRow>& trials, search::TrialState s) {
  return static_cast<std::size_t>(
      std::count_if(trials.begin(), trials.end(), [&](const auto& t) { return t.state == s; }));
}

// Common options: fast heartbeats so lost agents are noticed in ~1 s.
inline std::vector<std::string> scheduler_args(const fs::path& db, int port,
                                               const fs::path& study) {
  return {"scheduler",
          "--db",
          db.string(),
          "--bind",
          "tcp://127.0.0.1:" + std::to_string(port),
          "--study",
          study.string(),
          "--exit-when-done",
          "--heartbeat-ms",
          "200",
          "--liveness",
          "5"};
}

inline std::vector<std::string> agent_args(int port, const fs::path& workdir, int cpu_slots,
                                           const std::string& name) {
  return {"agent",
          "--connect",
          "tcp://127.0.0.1:" + std::to_string(port),
          "--gpus",
          "none",
          "--cpu-slots",
          std::to_string(cpu_slots),
          "--workdir",
          workdir.string(),
          "--name",
          name,
          "--heartbeat-ms",
          "200",
          "--kill-grace-ms",
          "500",
          "--grace-ms",
          "1000",
          "--verbose"};
}

}  // namespace hpo::e2e
