// `hpo leaderboard`, `hpo studies` and `hpo trials`: read-only queries of a
// database, safe while a scheduler writes it. `hpo show` and `hpo export`
// live in cli_show.cpp.
#include "results/cli.h"

#include <cctype>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <map>

#include "base/cli.h"
#include "results/cli_common.h"

namespace hpo::results {
namespace {

using cli_detail::Exit;
using cli_detail::report;

const std::vector<std::string> kTableFormats = {"table", "json", "csv"};
constexpr const char* kTestAccuracy = "test_accuracy";

// Takes every `--where X` / `--where=X` out of argv: cxxopts would split
// their values at commas, and a value may hold one (net.sizes=[64,32]).
cli_detail::Outcome<std::vector<char*>> take_where(int argc, char** argv,
                                                   std::vector<std::string>& wheres) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--where") {
      if (i + 1 >= argc) return std::unexpected(Exit{cli::kExitUsage, "--where needs param=value"});
      wheres.emplace_back(argv[++i]);
    } else if (arg.starts_with("--where=")) {
      wheres.emplace_back(arg.substr(8));
    } else {
      rest.push_back(argv[i]);
    }
  }
  return rest;
}

// A query's trial table: constant and empty parameters hidden, fitted to the
// terminal unless --wide.
TableOptions trial_table(const cxxopts::ParseResult& args) {
  TableOptions o;
  o.width = terminal_width();
  o.wide = args.count("wide") > 0;
  o.hide_uniform = true;
  return o;
}

void print(const Frame& frame, Format format, const TableOptions& table) {
  switch (format) {
    case Format::kTable:
      frame.print_table(std::cout, table);
      break;
    case Format::kCsv:
      frame.print_csv(std::cout);
      break;
    case Format::kJson:
      frame.print_json(std::cout);
      break;
  }
}

void add_wide_option(cxxopts::Options& options) {
  options.add_options()("wide",
                        "table: show every column (by default columns with one value in every "
                        "row, or none, are hidden and the rest fit the terminal)");
}

// "512 B", "3.4 MB", "1.2 GB": a size for a table.
std::string bytes_text(std::int64_t bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  std::size_t u = 0;
  while (v >= 1000 && u + 1 < std::size(units)) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

// The columns after the parameters, shared by leaderboard and trials. "host" is the host
// of the agent that ran the trial, as its last HELLO said (empty once its record is pruned).
void add_tail_columns(Frame& frame, const std::vector<const TrialRow*>& trials, bool human,
                      Store& store) {
  std::map<std::string, std::string> hosts;
  if (auto agents = store.agents()) {
    for (const auto& a : *agents) hosts[a.id] = a.host;
  }
  const auto state = frame.add("state", true);
  const auto duration = frame.add(human ? "duration" : "duration_s", false, true);
  const auto agent = frame.add("agent", true);
  const auto host = frame.add("host", true);
  for (std::size_t r = 0; r < trials.size(); ++r) {
    const TrialRow& t = *trials[r];
    frame.set(state, r, std::string(search::to_string(t.state)));
    const auto d = cli_detail::trial_duration(t);
    if (human) {
      frame.set(duration, r, duration_text(d));
    } else if (d) {
      frame.set(duration, r, *d);
    }
    if (!t.agent.empty()) frame.set(agent, r, t.agent);
    if (auto it = hosts.find(t.agent); it != hosts.end() && !it->second.empty()) {
      frame.set(host, r, it->second);
    }
  }
}

}  // namespace

