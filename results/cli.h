// Entry points of the `hpo` subcommands that drive results/ (called by main.cpp).
// Each takes argv with argv[0] the subcommand name and returns the exit code.
#pragma once

namespace hpo::results {

int leaderboard_command(int argc, char** argv);
int studies_command(int argc, char** argv);
int trials_command(int argc, char** argv);
int show_command(int argc, char** argv);
int export_command(int argc, char** argv);
int agents_command(int argc, char** argv);  // cli_agents.cpp

}  // namespace hpo::results
