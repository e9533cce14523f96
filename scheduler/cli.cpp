// `hpo scheduler`, `hpo submit`, `hpo resume`, `hpo run`.
#include "scheduler/cli.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <thread>

#include "base/cli.h"
#include "results/cli.h"
#include "results/store.h"
#include "base/clock.h"
#include "scheduler/daemon.h"
#include "scheduler/protocol.h"
#include "scheduler/run_progress.h"
#include "search/study.h"
#include "trainer/agent/gpus.h"  // `hpo run` starts local agents: it needs their GPU discovery

namespace hpo::scheduler {
namespace {

std::atomic<bool> g_stop{false};

void on_scheduler_stop_signal(int) { g_stop.store(true); }

void install_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_scheduler_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

// Options shared by `scheduler`, `resume` and `run`.
void add_loop_options(cxxopts::Options& options) {
  options.add_options()
      ("heartbeat-ms", "heartbeat interval told to agents", cxxopts::value<int>()->default_value("1000"))
      ("liveness", "missed heartbeats before an agent is lost", cxxopts::value<int>()->default_value("5"))
      ("recovery-seconds", "after a restart, how long agents may re-announce running trials "
       "(default 2 x liveness window)", cxxopts::value<double>()->default_value("-1"))
      ("grace-seconds", "on SIGTERM/SIGINT, how long to wait for running trials",
       cxxopts::value<double>()->default_value("10"))
      ("verbose", "log every lease and outcome")
      ("h,help", "show this help");
}

DaemonOptions loop_options(const cxxopts::ParseResult& r) {
  DaemonOptions o;
  o.heartbeat_ms = r["heartbeat-ms"].as<int>();
  o.liveness = r["liveness"].as<int>();
  o.recovery_grace_s = r["recovery-seconds"].as<double>();
  o.shutdown_grace_s = r["grace-seconds"].as<double>();
  o.verbose = r.count("verbose") > 0;
  return o;
}

// Opens the store, creates the daemon, adds `specs`, runs to the end. After a
// successful run `on_done` runs while the daemon still holds the store: what it
// reads then leaves no -wal/-shm files, since the writer closes last and removes
// them (a reader closing after it would leave them).
int run_daemon(const std::string& db, DaemonOptions options,
               const std::vector<search::StudySpec>& specs,
               const std::function<void(const std::string& endpoint)>& on_bound = {},
               const std::function<void()>& on_done = {}) {
  auto store = results::Store::open(db, results::OpenMode::kWriter);
  if (!store) {
    std::cerr << "hpo scheduler: " << store.error().message << "\n";
    return cli::kExitFailure;
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

// load_study_file, plus: a command trial's relative "workdir" is relative to the
// study file. It is made absolute here, where the file's place is known, so that
// agents started in any directory (and a later `hpo resume`, which reads the
// stored spec) find it.
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

bool require(const cxxopts::ParseResult& r, const char* option, const char* command) {
  if (r.count(option)) return true;
  std::cerr << "hpo " << command << ": --" << option << " is required\n";
  return false;
}

// What `hpo scheduler` and `hpo resume` share once their studies are known:
// the daemon on --bind until it is told to stop (or, with --exit-when-done,
// until every study is finished).
int serve(const cxxopts::ParseResult& parsed, const std::string& db,
          const std::vector<search::StudySpec>& specs) {
  DaemonOptions o = loop_options(parsed);
  o.bind = parsed["bind"].as<std::string>();
  o.exit_when_done = parsed.count("exit-when-done") > 0;
  install_signals();
  return run_daemon(db, o, specs);
}

}  // namespace

int scheduler_command(int argc, char** argv) {
  cxxopts::Options options("hpo scheduler",
                           "Run the scheduler daemon: studies in --db, agents over ZeroMQ.");
  options.add_options()
      ("db", "results database (created if missing)", cxxopts::value<std::string>())
      ("bind", "ROUTER endpoint agents connect to", cxxopts::value<std::string>()->default_value("tcp://*:5555"))
      ("study", "study file to add or continue (repeatable)", cxxopts::value<std::vector<std::string>>())
      ("exit-when-done", "exit once every study is finished");
  add_loop_options(options);
  int code = cli::kExitOk;
  auto parsed = cli::parse(options, argc, argv, code);
  if (!parsed) return code;
  if (!require(*parsed, "db", "scheduler")) return cli::kExitUsage;
  std::vector<search::StudySpec> specs;
  if (parsed->count("study")) {
    for (const auto& file : (*parsed)["study"].as<std::vector<std::string>>()) {
      auto spec = load_study(file);
      if (!spec) {
        std::cerr << "hpo scheduler: " << spec.error().message << "\n";
        return cli::kExitUsage;
      }
      specs.push_back(std::move(*spec));
    }
  }
  return serve(*parsed, (*parsed)["db"].as<std::string>(), specs);
}

int submit_command(int argc, char** argv) {
  cxxopts::Options options("hpo submit",
                           "Add a study to a running scheduler (a SUBMIT message on its ROUTER).");
  options.add_options()
      ("file", "study file", cxxopts::value<std::string>())
      ("connect", "scheduler endpoint, e.g. tcp://host:5555", cxxopts::value<std::string>())
      ("timeout-ms", "how long to wait for the answer", cxxopts::value<int>()->default_value("5000"))
      ("h,help", "show this help");
  options.parse_positional({"file"});
  options.positional_help("STUDY.json");
  int code = cli::kExitOk;
  auto parsed = cli::parse(options, argc, argv, code);
  if (!parsed) return code;
  if (!require(*parsed, "file", "submit") || !require(*parsed, "connect", "submit")) {
    return cli::kExitUsage;
  }
  auto spec = load_study((*parsed)["file"].as<std::string>());
  if (!spec) {
    std::cerr << "hpo submit: " << spec.error().message << "\n";
    return cli::kExitUsage;
  }
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  try {
    socket.set(zmq::sockopt::linger, 0);
    socket.connect((*parsed)["connect"].as<std::string>());
  } catch (const zmq::error_t& e) {
    std::cerr << "hpo submit: cannot connect: " << e.what() << "\n";
    return cli::kExitUsage;
  }
  // A DEALER queues the message until the connection is up.
  if (auto s = protocol::send(socket, protocol::Submit{spec->raw}); !s) {
    std::cerr << "hpo submit: " << s.error().message << "\n";
    return cli::kExitFailure;
  }
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds((*parsed)["timeout-ms"].as<int>());
  while (std::chrono::steady_clock::now() < deadline) {
    zmq::poll(&item, 1, std::chrono::milliseconds(100));
    auto r = protocol::receive(socket, false);
    if (!r) continue;
    if (!r->message) continue;
    if (auto* ok = std::get_if<protocol::Ok>(&*r->message)) {
      std::cout << "submitted study " << ok->body.value("study", spec->name) << "\n";
      return cli::kExitOk;
    }
    if (auto* e = std::get_if<protocol::ErrorReply>(&*r->message)) {
      std::cerr << "hpo submit: scheduler refused: " << e->message << "\n";
      return cli::kExitUsage;
    }
  }
  std::cerr << "hpo submit: no answer from " << (*parsed)["connect"].as<std::string>()
            << " within " << (*parsed)["timeout-ms"].as<int>() << " ms\n";
  return cli::kExitFailure;
}

int resume_command(int argc, char** argv) {
  cxxopts::Options options("hpo resume",
                           "Continue a study (optionally with a larger budget) and run the "
                           "scheduler as `hpo scheduler` does.");
  options.add_options()
      ("study", "study name", cxxopts::value<std::string>())
      ("db", "results database", cxxopts::value<std::string>())
      ("bind", "ROUTER endpoint agents connect to", cxxopts::value<std::string>()->default_value("tcp://*:5555"))
      ("max-trials", "new trial budget", cxxopts::value<std::int64_t>())
      ("exit-when-done", "exit once every study is finished");
  add_loop_options(options);
  options.parse_positional({"study"});
  options.positional_help("STUDY");
  int code = cli::kExitOk;
  auto parsed = cli::parse(options, argc, argv, code);
  if (!parsed) return code;
  if (!require(*parsed, "study", "resume") || !require(*parsed, "db", "resume")) {
    return cli::kExitUsage;
  }
  const std::string db = (*parsed)["db"].as<std::string>();
  const std::string name = (*parsed)["study"].as<std::string>();
  std::vector<search::StudySpec> specs;
  {
    auto store = results::Store::open(db, results::OpenMode::kReadOnly);
    if (!store) {
      std::cerr << "hpo resume: " << store.error().message << "\n";
      return cli::kExitFailure;
    }
    auto row = store->find_study(name);
    if (!row) {
      std::cerr << "hpo resume: " << row.error().message << "\n";
      return cli::kExitFailure;
    }
    if (!*row) {
      std::cerr << "hpo resume: no study '" << name << "' in " << db << "\n";
      return cli::kExitUsage;
    }
    nlohmann::json raw = (*row)->spec;
    if (parsed->count("max-trials")) raw["budget"]["max_trials"] = (*parsed)["max-trials"].as<std::int64_t>();
    auto spec = search::parse_study(raw, "--max-trials");
    if (!spec) {
      std::cerr << "hpo resume: " << spec.error().message << "\n";
      return cli::kExitUsage;
    }
    specs.push_back(std::move(*spec));
  }
  return serve(*parsed, db, specs);
}

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
  cxxopts::Options options("hpo run",
                           "Run a whole search on this machine: an in-process scheduler on a free "
                           "127.0.0.1 port plus N local agent processes; prints the leaderboard.");
  options.add_options()
      ("file", "study file", cxxopts::value<std::string>())
      ("agents", "local agent processes (default: one per GPU, else enough CPU agents for "
       "the cores: cores / trial.threads, at most budget.max_parallel)",
       cxxopts::value<int>()->default_value("0"))
      ("slots", "trial slots per agent (per GPU on a GPU agent)",
       cxxopts::value<int>()->default_value("1"))
      ("workdir", "trial directories (config.json, log.txt) go under DIR",
       cxxopts::value<std::string>()->default_value("hpo-work"))
      ("db", "results database", cxxopts::value<std::string>()->default_value("hpo.db"));
  add_loop_options(options);
  options.parse_positional({"file"});
  options.positional_help("STUDY.json");
  int code = cli::kExitOk;
  auto parsed = cli::parse(options, argc, argv, code);
  if (!parsed) return code;
  if (!require(*parsed, "file", "run")) return cli::kExitUsage;
  auto spec = load_study((*parsed)["file"].as<std::string>());
  if (!spec) {
    std::cerr << "hpo run: " << spec.error().message << "\n";
    return cli::kExitUsage;
  }
  int n_agents = (*parsed)["agents"].as<int>();
  const int slots = (*parsed)["slots"].as<int>();
  if (n_agents < 0 || slots < 1) {
    std::cerr << "hpo run: --agents must be >= 0 (0 = automatic) and --slots >= 1\n";
    return cli::kExitUsage;
  }
  // Local agents: agent i gets GPU i (modulo the GPUs found), or CPU slots.
  // GPU discovery is the agent's own code (dlopen of libcudart: no GPU, no driver = none).
  const auto gpus = agent::discover_gpus().gpus;
  if (n_agents == 0) {
    int threads = std::max(1, spec->trial.value("threads", 1));
    int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    n_agents = !gpus.empty() ? static_cast<int>(gpus.size())
                             : std::clamp(cores / threads, 1, std::max(1, spec->max_parallel));
  }
  std::vector<std::vector<std::string>> agent_args;
  for (int i = 0; i < n_agents; ++i) {
    std::vector<std::string> a = {"hpo", "agent", "--name", "local-" + std::to_string(getpid()) + "-" + std::to_string(i),
                                  "--heartbeat-ms", std::to_string(loop_options(*parsed).heartbeat_ms),
                                  "--workdir", (*parsed)["workdir"].as<std::string>()};
    if (gpus.empty()) {
      a.insert(a.end(), {"--gpus", "none", "--cpu-slots", std::to_string(slots)});
    } else {
      a.insert(a.end(), {"--gpus", std::to_string(gpus[static_cast<size_t>(i) % gpus.size()].index),
                         "--slots-per-gpu", std::to_string(slots), "--cpu-slots", "0"});
    }
    agent_args.push_back(std::move(a));
  }
  const std::string db = (*parsed)["db"].as<std::string>();
  DaemonOptions o = loop_options(*parsed);
  o.bind = "tcp://127.0.0.1:*";
  o.exit_when_done = true;
  install_signals();

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
        execv("/proc/self/exe", argv.data());
        std::perror("hpo run: exec agent");
        _exit(127);
      }
      if (pid > 0) children.push_back(pid);
    }
    std::cerr << "hpo run: " << agent_args.size() << " local agent(s)"
              << (gpus.empty() ? " on the CPU" : " on GPUs") << "\n";
    progress = std::make_unique<RunProgress>(db, spec->name, spec->max_trials, isatty(STDERR_FILENO) != 0,
                                             std::cerr);
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

}  // namespace hpo::scheduler
