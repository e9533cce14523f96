// `hpo scheduler`, `hpo submit`, `hpo resume` (`hpo run` is the composition on top: cli/run.cpp).
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
#include "results/store.h"
#include "scheduler/daemon.h"
#include "scheduler/handshake.h"
#include "scheduler/keys.h"
#include "scheduler/protocol.h"
#include "scheduler/serve.h"
#include "search/study.h"

namespace hpo::scheduler {
namespace {

// What `hpo scheduler` and `hpo resume` share once their studies are known:
// the daemon on --bind until it is told to stop (or, with --exit-when-done,
// until every study is finished).
int serve(const char* command, const cxxopts::ParseResult& parsed, const std::string& db,
          const std::vector<search::StudySpec>& specs) {
  auto loop = loop_options(parsed);
  if (!loop) {
    std::cerr << "hpo " << command << ": " << loop.error().message << "\n";
    return cli::kExitUsage;
  }
  DaemonOptions o = *loop;
  o.bind = parsed["bind"].as<std::string>();
  if (auto s = security_options(parsed, o); !s) {
    std::cerr << "hpo " << command << ": " << s.error().message << "\n";
    return cli::kExitUsage;
  }
  o.exit_when_done = parsed.count("exit-when-done") > 0;
  install_stop_signals();
  return run_daemon(db, o, specs);
}

}  // namespace

int scheduler_command(int argc, char** argv) {
  cxxopts::Options options("hpo scheduler",
                           "Run the scheduler daemon: studies in --db, agents over ZeroMQ.");
  // clang-format off
  options.add_options()
      ("db", "results database (created if missing)", cxxopts::value<std::string>())
      ("bind", "ROUTER endpoint agents connect to", cxxopts::value<std::string>()->default_value("tcp://*:5555"))
      ("study", "study file to add or continue (repeatable)", cxxopts::value<std::vector<std::string>>())
      ("exit-when-done", "exit once every study is finished");
  // clang-format on
  add_loop_options(options);
  add_security_options(options);
  int code = cli::kExitOk;
  auto parsed = cli::parse(options, argc, argv, code);
  if (!parsed) return code;
  if (!cli::require(*parsed, "db", "scheduler")) return cli::kExitUsage;
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
  return serve("scheduler", *parsed, (*parsed)["db"].as<std::string>(), specs);
}

int submit_command(int argc, char** argv) {
  cxxopts::Options options("hpo submit",
                           "Add a study to a running scheduler (a SUBMIT message on its ROUTER).");
  // clang-format off
  options.add_options()
      ("file", "study file", cxxopts::value<std::string>())
      ("connect", "scheduler endpoint, e.g. tcp://host:5555", cxxopts::value<std::string>())
      ("timeout-ms", "how long to wait for the answer", cxxopts::value<int>()->default_value("5000"))
      ("key", "this submitter's key pair (a .secret file from `hpo keys new`)",
       cxxopts::value<std::string>()->default_value(""))
      ("scheduler-key", "the scheduler's public key (its .key file)",
       cxxopts::value<std::string>()->default_value(""))
      ("h,help", "show this help");
  // clang-format on
  options.parse_positional({"file"});
  options.positional_help("STUDY.json");
  int code = cli::kExitOk;
  auto parsed = cli::parse(options, argc, argv, code);
  if (!parsed) return code;
  if (!cli::require(*parsed, "file", "submit") || !cli::require(*parsed, "connect", "submit")) {
    return cli::kExitUsage;
  }
  auto spec = load_study((*parsed)["file"].as<std::string>());
  if (!spec) {
    std::cerr << "hpo submit: " << spec.error().message << "\n";
    return cli::kExitUsage;
  }
  auto keys = read_client_keys((*parsed)["key"].as<std::string>(),
                               (*parsed)["scheduler-key"].as<std::string>());
  if (!keys) {
    std::cerr << "hpo submit: " << keys.error().message << "\n";
    return cli::kExitUsage;
  }
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  std::unique_ptr<HandshakeWatch> watch;
  try {
    socket.set(zmq::sockopt::linger, 0);
    if (*keys) {
      if (auto c = make_curve_client(socket, (*keys)->mine, (*keys)->server); !c) {
        std::cerr << "hpo submit: " << c.error().message << "\n";
        return cli::kExitFailure;
      }
    }
    if (auto w = HandshakeWatch::attach(context, socket, keys->has_value())) watch = std::move(*w);
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
  zmq::pollitem_t items[2] = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                              {watch ? watch->socket() : nullptr, 0, ZMQ_POLLIN, 0}};
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds((*parsed)["timeout-ms"].as<int>());
  while (std::chrono::steady_clock::now() < deadline) {
    zmq::poll(items, watch ? 2 : 1, std::chrono::milliseconds(100));
    if (watch) {
      // A handshake that failed will fail again: say why now rather than time out.
      if (auto failed = watch->read(); !failed.empty()) {
        std::cerr << "hpo submit: " << failed.front() << "\n";
        return cli::kExitFailure;
      }
    }
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
  std::cerr << "hpo submit: no answer from " << (*parsed)["connect"].as<std::string>() << " within "
            << (*parsed)["timeout-ms"].as<int>() << " ms\n";
  return cli::kExitFailure;
}

int resume_command(int argc, char** argv) {
  cxxopts::Options options("hpo resume",
                           "Continue a study (optionally with a larger budget) and run the "
                           "scheduler as `hpo scheduler` does.");
  // clang-format off
  options.add_options()
      ("study", "study name", cxxopts::value<std::string>())
      ("db", "results database", cxxopts::value<std::string>())
      ("bind", "ROUTER endpoint agents connect to", cxxopts::value<std::string>()->default_value("tcp://*:5555"))
      ("max-trials", "new trial budget", cxxopts::value<std::int64_t>())
      ("exit-when-done", "exit once every study is finished");
  // clang-format on
  add_loop_options(options);
  add_security_options(options);
  options.parse_positional({"study"});
  options.positional_help("STUDY");
  int code = cli::kExitOk;
  auto parsed = cli::parse(options, argc, argv, code);
  if (!parsed) return code;
  if (!cli::require(*parsed, "study", "resume") || !cli::require(*parsed, "db", "resume")) {
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
    if (parsed->count("max-trials"))
      raw["budget"]["max_trials"] = (*parsed)["max-trials"].as<std::int64_t>();
    auto spec = search::parse_study(raw, "--max-trials");
    if (!spec) {
      std::cerr << "hpo resume: " << spec.error().message << "\n";
      return cli::kExitUsage;
    }
    specs.push_back(std::move(*spec));
  }
  return serve("resume", *parsed, db, specs);
}

}  // namespace hpo::scheduler
