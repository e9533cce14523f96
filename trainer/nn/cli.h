// Entry point of `hpo train` (called by main.cpp, and run by the agent for a native trial):
// argv[0] is the subcommand name; returns the exit code.
#pragma once

namespace hpo::nn {

int train_command(int argc, char** argv);

}  // namespace hpo::nn
