// Entry points of the `hpo` subcommands that drive trainer/ (called by main.cpp).
// Each takes argv with argv[0] the subcommand name and returns the exit code.
#pragma once

namespace hpo::trainer {

int agent_command(int argc, char** argv);
int train_command(int argc, char** argv);

}  // namespace hpo::trainer
