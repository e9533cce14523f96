// The multi-host test bed (issue 13): hosts as network namespaces on one
// bridge, so that the scheduler and its agents talk over real addresses and
// real links, and a link can be pulled.
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
// hostname (gethostname() is what an agent reports), then exec of hpo: the
// pid Process holds is hpo's own.
//
// Needs root, iproute2 (`ip`), util-linux (`unshare`) and a kernel with
// network namespaces, veth and bridges: missing_prerequisite() says which is
// missing, and the tests then report themselves skipped.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace hpo::cluster {

struct Host {
  std::string ns;                 // network namespace
  std::string hostname;           // what gethostname() says inside
  std::string address;            // on eth0, without the prefix length
  std::string port;               // its veth port on the switch (in <prefix>-sw)
  std::filesystem::path workdir;  // this host's own directory (agent workdir)
};

class Bed {
 public:
  // "" when the bed can be built here, else why not (for HPO_SKIP). Builds and
  // removes a probe namespace with a bridge and a veth pair.
  static std::string missing_prerequisite();

  // Removes every namespace named "hpocl-<pid>-..." whose process is gone,
  // killing what still runs inside first.
  static void sweep_leftovers();

  // Builds the switch, the scheduler host and `agents` agent hosts; their
  // workdirs under `root`. A failing `ip` command fails the test (REQUIRE),
  // and what was built so far is removed.
  Bed(int agents, const std::filesystem::path& root);
  ~Bed();
  Bed(const Bed&) = delete;
  Bed& operator=(const Bed&) = delete;

  const Host& scheduler() const { return hosts_.front(); }
  const Host& agent(int i) const { return hosts_.at(static_cast<std::size_t>(i)); }  // 1-based
  int agents() const { return static_cast<int>(hosts_.size()) - 1; }

  // "tcp://<scheduler address>:<port>".
  std::string endpoint(int port) const;

  // How a test::Process runs hpo on `host`.
  test::Process::Launcher launcher(const Host& host) const;

  // Pulls (false) or plugs back (true) the host's cable: its port on the
  // switch goes down or up. While down, packets to and from the host vanish;
  // both ends keep their addresses and sockets, as with a real cable.
  void link(const Host& host, bool up) const;

 private:
  void remove();
  std::string prefix_;
  std::vector<Host> hosts_;  // scheduler first
};

}  // namespace hpo::cluster
