#include "results/cli.h"

#include <iostream>

#include "hpo_cli.h"

namespace hpo::results {

int leaderboard_command(int, char** argv) {
  std::cerr << "hpo " << argv[0] << ": not built yet\n";
  return cli::kExitFailure;
}

int studies_command(int, char** argv) {
  std::cerr << "hpo " << argv[0] << ": not built yet\n";
  return cli::kExitFailure;
}

int trials_command(int, char** argv) {
  std::cerr << "hpo " << argv[0] << ": not built yet\n";
  return cli::kExitFailure;
}

int show_command(int, char** argv) {
  std::cerr << "hpo " << argv[0] << ": not built yet\n";
  return cli::kExitFailure;
}

int export_command(int, char** argv) {
  std::cerr << "hpo " << argv[0] << ": not built yet\n";
  return cli::kExitFailure;
}

}  // namespace hpo::results
