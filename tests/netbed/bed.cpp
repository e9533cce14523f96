#include "tests/netbed/bed.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

namespace hpo::netbed {
namespace {

constexpr const char* kPrefix = "hpocl-";

ShellResult ip_run(const std::string& args) { return run_shell("ip " + args); }

// An `ip` command the bed cannot do without.
Status ip(const std::string& args) {
  auto r = ip_run(args);
  if (r.code != 0)
    return fail("ip " + args + " failed (exit " + std::to_string(r.code) + "): " + r.out);
  return {};
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

ShellResult run_shell(const std::string& command) {
  ShellResult r;
  FILE* pipe = ::popen(("(" + command + ") </dev/null 2>&1").c_str(), "r");
  if (!pipe) {
    r.out = std::string("popen: ") + std::strerror(errno);
    return r;
  }
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) r.out.append(buf, n);
  const int status = ::pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string Bed::missing_prerequisite() {
  if (::geteuid() != 0) return "not root: network namespaces and veth pairs need root";
  if (run_shell("ip -V").code != 0) return "iproute2's `ip` is not installed";
  if (run_shell("unshare --version").code != 0) return "util-linux's `unshare` is missing";
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

Result<std::unique_ptr<Bed>> Bed::build(int agents, const std::filesystem::path& root) {
  static std::atomic<int> beds{0};
  sweep_leftovers();
  std::unique_ptr<Bed> bed(new Bed());
  bed->prefix_ = kPrefix + std::to_string(::getpid()) + "-" + std::to_string(++beds);
  const std::string& prefix = bed->prefix_;
  auto& hosts = bed->hosts_;
  hosts.push_back({prefix + "-s", "bed-s", "198.18.0.1", "p-s", root / "bed-s"});
  for (int i = 1; i <= agents; ++i) {
    const std::string n = std::to_string(i);
    hosts.push_back({prefix + "-a" + n, "bed-a" + n, "198.18.0." + std::to_string(10 + i),
                     "p-a" + n, root / ("bed-a" + n)});
  }
  // On an error, the unique_ptr's destructor removes what was built.
  const std::string sw = prefix + "-sw";
  for (const auto& args : {"netns add " + sw, "-n " + sw + " link add br0 type bridge",
                           "-n " + sw + " link set br0 up"}) {
    if (auto s = ip(args); !s) return std::unexpected(s.error());
  }
  for (const auto& h : hosts) {
    std::error_code ec;
    std::filesystem::create_directories(h.workdir, ec);
    if (ec) return fail("cannot create " + h.workdir.string() + ": " + ec.message());
    for (const auto& args :
         {"netns add " + h.ns,
          "-n " + sw + " link add " + h.port + " type veth peer name eth0 netns " + h.ns,
          "-n " + sw + " link set " + h.port + " master br0 up",
          "-n " + h.ns + " addr add " + h.address + "/24 dev eth0",
          "-n " + h.ns + " link set eth0 up", "-n " + h.ns + " link set lo up"}) {
      if (auto s = ip(args); !s) return std::unexpected(s.error());
    }
  }
  return bed;
}

Bed::~Bed() { remove(); }

void Bed::remove() {
  for (const auto& h : hosts_) kill_and_delete(h.ns);
  kill_and_delete(prefix_ + "-sw");
}

std::string Bed::endpoint(int port) const {
  return "tcp://" + scheduler().address + ":" + std::to_string(port);
}

std::vector<std::string> Bed::launcher(const Host& host) const {
  // sh's $0 is the hostname, "$@" the command line that follows.
  return {"ip",         "netns",   "exec",
          host.ns,      "unshare", "--uts",
          "sh",         "-c",      "hostname \"$0\" && exec \"$@\"",
          host.hostname};
}

Status Bed::link(const Host& host, bool up) const {
  return ip("-n " + prefix_ + "-sw link set " + host.port + (up ? " up" : " down"));
}

}  // namespace hpo::netbed
