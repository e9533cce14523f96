// Entry points of the `hpo` subcommands that drive scheduler/ (called by main.cpp).
// Each takes argv with argv[0] the subcommand name and returns the exit code.
#pragma once

namespace hpo::scheduler {

int scheduler_command(int argc, char** argv);
int submit_command(int argc, char** argv);
int resume_command(int argc, char** argv);
int keys_command(int argc, char** argv);

}  // namespace hpo::scheduler
