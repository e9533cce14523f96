#include "scheduler/serve.h"

#include <signal.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "base/cli.h"
#include "base/clock.h"
#include "results/store.h"

namespace hpo::scheduler {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

void on_scheduler_stop_signal(int) { g_stop.store(true); }
void on_scheduler_reload_signal(int) { g_reload.store(true); }

}  // namespace

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_scheduler_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  struct sigaction reload {};
  reload.sa_handler = on_scheduler_reload_signal;
  sigemptyset(&reload.sa_mask);
  sigaction(SIGHUP, &reload, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

void add_security_options(cxxopts::Options& options) {
  // clang-format off
  options.add_options("Security")
      ("key", "the scheduler's key pair (a .secret file from `hpo keys new`): CURVE on",
       cxxopts::value<std::string>()->default_value(""))
      ("agent-keys", "directory of agent public keys (*.key) allowed to run trials",
       cxxopts::value<std::string>()->default_value(""))
      ("submitter-keys", "directory of public keys (*.key) allowed to submit studies",
       cxxopts::value<std::string>()->default_value(""))
      ("insecure", "allow a plaintext bind reachable from other machines (anyone who reaches "
       "the port can run commands on every agent)");
  // clang-format on
}

Status security_options(const cxxopts::ParseResult& r, DaemonOptions& o) {
  const std::string key = r["key"].as<std::string>();
  o.keys.agent_dir = r["agent-keys"].as<std::string>();
  o.keys.submitter_dir = r["submitter-keys"].as<std::string>();
  o.insecure = r.count("insecure") > 0;
  if (key.empty()) {
    if (!o.keys.agent_dir.empty() || !o.keys.submitter_dir.empty()) {
      return fail("--agent-keys and --submitter-keys need --key (the scheduler's .secret file)");
    }
    return {};
  }
  if (o.insecure) return fail("--insecure and --key contradict each other: pick one");
  if (o.keys.agent_dir.empty()) {
    return fail("--key needs --agent-keys DIR (the public keys of the agents allowed to join)");
  }
  auto pair = read_keypair(key);
  if (!pair) return fail("--key: " + pair.error().message);
  o.server_keys = *pair;
  return {};
}

void add_loop_options(cxxopts::Options& options) {
  // clang-format off
  options.add_options()
      ("heartbeat-ms", "heartbeat interval told to agents",
       cxxopts::value<int>()->default_value("1000"))
      ("liveness", "missed heartbeats before an agent is lost",
       cxxopts::value<int>()->default_value("5"))
      ("recovery-seconds",
       "after a restart, how long agents may re-announce running trials "
       "(default 2 x liveness window)",
       cxxopts::value<double>()->default_value("-1"))
      ("shutdown-grace-seconds", "on SIGTERM/SIGINT, how long to wait for running trials",
       cxxopts::value<double>()->default_value("10"))
      ("checkpoint-dir",
       "where paused trials' checkpoints are kept (default: DB.checkpoints next to the "
       "database; \"none\": keep none, so a paused trial resumes from its start)",
       cxxopts::value<std::string>()->default_value(""))
      ("checkpoint-max-gb", "the most disk the checkpoints may take",
       cxxopts::value<double>()->default_value("10"))
      ("checkpoint-shared",
       "the checkpoint directory is the same directory at the same path on every agent's "
       "machine (NFS, a cluster file system): agents that see it write and read checkpoints "
       "there instead of sending them over the network")
      ("verbose", "log every lease and outcome")
      ("h,help", "show this help");
  // Old spellings, accepted for one release (base/cli.h).
  options.add_options(cli::kHiddenGroup)
      ("grace-seconds", "use --shutdown-grace-seconds", cxxopts::value<double>());
  // clang-format on
}

Result<DaemonOptions> loop_options(const cxxopts::ParseResult& r) {
  DaemonOptions o;
  o.heartbeat_ms = r["heartbeat-ms"].as<int>();
  o.liveness = r["liveness"].as<int>();
  o.recovery_window_s = r["recovery-seconds"].as<double>();
  o.shutdown_grace_s = cli::renamed<double, double>(r, "shutdown-grace-seconds", "grace-seconds",
                                                    [](double s) { return s; });
  o.verbose = r.count("verbose") > 0;
  o.checkpoint_dir = r["checkpoint-dir"].as<std::string>();
  o.checkpoint_shared = r.count("checkpoint-shared") > 0;
  const double gb = r["checkpoint-max-gb"].as<double>();
  if (!(gb > 0 && gb <= 1e6)) {
    std::ostringstream why;
    why << "--checkpoint-max-gb must be in (0, 1000000] (got " << gb << ")";
    return fail(why.str());
  }
  o.checkpoint_max_bytes = static_cast<std::uint64_t>(gb * 1e9);
  if (!(o.shutdown_grace_s >= 0)) {
    std::ostringstream why;
    why << "--shutdown-grace-seconds must be >= 0 (got " << o.shutdown_grace_s << ")";
    return fail(why.str());
  }
  return o;
}

int run_daemon(const std::string& db, DaemonOptions options,
               const std::vector<search::StudySpec>& specs,
               const std::function<void(const std::string& endpoint)>& on_bound,
               const std::function<void()>& on_done) {
  auto store = results::Store::open(db, results::OpenMode::kWriter);
  if (!store) {
    std::cerr << "hpo scheduler: " << store.error().message << "\n";
    return cli::kExitFailure;
  }
  if (!options.reload_keys) options.reload_keys = &g_reload;
  if (options.checkpoint_dir.empty()) options.checkpoint_dir = db + ".checkpoints";
  if (options.checkpoint_dir == "none") {
    if (options.checkpoint_shared) {
      std::cerr << "hpo scheduler: --checkpoint-shared needs a checkpoint directory, not none\n";
      return cli::kExitUsage;
    }
    options.checkpoint_dir.clear();
  }
  zmq::context_t context(1);
  SystemClock clock;
  auto daemon = Daemon::create(context, std::move(*store), options, clock);
  if (!daemon) {
    std::cerr << "hpo scheduler: " << daemon.error().message << "\n";
    return cli::kExitFailure;
  }
  for (const auto& spec : specs) {
    if (auto s = (*daemon)->add_study(spec); !s) {
      std::cerr << "hpo scheduler: " << s.error().message << "\n";
      return cli::kExitFailure;
    }
  }
  if (on_bound) on_bound((*daemon)->endpoint());
  if (auto s = (*daemon)->run(g_stop); !s) {
    std::cerr << "hpo scheduler: " << s.error().message << "\n";
    return cli::kExitFailure;
  }
  if (on_done) on_done();
  return cli::kExitOk;
}

Result<search::StudySpec> load_study(const std::string& file) {
  auto spec = search::load_study_file(file);
  if (!spec || spec->trial.value("kind", "") != "command") return spec;
  std::string workdir = spec->trial.value("workdir", ".");
  if (workdir.empty() || workdir.front() == '/' || !spec->raw.contains("trial")) return spec;
  std::error_code ec;
  auto dir = std::filesystem::absolute(std::filesystem::path(file).parent_path() / workdir, ec);
  if (ec) return spec;
  std::string absolute = dir.lexically_normal().string();
  while (absolute.size() > 1 && absolute.back() == '/') absolute.pop_back();
  nlohmann::json raw = spec->raw;
  raw["trial"]["workdir"] = absolute;
  return search::parse_study(raw, file);
}

}  // namespace hpo::scheduler
