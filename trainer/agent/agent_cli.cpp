// `hpo agent --connect tcp://HOST:PORT [--gpus all|none|0,2] [--slots-per-gpu N] [--cpu-slots N]
//            [--workdir DIR] [--name NAME] [--heartbeat-ms N] [--liveness N]
//            [--shutdown-grace-seconds S] [--kill-grace-seconds S] [--verbose]
//            [--key AGENT.secret --scheduler-key SCHEDULER.key]`
// Signals: SIGTERM/SIGINT stop (running trials get the shutdown grace, then are interrupted);
// SIGUSR1 drains (running trials finish, no new ones are taken, exit 0 once they are ACKed).
#include <stdlib.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <iostream>

#include "base/cli.h"
#include "trainer/agent/agent.h"
#include "trainer/agent/builtin_objectives.h"
#include "trainer/agent/cli.h"
#include "trainer/agent/gpus.h"
#include "trainer/agent/process_runner.h"

namespace hpo::agent {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_drain{false};

void on_agent_stop_signal(int) { g_stop.store(true); }
void on_agent_drain_signal(int) { g_drain.store(true); }

}  // namespace

int agent_command(int argc, char** argv) {
  cxxopts::Options options(
      "hpo agent",
      "Run trials for a scheduler (ZeroMQ DEALER client).\nSIGTERM stops: running trials get "
      "--shutdown-grace-seconds, then are interrupted and requeued. SIGUSR1 drains: running "
      "trials finish, no new ones are taken, and the agent exits 0 once the scheduler has "
      "their results.");
  // clang-format off
  options.add_options()
      ("connect", "scheduler endpoint, e.g. tcp://host:5555", cxxopts::value<std::string>())
      ("gpus", "GPUs to use: all, none, or a list like 0,2",
       cxxopts::value<std::string>()->default_value("all"))
      ("slots-per-gpu", "trials run at once on each GPU", cxxopts::value<int>()->default_value("1"))
      ("cpu-slots", "CPU trials run at once (default: 1 when no GPU is used, else 0)",
       cxxopts::value<int>()->default_value("-1"))
      ("workdir", "trial directories (config.json, log.txt) go under DIR",
       cxxopts::value<std::string>()->default_value("hpo-work"))
      ("kill-grace-seconds", "a stopped trial gets SIGKILL this long after SIGTERM",
       cxxopts::value<double>()->default_value("5"))
      ("name", "agent id (default: HOST-PID)", cxxopts::value<std::string>()->default_value(""))
      ("heartbeat-ms", "heartbeat interval until the scheduler sets it",
       cxxopts::value<int>()->default_value("1000"))
      ("liveness", "missed heartbeats before reconnecting", cxxopts::value<int>()->default_value("5"))
      ("shutdown-grace-seconds", "on SIGTERM, how long running trials may take to end",
       cxxopts::value<double>()->default_value("5"))
      ("key", "this agent's key pair (a .secret file from `hpo keys new`), for a scheduler "
       "that uses keys", cxxopts::value<std::string>()->default_value(""))
      ("scheduler-key", "the scheduler's public key (its .key file): only that scheduler is "
       "accepted", cxxopts::value<std::string>()->default_value(""))
      ("verbose", "log every assignment")
      ("h,help", "show this help");
  // Old spellings, accepted for one release (base/cli.h).
  options.add_options(cli::kHiddenGroup)
      ("grace-ms", "use --shutdown-grace-seconds (in seconds)", cxxopts::value<int>())
      ("kill-grace-ms", "use --kill-grace-seconds (in seconds)", cxxopts::value<int>());
  // clang-format on
  int code = cli::kExitOk;
  auto parsed = cli::parse(options, argc, argv, code);
  if (!parsed) return code;
  if (!parsed->count("connect")) {
    std::cerr << "hpo agent: --connect is required (e.g. --connect tcp://127.0.0.1:5555)\n";
    return cli::kExitUsage;
  }
  AgentOptions opts;
  opts.endpoint = (*parsed)["connect"].as<std::string>();
  // `hpo run`'s local agents get ephemeral keys in the environment (scheduler/keys.h); taken
  // out at once so that no trial inherits them.
  if (const char* run_keys = std::getenv(scheduler::kRunKeysVariable)) {
    auto keys = scheduler::decode_run_keys(run_keys);
    ::unsetenv(scheduler::kRunKeysVariable);
    if (!keys) {
      std::cerr << "hpo agent: " << keys.error().message << "\n";
      return cli::kExitUsage;
    }
    opts.keys = *keys;
  } else {
    auto keys = scheduler::read_client_keys((*parsed)["key"].as<std::string>(),
                                            (*parsed)["scheduler-key"].as<std::string>());
    if (!keys) {
      std::cerr << "hpo agent: " << keys.error().message << "\n";
      return cli::kExitUsage;
    }
    opts.keys = *keys;
  }
  auto planned = plan_slots((*parsed)["gpus"].as<std::string>(),
                            (*parsed)["slots-per-gpu"].as<int>(), (*parsed)["cpu-slots"].as<int>());
  if (!planned) {
    std::cerr << "hpo agent: " << planned.error().message << "\n";
    return cli::kExitUsage;
  }
  opts.slots = static_cast<int>(planned->slots.size());
  opts.gpus = gpus_json(planned->gpus);
  opts.name = (*parsed)["name"].as<std::string>();
  opts.heartbeat_ms = (*parsed)["heartbeat-ms"].as<int>();
  opts.liveness = (*parsed)["liveness"].as<int>();
  auto ms_to_s = [](int ms) { return ms / 1000.0; };
  opts.shutdown_grace_s =
      cli::renamed<double, int>(*parsed, "shutdown-grace-seconds", "grace-ms", ms_to_s);
  const double kill_grace_s =
      cli::renamed<double, int>(*parsed, "kill-grace-seconds", "kill-grace-ms", ms_to_s);
  opts.verbose = parsed->count("verbose") > 0;
  if (opts.slots < 1 || opts.heartbeat_ms < 1 || opts.liveness < 1) {
    std::cerr << "hpo agent: --cpu-slots, --heartbeat-ms and --liveness must be >= 1\n";
    return cli::kExitUsage;
  }
  for (auto [name, value] : {std::pair{"shutdown-grace-seconds", opts.shutdown_grace_s},
                             std::pair{"kill-grace-seconds", kill_grace_s}}) {
    if (!(value >= 0)) {
      std::cerr << "hpo agent: --" << name << " must be >= 0 (got " << value << ")\n";
      return cli::kExitUsage;
    }
  }
  std::signal(SIGTERM, on_agent_stop_signal);
  std::signal(SIGINT, on_agent_stop_signal);
  // SIGUSR1 drains: running trials finish, no new ones, then exit 0 (agent.h).
  std::signal(SIGUSR1, on_agent_drain_signal);
  zmq::context_t context(1);
  ProcessRunnerOptions process;
  process.slots = planned->slots;
  process.workdir = (*parsed)["workdir"].as<std::string>();
  opts.workdir = process.workdir;  // checkpoints of paused and resumed trials go there too
  process.kill_grace_s = kill_grace_s;
  process.verbose = opts.verbose;
  if (opts.verbose) std::cerr << "hpo agent: " << planned->summary << "\n";
  Agent agent(context, opts,
              std::make_unique<KindRunner>(std::make_unique<BuiltinRunner>(),
                                           std::make_unique<ProcessRunner>(std::move(process))));
  auto status = agent.run(g_stop, &g_drain);
  if (!status) {
    std::cerr << "hpo agent: " << status.error().message << "\n";
    return cli::kExitUsage;
  }
  return cli::kExitOk;
}

}  // namespace hpo::agent
