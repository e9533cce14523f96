#include "bench_cluster.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>

#include "results/store.h"
#include "trainer/agent/agent.h"
#include "trainer/agent/builtin_objectives.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace hpo::bench {

std::string Agents::describe() const {
  if (processes == 0) return std::to_string(agents) + " agent thread(s)";
  return std::to_string(processes) + " agent process(es) x " + std::to_string(slots) + " slots";
}

Result<Curve> make_curve(const fs::path& dir, int agents) {
  Curve c;
  auto server = scheduler::new_keypair();
  if (!server) return std::unexpected(server.error());
  const fs::path sdir = dir / "scheduler";
  if (auto w = scheduler::write_keypair(sdir.string(), "scheduler", *server); !w) {
    return std::unexpected(w.error());
  }
  c.scheduler_secret = sdir / "scheduler.secret";
  c.scheduler_public = sdir / "scheduler.key";
  c.agent_keys = dir / "agents";
  for (int i = 0; i < agents; ++i) {
    auto pair = scheduler::new_keypair();
    if (!pair) return std::unexpected(pair.error());
    const std::string name = "agent-" + std::to_string(i);
    if (auto w = scheduler::write_keypair(c.agent_keys.string(), name, *pair); !w) {
      return std::unexpected(w.error());
    }
    c.clients.push_back({*pair, server->public_key});
    c.secrets.push_back(c.agent_keys / (name + ".secret"));
  }
  return c;
}

json study(const std::string& name, std::int64_t trials, int parallel, const json& trial) {
  return {{"name", name},
          {"objective", {{"metric", "value"}, {"direction", "minimize"}}},
          {"sampler", {{"type", "random"}}},
          {"seed", 7},
          {"budget", {{"max_trials", trials}, {"max_parallel", parallel}}},
          {"trial", trial},
          {"space",
           {{"x1", {{"type", "float"}, {"low", -5}, {"high", 10}}},
            {"x2", {{"type", "float"}, {"low", 0}, {"high", 15}}}}}};
}

int free_port() {
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::router);
  s.bind("tcp://127.0.0.1:*");
  std::string ep = s.get(zmq::sockopt::last_endpoint);
  return std::stoi(ep.substr(ep.rfind(':') + 1));
}

