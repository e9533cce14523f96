// Entry points of `hpo dashboard` and `hpo report` (called by main.cpp). Each takes argv with
// argv[0] the subcommand name and returns the exit code.
#pragma once

namespace hpo::dashboard {

int dashboard_command(int argc, char** argv);
int report_command(int argc, char** argv);

}  // namespace hpo::dashboard
