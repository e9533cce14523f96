#include <iostream>

#include "hpo_cli.h"
#include "trainer/cli.h"

namespace hpo::trainer {

int agent_command(int, char** argv) {
  std::cerr << "hpo " << argv[0] << ": not built yet\n";
  return cli::kExitFailure;
}

}  // namespace hpo::trainer