namespace {

double cpu_seconds(const rusage& u) {
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// `launcher` (argv before hpo, run from $PATH) or none: hpo itself.
pid_t spawn(const std::string& hpo, const std::vector<std::string>& args, const fs::path& log,
            const std::vector<std::string>& launcher = {}) {
  std::vector<char*> argv;
  for (const auto& a : launcher) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(const_cast<char*>(launcher.empty() ? "hpo" : hpo.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "w", stderr);
    (void)f;
    if (launcher.empty()) {
      execv(hpo.c_str(), argv.data());
    } else {
      execvp(argv[0], argv.data());
    }
    _exit(127);
  }
  return pid;
}

template <typename T>
const T* pick(const std::vector<T>& v, int i) {
  return v.empty() ? nullptr : &v[static_cast<std::size_t>(i) % v.size()];
}

}  // namespace

pid_t spawn_scheduler(const std::string& hpo, const std::vector<std::string>& args,
                      const fs::path& log) {
  std::vector<std::string> all{"scheduler"};
  all.insert(all.end(), args.begin(), args.end());
  return spawn(hpo, all, log);
}

std::vector<std::string> curve_args(const Curve* curve) {
  if (!curve) return {};
  return {"--key", curve->scheduler_secret.string(), "--agent-keys", curve->agent_keys.string()};
}

RunResult run(const std::string& hpo, const fs::path& dir, const std::string& name,
              const Agents& who, std::int64_t trials, const json& trial, const Curve* curve,
              const Placement* where) {
  static const Placement here;
  if (!where) where = &here;
  const int agents = who.processes > 0 ? 0 : who.agents;
  RunResult r;
  if (curve && static_cast<int>(curve->clients.size()) < std::max(agents, who.processes)) {
    std::cerr << "bench: " << name << ": fewer agent keys than agents\n";
    return r;
  }
  fs::path db = dir / (name + ".db");
  fs::path spec = dir / (name + ".json");
  fs::remove(db);
  std::ofstream(spec) << study(name, trials, who.total(), trial).dump();
  const std::string endpoint =
      where->bind.empty() ? "tcp://127.0.0.1:" + std::to_string(free_port()) : where->bind;
  fs::path log = dir / (name + ".log");

  std::vector<std::string> args{"--db",    db.string(),   "--bind",          endpoint,
                                "--study", spec.string(), "--exit-when-done"};
  for (auto& a : curve_args(curve)) args.push_back(a);
  args.insert(args.begin(), "scheduler");
  pid_t pid = spawn(hpo, args, log, where->scheduler_launcher);
  std::vector<pid_t> children;
  for (int i = 0; i < who.processes; ++i) {
    const std::string agent_name = name + "-agent-" + std::to_string(i);
    const std::string* connect = pick(where->agent_connect, i);
    std::vector<std::string> a{"agent",
                               "--connect",
                               connect ? *connect : endpoint,
                               "--gpus",
                               "none",
                               "--cpu-slots",
                               std::to_string(who.slots),
                               "--workdir",
                               (dir / (agent_name + "-work")).string(),
                               "--name",
                               agent_name,
                               "--shutdown-grace-seconds",
                               "1"};
    if (curve) {
      for (const auto& s : {std::string("--key"), curve->secrets[i].string(),
                            std::string("--scheduler-key"), curve->scheduler_public.string()}) {
        a.push_back(s);
      }
    }
    const auto* launcher = pick(where->agent_launchers, i);
    pid_t child = spawn(hpo, a, dir / (agent_name + ".log"),
                        launcher ? *launcher : std::vector<std::string>{});
    if (child > 0) children.push_back(child);
  }
  rusage self_before{};
  getrusage(RUSAGE_SELF, &self_before);
  zmq::context_t context(2);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < agents; ++i) {
    threads.emplace_back([&, i] {
      agent::AgentOptions o;
      o.endpoint = endpoint;
      o.name = name + "-agent-" + std::to_string(i);
      o.shutdown_grace_s = 1;
      if (curve) o.keys = curve->clients[i];
      agent::Agent a(context, o, std::make_unique<agent::BuiltinRunner>());
      (void)a.run(stop);
    });
  }
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  stop = true;
  for (auto& t : threads) t.join();
  // The agents would wait for a scheduler that is gone: stop them as a user
  // would (SIGTERM), and reap them.
  for (pid_t child : children) kill(child, SIGTERM);
  for (pid_t child : children) {
    rusage u{};
    wait4(child, nullptr, 0, &u);
    r.agents_cpu_s += cpu_seconds(u);
  }
  if (agents > 0) {
    rusage self_after{};
    getrusage(RUSAGE_SELF, &self_after);
    r.agents_cpu_s = cpu_seconds(self_after) - cpu_seconds(self_before);
  }
  r.scheduler_cpu_s = cpu_seconds(usage);
  r.peak_rss_mb = usage.ru_maxrss / 1024.0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::cerr << "bench: scheduler failed; see " << log << "\n";
    return r;
  }
  auto store = results::Store::open(db.string(), results::OpenMode::kReadOnly);
  if (!store) return r;
  auto row = store->find_study(name);
  if (!row || !*row) return r;
  auto rows = store->trials((*row)->id, search::TrialState::kCompleted);
  if (!rows || rows->empty()) return r;
  double first = 1e300, last = 0;
  std::vector<double> lease_ms;
  for (const auto& t : *rows) {
    if (t.started) first = std::min(first, *t.started);
    if (t.finished) last = std::max(last, *t.finished);
    if (t.started && t.finished) lease_ms.push_back(1000 * (*t.finished - *t.started));
  }
  r.completed = static_cast<std::int64_t>(rows->size());
  r.seconds = last - first;
  r.trials_per_s = r.seconds > 0 ? r.completed / r.seconds : 0;
  r.lease_to_finish_median_ms = median(lease_ms);
  r.lease_to_finish_p90_ms = quantile(lease_ms, 0.9);
  return r;
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  // Linear interpolation between the closest ranks.
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(pos);
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

double median(std::vector<double> v) { return quantile(std::move(v), 0.5); }

}  // namespace hpo::bench
