#include "tests/cluster/bed.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <sstream>

namespace hpo::cluster {
namespace {

constexpr const char* kPrefix = "hpocl-";

test::RunResult ip_run(const std::string& args) { return test::run_shell("ip " + args + " 2>&1"); }

// An `ip` command the bed cannot do without.
void ip(const std::string& args) {
  auto r = ip_run(args);
  INFO("ip " << args << "\n" << r.out);
  REQUIRE(r.code == 0);
}

std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// SIGKILLs whatever still runs in namespace `ns`, then deletes it (which takes its
// interfaces, and with them their veth peers, along).
void kill_and_delete(const std::string& ns) {
  for (const auto& pid : words(ip_run("netns pids " + ns).out)) {
    const long p = std::strtol(pid.c_str(), nullptr, 10);
    if (p > 1) ::kill(static_cast<pid_t>(p), SIGKILL);
  }
  ip_run("netns del " + ns);
}

// The pid in "hpocl-<pid>-...", or 0.
pid_t owner_of(const std::string& ns) {
  if (ns.rfind(kPrefix, 0) != 0) return 0;
  return static_cast<pid_t>(std::strtol(ns.c_str() + std::string(kPrefix).size(), nullptr, 10));
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

std::string Bed::missing_prerequisite() {
  if (::geteuid() != 0) return "not root: network namespaces and veth pairs need root";
  if (test::run_shell("ip -V").code != 0) return "iproute2's `ip` is not installed";
  if (test::run_shell("unshare --version").code != 0) return "util-linux's `unshare` is missing";
  const std::string probe = kPrefix + std::to_string(::getpid()) + "-probe";
  ip_run("netns del " + probe);
  std::string why;
  if (auto r = ip_run("netns add " + probe); r.code != 0) {
    return "cannot create a network namespace: " + first_line(r.out);
  }
  if (auto r = ip_run("-n " + probe + " link add br0 type bridge"); r.code != 0) {
    why = "no bridge support: " + first_line(r.out);
  } else if (r = ip_run("-n " + probe + " link add v0 type veth peer name v1"); r.code != 0) {
    why = "no veth support: " + first_line(r.out);
  } else if (r = ip_run("netns exec " + probe + " unshare --uts hostname hpocl-probe");
             r.code != 0) {
    why = "no UTS namespaces (unshare --uts): " + first_line(r.out);
  }
  kill_and_delete(probe);
  return why;
}

void Bed::sweep_leftovers() {
  for (const auto& line : words(ip_run("netns list").out)) {
    const pid_t owner = owner_of(line);
    if (owner <= 0 || owner == ::getpid()) continue;
    if (::kill(owner, 0) == 0 || errno != ESRCH) continue;  // its run is still going
    kill_and_delete(line);
  }
}

Bed::Bed(int agents, const std::filesystem::path& root) {
  static std::atomic<int> beds{0};
  sweep_leftovers();
  prefix_ = kPrefix + std::to_string(::getpid()) + "-" + std::to_string(++beds);
  hosts_.push_back({prefix_ + "-s", "bed-s", "198.18.0.1", "p-s", root / "bed-s"});
  for (int i = 1; i <= agents; ++i) {
    const std::string n = std::to_string(i);
    hosts_.push_back({prefix_ + "-a" + n, "bed-a" + n, "198.18.0." + std::to_string(10 + i),
                      "p-a" + n, root / ("bed-a" + n)});
  }
  try {
    const std::string sw = prefix_ + "-sw";
    ip("netns add " + sw);
    ip("-n " + sw + " link add br0 type bridge");
    ip("-n " + sw + " link set br0 up");
    for (const auto& h : hosts_) {
      std::filesystem::create_directories(h.workdir);
      ip("netns add " + h.ns);
      ip("-n " + sw + " link add " + h.port + " type veth peer name eth0 netns " + h.ns);
      ip("-n " + sw + " link set " + h.port + " master br0 up");
      ip("-n " + h.ns + " addr add " + h.address + "/24 dev eth0");
      ip("-n " + h.ns + " link set eth0 up");
      ip("-n " + h.ns + " link set lo up");
    }
  } catch (...) {
    remove();
    throw;
  }
}

Bed::~Bed() { remove(); }

void Bed::remove() {
  for (const auto& h : hosts_) kill_and_delete(h.ns);
  kill_and_delete(prefix_ + "-sw");
}

std::string Bed::endpoint(int port) const {
  return "tcp://" + scheduler().address + ":" + std::to_string(port);
}

test::Process::Launcher Bed::launcher(const Host& host) const {
  // sh's $0 is the hostname, "$@" the hpo command line Process appends.
  return {{"ip", "netns", "exec", host.ns, "unshare", "--uts", "sh", "-c",
           "hostname \"$0\" && exec \"$@\"", host.hostname}};
}

void Bed::link(const Host& host, bool up) const {
  ip("-n " + prefix_ + "-sw link set " + host.port + (up ? " up" : " down"));
}

}  // namespace hpo::cluster