namespace cli_detail {

Result<LeaderboardFrame> leaderboard_frame(Store& store, const StudyRow& study,
                                           const LeaderboardQuery& query, bool human) {
  auto board = store.leaderboard(study.id, query);
  if (!board) return std::unexpected(board.error());
  const std::string score_name = query.metric.empty() ? study.metric : query.metric;
  std::vector<const TrialRow*> trials;
  for (const auto& e : *board) trials.push_back(&e.trial);
  LeaderboardFrame out{Frame(trials.size()), score_name};
  Frame& frame = out.frame;
  const auto rank = frame.add("rank", false, true);
  const auto number = frame.add("trial", false, true);
  const auto score = frame.add(score_name, false, true);
  for (std::size_t r = 0; r < board->size(); ++r) {
    frame.set(rank, r, (*board)[r].rank);
    frame.set(number, r, (*board)[r].trial.number);
    frame.set(score, r, (*board)[r].score);
  }
  // The held-out figure beside the ranked one, where trials reported it (hpo
  // train's final line does): a user picks a model by it.
  std::vector<std::string> reserved = {"rank",     "trial",      score_name, "state",
                                       "duration", "duration_s", "agent",    "host"};
  if (score_name != kTestAccuracy) {
    std::vector<std::int64_t> ids;
    for (const auto* t : trials) ids.push_back(t->id);
    auto tested = store.last_values(ids, kTestAccuracy);
    if (!tested) return std::unexpected(tested.error());
    if (!tested->empty()) {
      const auto column = frame.add(kTestAccuracy, false, true);
      for (std::size_t r = 0; r < trials.size(); ++r) {
        auto it = tested->find(trials[r]->id);
        if (it != tested->end()) frame.set(column, r, it->second);
      }
      reserved.push_back(kTestAccuracy);
    }
  }
  add_param_columns(frame, trials, reserved);
  add_tail_columns(frame, trials, human, store);
  return out;
}

}  // namespace cli_detail

int leaderboard_command(int argc, char** argv) {
  const std::string command = argv[0];
  std::vector<std::string> wheres;
  auto rest = take_where(argc, argv, wheres);
  if (!rest) return report(rest.error(), command);

  cxxopts::Options options("hpo leaderboard",
                           "Rank the completed trials of a study, best first in the study's "
                           "direction.\nSafe while a search runs.");
  cli_detail::add_common_options(options, kTableFormats);
  options.add_options()("top", "how many trials to show (0 = all)",
                        cxxopts::value<long>()->default_value("10"))(
      "where",
      "keep trials whose config has param=value (dotted paths, [i] for list items, e.g. "
      "optimizer.type=adam); may repeat",
      cxxopts::value<std::string>())(
      "metric", "rank by another reported metric instead of the objective value",
      cxxopts::value<std::string>())("aggregate",
                                     "with --metric: rank by each trial's best or last value",
                                     cxxopts::value<std::string>()->default_value("best"))(
      "direction", "minimize or maximize (default: the study's direction)",
      cxxopts::value<std::string>());
  add_wide_option(options);
  int code = cli::kExitOk;
  auto args = cli::parse(options, static_cast<int>(rest->size()), rest->data(), code);
  if (!args) return code;
  auto format = cli_detail::format_option(*args, kTableFormats);
  if (!format) return report(format.error(), command);

  LeaderboardQuery query;
  const long top = (*args)["top"].as<long>();
  if (top < 0) return report(Exit{cli::kExitUsage, "--top must be 0 (all) or more"}, command);
  query.top = static_cast<std::size_t>(top);
  for (const auto& w : wheres) {
    auto filter = parse_filter(w);
    if (!filter) return report(Exit{cli::kExitUsage, filter.error().message}, command);
    query.where.push_back(std::move(*filter));
  }
  if (args->count("metric")) query.metric = (*args)["metric"].as<std::string>();
  const auto aggregate = (*args)["aggregate"].as<std::string>();
  if (aggregate != "best" && aggregate != "last") {
    return report(Exit{cli::kExitUsage, "--aggregate must be best or last"}, command);
  }
  query.aggregate = aggregate == "best" ? Aggregate::kBest : Aggregate::kLast;
  if (args->count("direction")) {
    query.direction = search::direction_from_string((*args)["direction"].as<std::string>());
    if (!query.direction) {
      return report(Exit{cli::kExitUsage, "--direction must be minimize or maximize"}, command);
    }
  }

  auto name = cli_detail::study_argument(*args);
  if (!name) return report(name.error(), command);
  auto store = cli_detail::open_database(*args);
  if (!store) return report(store.error(), command);
  auto study = cli_detail::resolve_study(*store, *name);
  if (!study) return report(study.error(), command);
  const bool human = *format == Format::kTable;
  auto built = cli_detail::leaderboard_frame(*store, *study, query, human);
  if (!built) return report(Exit{cli::kExitFailure, built.error().message}, command);
  const Frame& frame = built->frame;
  const std::string score_name = query.metric.empty() ? study->metric : query.metric;
  const std::size_t ranked = frame.rows();

  if (human) {
    auto counts = store->count_trials(study->id);
    std::int64_t total = 0;
    if (counts) {
      for (const auto& [s, n] : *counts) total += n;
    }
    const auto direction = query.direction.value_or(study->direction);
    std::cout << "study " << study->name << ": " << ranked << " ranked of " << total
              << " trials, by " << (query.metric.empty() ? "" : aggregate + " ") << score_name
              << " (" << search::to_string(direction) << ")";
    if (!query.where.empty()) std::cout << ", where " << query.where.size() << " filter(s) hold";
    std::cout << "\n";
    if (ranked == 0) {
      std::cout << (query.where.empty() ? "(no trial has a value yet)\n"
                                        : "(no ranked trial matches the filters)\n");
      return cli::kExitOk;
    }
  }
  print(frame, *format, trial_table(*args));
  return cli::kExitOk;
}

