#include "scheduler/cli.h"

#include <iostream>

#include "hpo_cli.h"

namespace hpo::scheduler {

int scheduler_command(int, char** argv) {
  std::cerr << "hpo " << argv[0] << ": not built yet\n";
  return cli::kExitFailure;
}

int submit_command(int, char** argv) {
  std::cerr << "hpo " << argv[0] << ": not built yet\n";
  return cli::kExitFailure;
}

int resume_command(int, char** argv) {
  std::cerr << "hpo " << argv[0] << ": not built yet\n";
  return cli::kExitFailure;
}

int run_command(int, char** argv) {
  std::cerr << "hpo " << argv[0] << ": not built yet\n";
  return cli::kExitFailure;
}

}  // namespace hpo::scheduler
