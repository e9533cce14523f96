// `hpo` only dispatches: each subcommand lives beside the folder it drives.
#include <cstring>
#include <iostream>
#include <string_view>

#include "base/cli.h"
#include "cli/run.h"
#include "dashboard/cli.h"
#include "results/cli.h"
#include "scheduler/cli.h"
#include "search/cli.h"
#include "trainer/agent/cli.h"
#include "trainer/nn/cli.h"

namespace {

struct Command {
  std::string_view name;
  std::string_view summary;
  int (*run)(int argc, char** argv);
};

constexpr Command kCommands[] = {
    {"run", "run a whole search on this machine: scheduler + local agents", hpo::cli::run_command},
    {"scheduler", "start the scheduler daemon (cluster form)", hpo::scheduler::scheduler_command},
    {"submit", "add a study to a running scheduler", hpo::scheduler::submit_command},
    {"resume", "continue an interrupted study", hpo::scheduler::resume_command},
    {"keys", "make CURVE keys for the scheduler, agents and submitters",
     hpo::scheduler::keys_command},
    {"agent", "start a trainer agent that connects to a scheduler", hpo::agent::agent_command},
    {"train", "train one network from a config (what a native trial runs)", hpo::nn::train_command},
    {"space", "validate a search space or sample configs from it", hpo::search::space_command},
    {"leaderboard", "rank the trials of a study", hpo::results::leaderboard_command},
    {"studies", "list the studies in a database", hpo::results::studies_command},
    {"trials", "list the trials of a study", hpo::results::trials_command},
    {"show", "show one trial: config, metrics, error and log tail", hpo::results::show_command},
    {"export", "export a whole study as JSON or CSV", hpo::results::export_command},
    {"agents", "list the agents the scheduler knows and their state", hpo::results::agents_command},
    {"dashboard", "serve a live web view of a database (read-only)",
     hpo::dashboard::dashboard_command},
    {"report", "write one study's dashboard as a self-contained HTML file",
     hpo::dashboard::report_command},
};

void print_usage(std::ostream& out) {
  out << "hpo - hyperparameter search orchestrator\n\n"
         "Usage: hpo <command> [options]   (hpo <command> --help for its options)\n\n"
         "Commands:\n";
  for (const auto& c : kCommands) {
    out << "  " << c.name << std::string(14 - c.name.size(), ' ') << c.summary << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(std::cerr);
    return hpo::cli::kExitUsage;
  }
  std::string_view name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(std::cout);
    return hpo::cli::kExitOk;
  }
  if (name == "--version") {
    std::cout << "hpo 0.1.0\n";
    return hpo::cli::kExitOk;
  }
  for (const auto& c : kCommands) {
    if (c.name == name) return c.run(argc - 1, argv + 1);
  }
  std::cerr << "hpo: unknown command '" << name << "'\n";
  print_usage(std::cerr);
  return hpo::cli::kExitUsage;
}
