// Entry point of `hpo agent` (called by main.cpp): argv[0] is the subcommand name; returns the
// exit code.
#pragma once

namespace hpo::agent {

int agent_command(int argc, char** argv);

}  // namespace hpo::agent
