// `hpo dashboard` (the live web view, server.h) and `hpo report` (one offline HTML file,
// report.h).
#include "dashboard/cli.h"

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <thread>

#include "base/cli.h"
#include "base/clock.h"
#include "base/random.h"
#include "dashboard/report.h"
#include "dashboard/server.h"

namespace hpo::dashboard {
namespace {

int usage(const std::string& command, const std::string& message) {
  std::cerr << "hpo " << command << ": " << message << "\n";
  return cli::kExitUsage;
}

// "HOST:PORT", "[V6]:PORT" or "PORT" (on 127.0.0.1).
bool parse_bind(const std::string& text, std::string& host, int& port) {
  std::string port_text = text;
  host = "127.0.0.1";
  if (text.starts_with('[')) {
    const auto close = text.find("]:");
    if (close == std::string::npos) return false;
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else if (auto colon = text.rfind(':'); colon != std::string::npos) {
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  if (host.empty() || port_text.empty() || port_text.size() > 5) return false;
  for (char c : port_text) {
    if (c < '0' || c > '9') return false;
  }
  port = std::stoi(port_text);
  return port <= 65535;
}


}  // namespace

int dashboard_command(int argc, char** argv) {
  const std::string command = "dashboard";
  cxxopts::Options options(
      "hpo dashboard",
      "Serve a live, read-only web view of a database: studies, each study's history,\n"
      "leaderboard, parallel coordinates, parameter importance, learning curves, slices and\n"
      "the timeline of every agent's slots, each trial, and the agents. Safe while a search\n"
      "runs. Bound to a loopback address (the default) it needs no token; bound to any other\n"
      "address it prints a token that every request must carry.");
  options.add_options()("db", "the database", cxxopts::value<std::string>()->default_value("hpo.db"))(
      "bind", "HOST:PORT to listen on (PORT 0: any free port)",
      cxxopts::value<std::string>()->default_value("127.0.0.1:8080"))(
      "token",
      "the token requests must carry (default: none on loopback, a random one elsewhere); "
      "also read from $HPO_DASHBOARD_TOKEN",
      cxxopts::value<std::string>())("h,help", "show this help");
  int code = cli::kExitOk;
  auto args = cli::parse(options, argc, argv, code);
  if (!args) return code;
  ServerOptions so;
  so.db = (*args)["db"].as<std::string>();
  if (!parse_bind((*args)["bind"].as<std::string>(), so.host, so.port)) {
    return usage(command, "--bind must be HOST:PORT, [IPv6]:PORT or PORT (got '" +
                              (*args)["bind"].as<std::string>() + "')");
  }
  if (args->count("token")) {
    so.token = (*args)["token"].as<std::string>();
  } else if (const char* env = std::getenv("HPO_DASHBOARD_TOKEN"); env && *env) {
    so.token = env;
  } else if (!is_loopback(so.host)) {
    auto token = random_hex(16);
    if (!token) {
      std::cerr << "hpo dashboard: " << token.error().message << "\n";
      return cli::kExitFailure;
    }
    so.token = *token;
  }
  if (args->count("token") && so.token.size() < 16) {
    return usage(command, "--token must be at least 16 characters (a guessable token guards "
                          "nothing)");
  }

  // SIGINT and SIGTERM are waited for by one thread (blocked in all others, which inherit the
  // mask), which stops the server: a clean exit, sockets closed.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto server = Server::open(so);
  if (!server) {
    std::cerr << "hpo dashboard: " << server.error().message << "\n";
    return server.error().code == ErrorCode::kIo ? cli::kExitFailure : cli::kExitUsage;
  }
  const std::string host = so.host.find(':') != std::string::npos ? "[" + so.host + "]" : so.host;
  std::cout << "hpo dashboard: serving " << so.db << " at http://" << host << ":"
            << (*server)->port() << "/" << (so.token.empty() ? "" : "?token=" + so.token)
            << std::endl;
  if (!so.token.empty()) {
    std::cerr << "hpo dashboard: every request needs the token above (?token= or "
                 "Authorization: Bearer); keep it secret\n";
  }
  Server* raw = server->get();
  std::thread watcher([raw, stop_signals] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    raw->stop();
  });
  auto served = (*server)->serve();
  // Wake the watcher if the server ended on its own, then wait for it.
  pthread_kill(watcher.native_handle(), SIGTERM);
  watcher.join();
  if (!served) {
    std::cerr << "hpo dashboard: " << served.error().message << "\n";
    return cli::kExitFailure;
  }
  return cli::kExitOk;
}

int report_command(int argc, char** argv) {
  const std::string command = "report";
  cxxopts::Options options("hpo report",
                           "Write one study's dashboard as a single HTML file that opens offline "
                           "(charts, leaderboard, timeline, the best trials' pages).");
  options.add_options()("db", "the database", cxxopts::value<std::string>()->default_value("hpo.db"))(
      "study", "the study (default: the only one)", cxxopts::value<std::string>())(
      "o,output", "the HTML file to write", cxxopts::value<std::string>())(
      "trials", "how many of the best trials get their own page in the file",
      cxxopts::value<long>()->default_value("50"))("h,help", "show this help");
  options.parse_positional({"study"});
  int code = cli::kExitOk;
  auto args = cli::parse(options, argc, argv, code);
  if (!args) return code;
  if (!args->count("output")) return usage(command, "-o/--output FILE.html is required");
  const long trials = (*args)["trials"].as<long>();
  if (trials < 0) return usage(command, "--trials must be 0 or more");
  auto store = results::Store::open((*args)["db"].as<std::string>(), results::OpenMode::kReadOnly);
  if (!store) return usage(command, store.error().message);
  ReportOptions ro;
  ro.trials = static_cast<std::size_t>(trials);
  if (args->count("study")) {
    ro.study = (*args)["study"].as<std::string>();
  } else {
    auto studies = store->list_studies();
    if (!studies) return usage(command, studies.error().message);
    if (studies->size() != 1) {
      std::string names;
      for (const auto& s : *studies) names += (names.empty() ? "" : ", ") + s.name;
      return usage(command, "--study is required: the database holds " +
                                std::to_string(studies->size()) + " studies (" +
                                (names.empty() ? "none" : names) + ")");
    }
    ro.study = studies->front().name;
  }
  auto html = build_report(*store, ro, SystemClock().now());
  if (!html) return usage(command, html.error().message);
  const std::string path = (*args)["output"].as<std::string>();
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << *html;
    out.flush();
    if (!out) {
      std::cerr << "hpo report: cannot write " << tmp << "\n";
      return cli::kExitFailure;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::cerr << "hpo report: cannot rename " << tmp << " to " << path << "\n";
    return cli::kExitFailure;
  }
  std::cout << "hpo report: wrote " << path << " (" << html->size() / 1024 << " KiB, study "
            << ro.study << ")\n";
  return cli::kExitOk;
}

}  // namespace hpo::dashboard