int studies_command(int argc, char** argv) {
  const std::string command = argv[0];
  cxxopts::Options options("hpo studies",
                           "List the studies in a database with their trials by state and the "
                           "best value.");
  cli_detail::add_common_options(options, kTableFormats, false);
  int code = cli::kExitOk;
  auto args = cli::parse(options, argc, argv, code);
  if (!args) return code;
  auto format = cli_detail::format_option(*args, kTableFormats);
  if (!format) return report(format.error(), command);
  auto store = cli_detail::open_database(*args);
  if (!store) return report(store.error(), command);
  auto studies = store->list_studies();
  if (!studies) return report(Exit{cli::kExitFailure, studies.error().message}, command);

  const bool human = *format == Format::kTable;
  Frame frame(studies->size());
  const auto name = frame.add("study");
  const auto status = frame.add("status");
  const auto metric = frame.add("metric", true);
  const auto direction = frame.add("direction", true);
  const auto trials = frame.add("trials", false, true);
  constexpr TrialState kStates[] = {
      TrialState::kQueued,      TrialState::kRunning,   TrialState::kPaused,
      TrialState::kCompleted,   TrialState::kPruned,    TrialState::kFailed,
      TrialState::kInterrupted, TrialState::kCancelled};
  std::vector<std::size_t> state_columns;
  for (auto s : kStates) {
    std::string label(search::to_string(s));
    for (char& c : label) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    state_columns.push_back(frame.add(label, true, true));
  }
  const auto best = frame.add("best", false, true);
  const auto best_trial = frame.add("best_trial", true, true);
  const auto created = frame.add("created", true);
  // What the scheduler's checkpoint store keeps for the study's paused trials (issue 14).
  const auto checkpoints = frame.add(human ? "checkpoints" : "checkpoint_bytes", true, true);
  for (std::size_t r = 0; r < studies->size(); ++r) {
    const StudyRow& s = (*studies)[r];
    frame.set(name, r, s.name);
    frame.set(status, r, s.status);
    frame.set(metric, r, s.metric);
    frame.set(direction, r, std::string(search::to_string(s.direction)));
    auto counts = store->count_trials(s.id);
    if (!counts) return report(Exit{cli::kExitFailure, counts.error().message}, command);
    std::int64_t total = 0;
    for (std::size_t k = 0; k < state_columns.size(); ++k) {
      auto it = counts->find(kStates[k]);
      const std::int64_t n = it == counts->end() ? 0 : it->second;
      total += n;
      frame.set(state_columns[k], r, n);
    }
    frame.set(trials, r, total);
    LeaderboardQuery top1;
    top1.top = 1;
    auto board = store->leaderboard(s.id, top1);
    if (!board) return report(Exit{cli::kExitFailure, board.error().message}, command);
    if (!board->empty()) {
      frame.set(best, r, board->front().score);
      frame.set(best_trial, r, board->front().trial.number);
    }
    frame.set(created, r, cli_detail::time_text(s.created, !human));
    if (human) {
      if (s.checkpoint_bytes > 0) frame.set(checkpoints, r, bytes_text(s.checkpoint_bytes));
    } else {
      frame.set(checkpoints, r, s.checkpoint_bytes);
    }
  }
  if (human && studies->empty()) {
    std::cout << "(no studies in " << store->path() << ")\n";
    return cli::kExitOk;
  }
  TableOptions table;
  table.width = terminal_width();
  table.show_all = "--format csv shows all";
  print(frame, *format, table);
  return cli::kExitOk;
}

