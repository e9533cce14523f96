// The multi-host test bed (issue 13): hosts as network namespaces on one
// bridge, so that the scheduler and its agents talk over real addresses and
// real links, and a link can be pulled. No Catch: the tests (tests/cluster)
// and the latency benchmark (experiments/) both build on it.
//
//   <prefix>-sw     the switch: a bridge `br0`, one veth port per host, no address
//   <prefix>-s      the scheduler host, 198.18.0.1/24 on its `eth0`
//   <prefix>-a<i>   agent host i (1-based), 198.18.0.(10+i)/24 on its `eth0`
//
// 198.18.0.0/15 is reserved for network benchmarks (RFC 2544). No namespace
// has a default route or any link outside the bed, so no packet leaves it.
// <prefix> is "hpocl-<pid>-<n>": a bed whose process is gone is a leftover,
// and Bed::sweep_leftovers (called by every Bed) removes it.
//
// Processes run in a host through launcher(): `ip netns exec` into the host's
// namespace, then `unshare --uts` so that the process sees the host's own
// hostname (gethostname() is what an agent reports), then exec of the rest of
// the command line: the pid of the launched process is the program's own.
//
// Needs root, iproute2 (`ip`), util-linux (`unshare`) and a kernel with
// network namespaces, veth and bridges: missing_prerequisite() says which is
// missing.
//
// Threads: one at a time per Bed.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"

namespace hpo::netbed {

struct Host {
  std::string ns;                 // network namespace
  std::string hostname;           // what gethostname() says inside
  std::string address;            // on eth0, without the prefix length
  std::string port;               // its veth port on the switch (in <prefix>-sw)
  std::filesystem::path workdir;  // this host's own directory (agent workdir)
};

// `sh -c COMMAND` with stdin from /dev/null: its exit code and stdout + stderr.
struct ShellResult {
  int code = -1;
  std::string out;
};
ShellResult run_shell(const std::string& command);

class Bed {
 public:
  // "" when the bed can be built here, else why not. Builds and removes a
  // probe namespace with a bridge and a veth pair.
  static std::string missing_prerequisite();

  // Removes every namespace named "hpocl-<pid>-..." whose process is gone,
  // killing what still runs inside first.
  static void sweep_leftovers();

  // Builds the switch, the scheduler host and `agents` agent hosts; their
  // workdirs under `root`. Errors: an `ip` command failed (named, with its
  // output); what was built so far is removed.
  static Result<std::unique_ptr<Bed>> build(int agents, const std::filesystem::path& root);
  ~Bed();
  Bed(const Bed&) = delete;
  Bed& operator=(const Bed&) = delete;

  const Host& scheduler() const { return hosts_.front(); }
  const Host& agent(int i) const { return hosts_.at(static_cast<std::size_t>(i)); }  // 1-based
  int agents() const { return static_cast<int>(hosts_.size()) - 1; }

  // "tcp://<scheduler address>:<port>".
  std::string endpoint(int port) const;

  // The argv prefix that runs a program on `host` (the program's argv follows it).
  std::vector<std::string> launcher(const Host& host) const;

  // Pulls (false) or plugs back (true) the host's cable: its port on the
  // switch goes down or up. While down, packets to and from the host vanish;
  // both ends keep their addresses and sockets, as with a real cable.
  Status link(const Host& host, bool up) const;

 private:
  Bed() = default;
  void remove();
  std::string prefix_;
  std::vector<Host> hosts_;  // scheduler first
};

}  // namespace hpo::netbed
