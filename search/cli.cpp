#include "search/cli.h"

#include <iostream>

#include "hpo_cli.h"

namespace hpo::search {

int space_command(int, char** argv) {
  std::cerr << "hpo " << argv[0] << ": not built yet\n";
  return cli::kExitFailure;
}

}  // namespace hpo::search
