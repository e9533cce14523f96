// Internal to the results/ commands: what leaderboard, studies, trials, show
// and export share (opening the database read-only, finding the study,
// turning trials into frame rows).
#pragma once

#include <cxxopts.hpp>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "results/frame.h"
#include "results/store.h"

namespace hpo::results::cli_detail {

// Why a command stops: the exit code (hpo_cli.h) and the message for stderr.
struct Exit {
  int code;
  std::string message;
};
template <class T>
using Outcome = std::expected<T, Exit>;

// --db, --study and --format (with `formats` allowed, the first the default), --help.
// With a study, the positional arguments are collected too (see positional()): the
// study name may be given as `hpo CMD STUDY`.
void add_common_options(cxxopts::Options& options, const std::vector<std::string>& formats,
                        bool with_study = true);
// The positional arguments of a command set up with a study.
std::vector<std::string> positional(const cxxopts::ParseResult& args);
// The study named by --study or by `given` (a positional); when both, they must agree.
// nullopt when neither.
Outcome<std::optional<std::string>> study_name(const cxxopts::ParseResult& args,
                                               const std::optional<std::string>& given);
// study_name() for commands whose only positional is the study (`hpo CMD [STUDY]`):
// a second one is a usage error.
Outcome<std::optional<std::string>> study_argument(const cxxopts::ParseResult& args);
Outcome<Format> format_option(const cxxopts::ParseResult& args,
                              const std::vector<std::string>& formats);

// The database, read-only: a missing or foreign file is a usage error (2).
Outcome<Store> open_database(const cxxopts::ParseResult& args);
// The study called `name`, or the only study when nullopt; an unknown name lists
// the known ones.
Outcome<StudyRow> resolve_study(Store& store, const std::optional<std::string>& name);

// The rows `hpo leaderboard` shows for `query` (the dashboard's leaderboard is the same
// frame): rank, trial, the score (named `score`), test_accuracy where reported, the
// parameters, state, duration (`human`: text; else duration_s in seconds), agent, host.
struct LeaderboardFrame {
  Frame frame;
  std::string score;  // the score column's name: the objective's or the --metric
};
Result<LeaderboardFrame> leaderboard_frame(Store& store, const StudyRow& study,
                                           const LeaderboardQuery& query, bool human);

// Prints the message and returns the code.
int report(const Exit& exit, const std::string& command);

// "2026-11-27T06:34:50Z" (iso) or "2026-11-27 06:34:50"; empty for nullopt.
std::string time_text(std::optional<double> epoch_seconds, bool iso);

// time_text(.., iso) as JSON, null for nullopt.
nlohmann::json time_json(std::optional<double> epoch_seconds);

// Trial rows as frame columns: adds the parameter columns (flattened config,
// droppable) in first-seen order; a parameter named like a fixed column is
// prefixed with "config.".
void add_param_columns(Frame& frame, const std::vector<const TrialRow*>& trials,
                       const std::vector<std::string>& reserved);

// The seconds a trial ran (to now while RUNNING).
std::optional<double> trial_duration(const TrialRow& trial);

// Where each trial of a study under a trial scheduler (ASHA, Hyperband; issue 14) stands,
// rebuilt from the store as the scheduler rebuilds it: the highest rung it has a result at
// (-1: none yet), that rung's resource (the step it was judged at), its Hyperband bracket,
// and the last step it reported. Empty for a study without a trial scheduler.
struct RungInfo {
  int rung = -1;
  std::int64_t resource = 0;
  int bracket = -1;  // -1: not Hyperband
  std::int64_t last_step = 0;
};
std::map<std::int64_t, RungInfo> study_rungs(Store& store, const StudyRow& study);
// "rung 1 (step 3)", "rung 0 (step 1), bracket 2", or "-" for none.
std::string rung_text(const RungInfo& info);

}  // namespace hpo::results::cli_detail
