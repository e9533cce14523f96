// Child processes for tests: a command run to its end with its output
// captured, and a background `hpo` process that is killed if the test leaves
// it running. Also polling with a deadline, for what such processes write.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace hpo::test {

class TempDir;

// The hpo binary under test (the build's, passed in by tests/CMakeLists.txt).
std::string hpo_binary();

// What a command run to its end left behind.
struct RunResult {
  int code = -1;    // exit status; -1 when killed by a signal (a crash)
  std::string out;  // all of stdout
  std::string err;  // all of stderr
};

// Runs `command` with /bin/sh -c (so redirections such as 2>&1 work), stdin
// from /dev/null, in `cwd` when given; waits for it and returns its output.
RunResult run_shell(const std::string& command, const std::filesystem::path& cwd = {});

// Runs `env hpo args` through the shell: `args` is split by the shell, `env`
// is a prefix such as "COLUMNS=60" or "env -u COLUMNS".
RunResult run_hpo(const std::string& args, const std::string& env = "");

// The same, run inside `cwd`, so that nothing it writes lands elsewhere.
RunResult run_hpo(const TempDir& cwd, const std::string& args, const std::string& env = "");

// A background `hpo args...` in its own process group, stdout and stderr
// appended to `output` (a restarted process may share its predecessor's
// file). The group is SIGKILLed when the object goes away still running.
class Process {
 public:
  Process(const std::vector<std::string>& args, const std::filesystem::path& output,
          const std::filesystem::path& cwd = {});
  // The same `hpo args...`, started as `launcher... hpo args...`, where the launcher is a
  // program that ends by exec'ing the rest of its command line (`ip netns exec NS`, say).
  // Every step must exec, not fork, so that pid() becomes hpo's own.
  struct Launcher {
    std::vector<std::string> argv;
  };
  Process(const Launcher& launcher, const std::vector<std::string>& args,
          const std::filesystem::path& output, const std::filesystem::path& cwd = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running() const { return !exited_; }
  void signal(int sig);
  // The exit code (or 128 + signal), or nullopt if still running after `limit`.
  std::optional<int> wait(std::chrono::milliseconds limit);
  // Everything written to `output` so far.
  std::string output() const;
  std::string log() const { return output(); }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int code_ = -1;
  std::filesystem::path output_;
};

// Calls `done` every 20 ms until it returns true or `limit` passes; returns
// its last answer.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit);

}  // namespace hpo::test
