// Helpers for the scheduler end-to-end tests: real `hpo` processes on
// 127.0.0.1 (scheduler, agents), a temporary directory, and read-only looks
// at the results database while the scheduler writes it (WAL).
#pragma once

#include <fcntl.h>
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
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "results/store.h"

namespace hpo::sched_e2e {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
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

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("hpo-sched-e2e-" + name + "-" + std::to_string(getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path operator/(const std::string& name) const { return path / name; }
};

// One `hpo` child process with stdout+stderr in a log file. Killed (SIGKILL)
// on destruction if still running.
class Proc {
 public:
  Proc(std::vector<std::string> args, fs::path log) : log_(std::move(log)) {
    args.insert(args.begin(), HPO_BINARY);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;
  ~Proc() {
    if (running()) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  void signal(int sig) { ::kill(pid_, sig); }
  bool running() const { return !exited_; }
  // The exit code, or nullopt if still running after `timeout`; a death by
  // signal reads 128 + signal.
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (!exited_) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (std::chrono::steady_clock::now() >= end) return std::nullopt;
      std::this_thread::sleep_for(10ms);
    }
    return code_;
  }
  std::string log() const { return read_text(log_); }

 private:
  pid_t pid_ = -1;
  fs::path log_;
  bool exited_ = false;
  int code_ = -1;
};

// Runs `hpo args...` to completion; returns (exit code, output).
inline std::pair<int, std::string> run_hpo(const std::vector<std::string>& args,
                                           const fs::path& log) {
  Proc p(args, log);
  auto code = p.wait(60s);
  REQUIRE(code);
  return {*code, p.log()};
}

inline nlohmann::json sleep_study(const std::string& name, int max_trials, int max_parallel,
                                  double seconds, int steps) {
  return {{"name", name},
          {"objective", {{"metric", "value"}, {"direction", "minimize"}}},
          {"sampler", {{"type", "random"}}},
          {"seed", 5},
          {"budget", {{"max_trials", max_trials}, {"max_parallel", max_parallel}}},
          {"trial",
           {{"kind", "builtin"}, {"function", "sleep"}, {"seconds", seconds}, {"steps", steps}}},
          {"space", {{"x", {{"type", "float"}, {"low", 0}, {"high", 1}}}}}};
}

inline void write_json(const fs::path& p, const nlohmann::json& j) {
  std::ofstream out(p);
  out << j.dump(2);
}

// Trials of `study` by state, read-only (empty while the study does not exist).
inline std::map<search::TrialState, std::int64_t> counts(const fs::path& db,
                                                         const std::string& study) {
  auto store = results::Store::open(db.string(), results::OpenMode::kReadOnly);
  if (!store) return {};
  auto row = store->find_study(study);
  if (!row || !*row) return {};
  auto c = store->count_trials((*row)->id);
  return c ? *c : std::map<search::TrialState, std::int64_t>{};
}

inline std::int64_t completed(const fs::path& db, const std::string& study) {
  auto c = counts(db, study);
  auto it = c.find(search::TrialState::kCompleted);
  return it == c.end() ? 0 : it->second;
}

// Polls `pred` every 50 ms until true or `timeout`.
inline bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return pred();
}

}  // namespace hpo::sched_e2e
