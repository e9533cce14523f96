// The scheduler daemon's process life, shared by `hpo scheduler`, `hpo resume` and the
// command line on top (`hpo run`, cli/run.cpp): the loop's options, study files as the daemon
// takes them, the stop signals, and one run of the daemon on a store until it is told to stop.
// Called from the process's main thread.
#pragma once

#include <cxxopts.hpp>
#include <functional>
#include <string>
#include <vector>

#include "base/error.h"
#include "scheduler/daemon.h"
#include "search/study.h"

namespace hpo::scheduler {

// The options every command that runs the daemon takes (--heartbeat-ms, --liveness,
// --recovery-seconds, --shutdown-grace-seconds, --checkpoint-dir, --checkpoint-max-gb,
// --verbose, --help; the old --grace-seconds is a hidden alias of --shutdown-grace-seconds for
// one release), and the DaemonOptions they give (checkpoint_dir "" = the default, which
// run_daemon makes DB.checkpoints; "none" = no checkpoint store).
// Errors (usage errors, naming the option): a negative --shutdown-grace-seconds, a
// --checkpoint-max-gb that is not positive.
void add_loop_options(cxxopts::Options& options);
Result<DaemonOptions> loop_options(const cxxopts::ParseResult& parsed);

// The security options of a daemon reachable from other machines (`hpo scheduler`, `hpo
// resume`): --key (the scheduler's .secret), --agent-keys DIR, --submitter-keys DIR,
// --insecure. security_options fills them into `options`. Errors (usage errors, naming the
// option or file): a list without --key, --key without --agent-keys, a bad key file.
void add_security_options(cxxopts::Options& options);
Status security_options(const cxxopts::ParseResult& parsed, DaemonOptions& options);

// load_study_file, plus: a command trial's relative "workdir" is made absolute relative to the
// study file, where the file's place is known, so that agents started in any directory (and a
// later `hpo resume`, which reads the stored spec) find it.
Result<search::StudySpec> load_study(const std::string& file);

// SIGTERM and SIGINT ask run_daemon to stop (running trials get the shutdown window); SIGHUP
// reloads the key lists (DaemonOptions::reload_keys); SIGPIPE is ignored.
void install_stop_signals();

// Opens `db` as its writer, creates the daemon, adds `specs` and runs until stopped (or, with
// options.exit_when_done, until every study is finished). `on_bound` gets the endpoint once
// bound; `on_done` runs after a successful run while the daemon still holds the store (what it
// reads then leaves no -wal/-shm files: the writer closes last and removes them). Errors go to
// stderr; returns the exit code.
int run_daemon(const std::string& db, DaemonOptions options,
               const std::vector<search::StudySpec>& specs,
               const std::function<void(const std::string& endpoint)>& on_bound = {},
               const std::function<void()>& on_done = {});

}  // namespace hpo::scheduler
