// Entry point of `hpo run` (called by main.cpp): argv[0] is the subcommand name; returns the
// exit code.
#pragma once

namespace hpo::cli {

int run_command(int argc, char** argv);

}  // namespace hpo::cli
