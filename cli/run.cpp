// `hpo run`: the composition of a scheduler and local agents on this machine. The scheduler
// runs in this process on a free 127.0.0.1 port; the agents are `hpo agent` child processes
// sized by the agent's own GPU discovery; the closing leaderboard is `hpo leaderboard`'s.
#include "cli/run.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/cli.h"
#include "cli/run_progress.h"
#include "results/cli.h"
#include "scheduler/keys.h"
#include "scheduler/serve.h"
#include "trainer/agent/gpus.h"

namespace hpo::cli {
namespace {

// The same table as `hpo leaderboard`, so a user sees one format everywhere.
void print_leaderboard(const std::string& db, const std::string& study) {
  std::string args[] = {"leaderboard", "--db", db, "--study", study, "--top", "10"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::cout << std::flush;
  results::leaderboard_command(static_cast<int>(argv.size()) - 1, argv.data());
}

}  // namespace

int run_command(int argc, char** argv) {
  using namespace scheduler;
  cxxopts::Options options("hpo run",
                           "Run a whole search on this machine: an in-process scheduler on a free "
                           "127.0.0.1 port plus N local agent processes; prints the leaderboard.");
  // clang-format off
  options.add_options()
      ("file", "study file", cxxopts::value<std::string>())
      ("agents",
       "local agent processes (default: one per GPU, else enough CPU agents for "
       "the cores: cores / trial.threads, at most budget.max_parallel)",
       cxxopts::value<int>()->default_value("0"))
      ("slots-per-gpu", "trials run at once on each GPU (GPU agents)",
       cxxopts::value<int>()->default_value("1"))
      ("cpu-slots",
       "CPU trials run at once per agent (default: 1 on a CPU agent, 0 on a GPU agent)",
       cxxopts::value<int>()->default_value("-1"))
      ("workdir", "trial directories (config.json, log.txt) go under DIR",
       cxxopts::value<std::string>()->default_value("hpo-work"))
      ("db", "results database", cxxopts::value<std::string>()->default_value("hpo.db"));
  // Old spellings, accepted for one release (base/cli.h).
  options.add_options(cli::kHiddenGroup)
      ("slots", "use --slots-per-gpu (GPU agents) or --cpu-slots (CPU agents)",
       cxxopts::value<int>());
  // clang-format on
  add_loop_options(options);
  options.parse_positional({"file"});
  options.positional_help("STUDY.json");
  int code = cli::kExitOk;
  auto parsed = cli::parse(options, argc, argv, code);
  if (!parsed) return code;
  if (!cli::require(*parsed, "file", "run")) return cli::kExitUsage;
  auto spec = load_study((*parsed)["file"].as<std::string>());
  if (!spec) {
    std::cerr << "hpo run: " << spec.error().message << "\n";
    return cli::kExitUsage;
  }
  auto loop = loop_options(*parsed);
  if (!loop) {
    std::cerr << "hpo run: " << loop.error().message << "\n";
    return cli::kExitUsage;
  }
  // Local agents: agent i gets GPU i (modulo the GPUs found), or CPU slots.
  // GPU discovery is the agent's own code (dlopen of libcudart: no GPU, no driver = none).
  const auto gpus = agent::discover_gpus().gpus;
  // The old --slots N meant N per GPU on a GPU agent, N CPU slots on a CPU agent.
  auto same = [](int n) { return n; };
  int n_agents = (*parsed)["agents"].as<int>();
  const int slots_per_gpu = cli::renamed<int, int>(*parsed, "slots-per-gpu", "slots", same);
  int cpu_slots = gpus.empty() ? cli::renamed<int, int>(*parsed, "cpu-slots", "slots", same)
                               : (*parsed)["cpu-slots"].as<int>();
  if (n_agents < 0 || slots_per_gpu < 1 || cpu_slots < -1) {
    std::cerr << "hpo run: --agents must be >= 0 (0 = automatic), --slots-per-gpu >= 1 and "
                 "--cpu-slots >= 0\n";
    return cli::kExitUsage;
  }
  if (cpu_slots < 0) cpu_slots = gpus.empty() ? 1 : 0;
  if (gpus.empty() && cpu_slots == 0) {
    std::cerr << "hpo run: no GPU found, so --cpu-slots must be >= 1\n";
    return cli::kExitUsage;
  }
  if (n_agents == 0) {
    int threads = std::max(1, spec->trial.value("threads", 1));
    int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    n_agents = !gpus.empty() ? static_cast<int>(gpus.size())
                             : std::clamp(cores / threads, 1, std::max(1, spec->max_parallel));
  }
  std::vector<std::vector<std::string>> agent_args;
  for (int i = 0; i < n_agents; ++i) {
    std::vector<std::string> a = {"hpo",
                                  "agent",
                                  "--name",
                                  "local-" + std::to_string(getpid()) + "-" + std::to_string(i),
                                  "--heartbeat-ms",
                                  std::to_string(loop->heartbeat_ms),
                                  "--workdir",
                                  (*parsed)["workdir"].as<std::string>()};
    if (gpus.empty()) {
      a.insert(a.end(), {"--gpus", "none", "--cpu-slots", std::to_string(cpu_slots)});
    } else {
      a.insert(a.end(), {"--gpus", std::to_string(gpus[static_cast<size_t>(i) % gpus.size()].index),
                         "--slots-per-gpu", std::to_string(slots_per_gpu), "--cpu-slots",
                         std::to_string(cpu_slots)});
    }
    agent_args.push_back(std::move(a));
  }
  const std::string db = (*parsed)["db"].as<std::string>();
  DaemonOptions o = *loop;
  o.bind = "tcp://127.0.0.1:*";
  o.exit_when_done = true;
  // Its agents stop with it, so nobody would re-announce a trial handed over: running trials
  // are recorded INTERRUPTED and `hpo resume` requeues them at once.
  o.hand_over_on_stop = false;
  // Ephemeral keys, made here and never written anywhere: even on loopback, another user of
  // this machine must not be able to join the search or feed it results. The agents get
  // theirs in the environment (scheduler/keys.h kRunKeysVariable).
  auto server_keys = new_keypair();
  auto agent_keys = new_keypair();
  if (!server_keys || !agent_keys) {
    std::cerr << "hpo run: "
              << (server_keys ? agent_keys.error().message : server_keys.error().message) << "\n";
    return cli::kExitFailure;
  }
  o.server_keys = *server_keys;
  o.keys.agent_keys = {agent_keys->public_key};
  std::vector<std::string> agent_env;
  for (char** e = environ; e && *e; ++e) {
    if (std::string_view(*e).rfind(std::string(kRunKeysVariable) + "=", 0) != 0) {
      agent_env.emplace_back(*e);
    }
  }
  agent_env.push_back(std::string(kRunKeysVariable) + "=" +
                      encode_run_keys(ClientKeys{*agent_keys, server_keys->public_key}));
  std::vector<char*> envp;
  for (auto& e : agent_env) envp.push_back(e.data());
  envp.push_back(nullptr);
  install_stop_signals();

  std::vector<pid_t> children;
  std::unique_ptr<RunProgress> progress;
  auto spawn_agents = [&](const std::string& endpoint) {
    for (auto& a : agent_args) {
      a.insert(a.begin() + 2, {"--connect", endpoint});
      // argv is built before fork: the daemon's ZeroMQ threads make malloc unsafe after it.
      std::vector<char*> argv;
      for (auto& s : a) argv.push_back(s.data());
      argv.push_back(nullptr);
      pid_t pid = fork();
      if (pid == 0) {
        // The agent stops on the SIGTERM we send at the end, not on the
        // terminal's Ctrl-C (the scheduler decides when trials end).
        signal(SIGINT, SIG_IGN);
        execve("/proc/self/exe", argv.data(), envp.data());
        std::perror("hpo run: exec agent");
        _exit(127);
      }
      if (pid > 0) children.push_back(pid);
    }
    std::cerr << "hpo run: " << agent_args.size() << " local agent(s)"
              << (gpus.empty() ? " on the CPU" : " on GPUs") << "\n";
    progress = std::make_unique<RunProgress>(db, spec->name, spec->max_trials,
                                             isatty(STDERR_FILENO) != 0, std::cerr);
    progress->start();
  };
  auto stop_agents = [&] {
    progress.reset();
    for (pid_t pid : children) kill(pid, SIGTERM);
    for (pid_t pid : children) waitpid(pid, nullptr, 0);
    children.clear();
  };
  int rc = run_daemon(db, o, {*spec}, spawn_agents, [&] {
    stop_agents();
    print_leaderboard(db, spec->name);
  });
  stop_agents();  // when the daemon failed
  return rc;
}

}  // namespace hpo::cli
