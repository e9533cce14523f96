// Entry points of the `hpo` subcommands that drive search/ (called by main.cpp).
// Each takes argv with argv[0] the subcommand name and returns the exit code.
#pragma once

namespace hpo::search {

int space_command(int argc, char** argv);

}  // namespace hpo::search