int trials_command(int argc, char** argv) {
  const std::string command = argv[0];
  cxxopts::Options options("hpo trials", "List the trials of a study in number order.");
  cli_detail::add_common_options(options, kTableFormats);
  options.add_options()("state",
                        "only trials in this state (queued, running, paused, completed, pruned, "
                        "failed, interrupted, cancelled)",
                        cxxopts::value<std::string>());
  add_wide_option(options);
  int code = cli::kExitOk;
  auto args = cli::parse(options, argc, argv, code);
  if (!args) return code;
  auto format = cli_detail::format_option(*args, kTableFormats);
  if (!format) return report(format.error(), command);
  std::optional<TrialState> state;
  if (args->count("state")) {
    const auto name = (*args)["state"].as<std::string>();
    state = search::trial_state_from_string(upper(name));
    if (!state) {
      return report(
          Exit{cli::kExitUsage, "--state: unknown state '" + name +
                                    "' (queued, running, paused, completed, pruned, failed, "
                                    "interrupted, cancelled)"},
          command);
    }
  }
  auto name = cli_detail::study_argument(*args);
  if (!name) return report(name.error(), command);
  auto store = cli_detail::open_database(*args);
  if (!store) return report(store.error(), command);
  auto study = cli_detail::resolve_study(*store, *name);
  if (!study) return report(study.error(), command);
  auto rows = store->trials(study->id, state);
  if (!rows) return report(Exit{cli::kExitFailure, rows.error().message}, command);

  const bool human = *format == Format::kTable;
  std::vector<const TrialRow*> trials;
  for (const auto& t : *rows) trials.push_back(&t);
  Frame frame(trials.size());
  const auto number = frame.add("trial", false, true);
  const auto value = frame.add(study->metric, false, true);
  const auto attempt = frame.add("attempt", true, true);
  for (std::size_t r = 0; r < trials.size(); ++r) {
    frame.set(number, r, trials[r]->number);
    if (trials[r]->value) frame.set(value, r, *trials[r]->value);
    frame.set(attempt, r, trials[r]->attempt);
  }
  cli_detail::add_param_columns(frame, trials,
                                {"trial", study->metric, "attempt", "state", "duration",
                                 "duration_s", "agent", "host", "rung", "steps", "error"});
  add_tail_columns(frame, trials, human, *store);
  // Under a trial scheduler: the rung each trial reached and its last step.
  if (auto rungs = cli_detail::study_rungs(*store, *study); !rungs.empty()) {
    const auto rung = frame.add("rung", true);
    const auto steps = frame.add("steps", false, true);
    for (std::size_t r = 0; r < trials.size(); ++r) {
      auto it = rungs.find(trials[r]->number);
      if (it == rungs.end()) continue;
      if (human) {
        frame.set(rung, r, cli_detail::rung_text(it->second));
      } else if (it->second.rung >= 0) {
        frame.set(rung, r, std::int64_t{it->second.rung});
      }
      frame.set(steps, r, it->second.last_step);
    }
  }
  const auto error = frame.add("error", true);
  for (std::size_t r = 0; r < trials.size(); ++r) {
    if (!trials[r]->error.empty()) frame.set(error, r, trials[r]->error);
  }
  if (human && trials.empty()) {
    std::cout << "(no " << (state ? upper(std::string(search::to_string(*state))) + " " : "")
              << "trials in study " << study->name << ")\n";
    return cli::kExitOk;
  }
  print(frame, *format, trial_table(*args));
  return cli::kExitOk;
}

}  // namespace hpo::results
