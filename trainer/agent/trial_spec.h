// What the agent runs for one trial of kind "native" or "command": the command
// line, its environment, its working directory and the config file it reads.
// Pure functions (no I/O) except write_trial_files(); trial_dir() reads the
// current directory.
//
// Every path handed to a trial (environment, placeholders, the config file,
// the trial directory) is absolute: a command trial runs in its own workdir,
// where a path relative to the agent's directory would not be found.
//
// Layout of a trial's directory (under the agent's --workdir):
//   <workdir>/<study>/trial-<number>-attempt-<attempt>/config.json   the trial's config
//   <workdir>/<study>/trial-<number>-attempt-<attempt>/log.txt       its stdout + stderr
//
// Native trials run `<hpo> train --config <config.json> --device <d> --threads <n>`,
// with the sampled config deep-merged over trial.base. Command trials run the
// template through `/bin/bash -c` (or /bin/sh where there is no bash) after
// filling its placeholders (see fill_placeholders). bash execs the last command
// of the line, so the trial process is the agent's child and dies with it;
// a pipeline (`python train.py | tee x`) keeps a shell in between.
// Both get, in their environment:
//   HPO_TRIAL_CONFIG   path of config.json (the whole config, for any language)
//   HPO_METRICS_FD     a pipe the trial may write metric lines to (metric_lines.h)
//   HPO_TRIAL_NUMBER, HPO_TRIAL_ATTEMPT, HPO_STUDY, HPO_TRIAL_DIR
//   CUDA_VISIBLE_DEVICES  the slot's GPU, or "" on a CPU slot (no GPU grabbed by accident)
//   OMP_NUM_THREADS, MKL_NUM_THREADS, OPENBLAS_NUM_THREADS
//                      trial.threads when given (keeps CPU trials from oversubscribing)
// plus trial.env, which wins over all of these.
//
// Pausing and resuming (multi-fidelity schedules: ASHA, Hyperband; the agent's side is
// agent.h and transfer.h; experiments/command-trial/README.md has the same contract):
//   HPO_CHECKPOINT_DIR  always set: `<trial dir>/checkpoint`, an empty directory. A trial
//                       that can be paused saves its checkpoint here: on SIGTERM when
//                       HPO_PAUSE=1, or after each epoch. When the scheduler pauses the
//                       trial, the agent sends SIGTERM (SIGKILL after the kill grace, as for
//                       a STOP), then packs what this directory holds and uploads it; the
//                       trial resumes later, on any agent, as a new attempt.
//   HPO_PAUSE=1         set when the study's scheduler may pause this trial (ASSIGN.pausable):
//                       a SIGTERM may then be a pause, so save before exiting.
//   HPO_RESUME_FROM     set only when the trial is resumed: `<trial dir>/resume`, the unpacked
//                       checkpoint the paused attempt saved (read it; do not write there).
// Command templates have them as {hpo.checkpoint_dir} and {hpo.resume_from} ("" when not
// resuming). Native trials get `--checkpoint <HPO_CHECKPOINT_DIR>`, and a resumed one also
// `--resume`, with the resumed checkpoint copied into that directory first (`hpo train
// --resume` continues exactly where the paused run stopped).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "trainer/agent/child_process.h"

namespace hpo::agent {

// Where and for whom a trial runs (filled by the agent from ASSIGN and its slot).
struct TrialContext {
  std::string study;               // study name (a directory name: '/' is replaced)
  std::int64_t number = 0;         // trial number
  int attempt = 1;                 // attempt number
  std::string workdir;             // the agent's --workdir (root of trial directories)
  std::optional<std::string> gpu;  // CUDA_VISIBLE_DEVICES value of the slot; nullopt = CPU slot
  std::string hpo_binary;   // `hpo` for native trials; "" = /proc/self/exe (this binary, even
                            // after it was replaced on disk)
  double kill_grace_s = 5;  // SIGTERM -> SIGKILL
  // Pause and resume (agent.h, TrialFiles): absolute paths chosen by the agent ("": none).
  std::string checkpoint_dir;  // $HPO_CHECKPOINT_DIR, created empty by write_trial_files
  std::string resume_from;     // $HPO_RESUME_FROM: the unpacked checkpoint of a resumed trial
  bool pausable = false;       // $HPO_PAUSE=1
};

// `over` merged into `base`: objects merge key by key, recursively; anything
// else (numbers, strings, arrays, null) in `over` replaces what `base` has.
nlohmann::json deep_merge(nlohmann::json base, const nlohmann::json& over);

// Quotes `s` for /bin/sh: unchanged when it is made only of [A-Za-z0-9_@%+=:,./-]
// (and not empty), otherwise in single quotes with embedded ' written as '\''.
std::string shell_quote(std::string_view s);

// Fills `{dotted.path}` placeholders in a command template from `config`:
//   - a path walks objects by key and arrays by index: {solver.lr}, {net.conv.0.filters};
//   - `{hpo.config_file}`, `{hpo.trial}`, `{hpo.attempt}`, `{hpo.trial_dir}`, `{hpo.study}`
//     come from `extra` (the config's own "hpo" key, if any, wins);
//   - strings are inserted raw, numbers/bools/null as JSON, arrays/objects as
//     compact JSON; every value is then shell-quoted (do not quote placeholders
//     in the template yourself);
//   - `{{` and `}}` are literal braces; `${...}` (a shell variable) and a `{`
//     not followed by a path and `}` are left as they are.
// An unknown path fails: "command: placeholder {solver.momentum}: no such key
// 'momentum' in the trial's config".
Result<std::string> fill_placeholders(std::string_view tmpl, const nlohmann::json& config,
                                      const nlohmann::json& extra = nlohmann::json::object());

// The shell command trials run with: "/bin/bash", else "/bin/sh".
std::string command_shell();

// "<workdir>/<study>/trial-<number>-attempt-<attempt>", absolute and normalized
// (a relative workdir is taken from the current directory, the agent's).
std::string trial_dir(const TrialContext& ctx);

// Everything needed to start the trial's child process.
struct TrialLaunch {
  ChildSpec child;          // argv, env, cwd, log path, timeout
  nlohmann::json config;    // what config.json holds
  std::string config_path;  // <trial dir>/config.json
  std::string dir;          // the trial directory
  std::string checkpoint_dir;        // ctx.checkpoint_dir ("": none)
  std::string seed_checkpoint_from;  // a resumed native trial: copied into checkpoint_dir
};

// Builds the launch for trial kinds "native" and "command" from the study's
// "trial" object (defaults filled as search::StudySpec::trial has them; missing
// optional keys take those defaults) and the sampled config. Fails with a
// message the agent sends in FINISH (the trial is FAILED): unknown kind,
// unknown placeholder, a non-string command.
Result<TrialLaunch> build_launch(const nlohmann::json& trial, const nlohmann::json& config,
                                 const TrialContext& ctx);

// Creates the trial directory, writes config.json, and makes the checkpoint directory
// (emptied if an earlier run left one; for a resumed native trial, a copy of resume_from).
Status write_trial_files(const TrialLaunch& launch);

}  // namespace hpo::agent
