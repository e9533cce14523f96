// `hpo show [STUDY] TRIAL` (one trial: config, metrics per step, error, log tail) and
// `hpo export` (a whole study, metrics included, as JSON or CSV).
#include <iostream>
#include <map>
#include <set>

#include "base/cli.h"
#include "results/cli.h"
#include "results/cli_common.h"
#include "search/study.h"

namespace hpo::results {
namespace {

using cli_detail::Exit;
using cli_detail::report;
using nlohmann::json;
using ojson = nlohmann::ordered_json;  // output objects keep their field order

const auto kDump = json::error_handler_t::replace;  // stored text may hold invalid UTF-8

// Metrics of one trial as rows by step: [{"step": 1, "loss": .., "acc": ..}, ...].
json metrics_by_step(const std::vector<MetricRow>& metrics, std::size_t begin, std::size_t end) {
  std::map<std::int64_t, json> steps;
  for (std::size_t i = begin; i < end; ++i) {
    json& row = steps[metrics[i].step];
    row["step"] = metrics[i].step;
    row[metrics[i].name] = metrics[i].value;
  }
  json out = json::array();
  for (auto& [step, row] : steps) out.push_back(std::move(row));
  return out;
}

ojson trial_json(const TrialRow& t) {
  const auto duration = cli_detail::trial_duration(t);
  return ojson{{"trial", t.number},
               {"state", std::string(search::to_string(t.state))},
               {"value", t.value ? json(*t.value) : json()},
               {"attempt", t.attempt},
               {"agent", t.agent},
               {"lease", t.lease},
               {"hash", t.hash},
               {"queued", cli_detail::time_json(t.queued)},
               {"started", cli_detail::time_json(t.started)},
               {"finished", cli_detail::time_json(t.finished)},
               {"duration_s", duration ? json(*duration) : json()},
               {"error", t.error},
               {"log_tail", t.log_tail},
               {"config", ojson(t.config)}};
}

void indent(std::ostream& out, const std::string& text) {
  std::size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out << "  " << text.substr(start, end - start) << "\n";
    start = end + 1;
  }
}

}  // namespace

int show_command(int argc, char** argv) {
  const std::string command = argv[0];
  cxxopts::Options options("hpo show",
                           "Show one trial: its config, every metric by step, its "
                           "error and the tail of its log.");
  cli_detail::add_common_options(options, {"table", "json"});
  options.add_options()("trial", "trial number in the study (or give it last, without --trial)",
                        cxxopts::value<long>());
  options.positional_help("[STUDY] TRIAL");
  int code = cli::kExitOk;
  auto args = cli::parse(options, argc, argv, code);
  if (!args) return code;
  auto format = cli_detail::format_option(*args, {"table", "json"});
  if (!format) return report(format.error(), command);
  // Positionals: `hpo show TRIAL` or `hpo show STUDY TRIAL` (the trial is always
  // last, so the common one-study case stays `hpo show 3`).
  auto words = cli_detail::positional(*args);
  const bool trial_flag = args->count("trial") > 0;
  const std::size_t allowed = trial_flag ? 1 : 2;
  if (words.size() > allowed) {
    return report(Exit{cli::kExitUsage,
                       "unexpected argument '" + words[allowed] + "' (hpo show [STUDY] TRIAL)"},
                  command);
  }
  if (!trial_flag && words.empty()) {
    return report(Exit{cli::kExitUsage, "which trial? give its number: hpo show 3"}, command);
  }
  long number = 0;
  if (trial_flag) {
    number = (*args)["trial"].as<long>();
  } else {
    const std::string& text = words.back();
    std::size_t used = 0;
    try {
      number = std::stol(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != text.size()) {
      return report(Exit{cli::kExitUsage,
                         "trial: '" + text + "' is not a trial number (hpo show [STUDY] TRIAL)"},
                    command);
    }
    words.pop_back();
  }
  auto name = cli_detail::study_name(
      *args, words.empty() ? std::nullopt : std::optional<std::string>(words[0]));
  if (!name) return report(name.error(), command);
  auto store = cli_detail::open_database(*args);
  if (!store) return report(store.error(), command);
  auto study = cli_detail::resolve_study(*store, *name);
  if (!study) return report(study.error(), command);
  auto trial = store->find_trial(study->id, number);
  if (!trial) return report(Exit{cli::kExitFailure, trial.error().message}, command);
  if (!*trial) {
    auto counts = store->count_trials(study->id);
    std::int64_t total = 0;
    if (counts) {
      for (const auto& [s, n] : *counts) total += n;
    }
    return report(Exit{cli::kExitUsage, "study " + study->name + " has no trial " +
                                            std::to_string(number) + " (it has " +
                                            std::to_string(total) + " trials, numbered from 0)"},
                  command);
  }
  const TrialRow& t = **trial;
  auto metrics = store->metrics(t.id);
  if (!metrics) return report(Exit{cli::kExitFailure, metrics.error().message}, command);
  const json steps = metrics_by_step(*metrics, 0, metrics->size());
  const auto rungs = cli_detail::study_rungs(*store, *study);
  const auto rung = rungs.find(t.number);

  if (*format == Format::kJson) {
    ojson out = ojson{{"study", study->name},
                      {"metric", study->metric},
                      {"direction", std::string(search::to_string(study->direction))}};
    out.update(trial_json(t));
    out["metrics"] = ojson(steps);
    if (rung != rungs.end()) {
      out["rung"] = ojson{{"rung", rung->second.rung},
                          {"resource", rung->second.resource},
                          {"last_step", rung->second.last_step}};
      if (rung->second.bracket >= 0) out["rung"]["bracket"] = rung->second.bracket;
    }
    std::cout << out.dump(2, ' ', false, kDump) << "\n";
    return cli::kExitOk;
  }

  auto& out = std::cout;
  out << "trial " << t.number << " of study " << study->name << "\n";
  out << "state     " << search::to_string(t.state) << " (attempt " << t.attempt << ")\n";
  out << "value     " << (t.value ? cell_text(*t.value) : "-") << "  (" << study->metric << ", "
      << search::to_string(study->direction) << ")\n";
  if (rung != rungs.end()) out << "rung      " << cli_detail::rung_text(rung->second) << "\n";
  if (!t.agent.empty())
    out << "agent     " << t.agent << (t.lease.empty() ? "" : "  lease " + t.lease) << "\n";
  out << "queued    " << cli_detail::time_text(t.queued, false) << "\n";
  if (t.started) out << "started   " << cli_detail::time_text(t.started, false) << "\n";
  if (t.finished) out << "finished  " << cli_detail::time_text(t.finished, false) << "\n";
  if (auto d = cli_detail::trial_duration(t)) out << "duration  " << duration_text(d) << "\n";
  out << "hash      " << t.hash << "\n";
  out << "config\n";
  indent(out, t.config.dump(2, ' ', false, kDump));
  out << "metrics\n";
  if (steps.empty()) {
    out << "  (none reported)\n";
  } else {
    std::set<std::string> names;
    for (const auto& m : *metrics) names.insert(m.name);
    Frame frame(steps.size());
    const auto step = frame.add("  step", false, true);
    for (std::size_t r = 0; r < steps.size(); ++r) frame.set(step, r, steps[r]["step"]);
    for (const auto& name : names) {
      const auto c = frame.add(name, true, true);
      for (std::size_t r = 0; r < steps.size(); ++r) {
        if (steps[r].contains(name)) frame.set(c, r, steps[r][name]);
      }
    }
    TableOptions table;
    table.width = terminal_width();
    table.show_all = "--format json shows all";
    frame.print_table(out, table);
  }
  if (!t.error.empty()) {
    out << "error\n";
    indent(out, t.error);
  }
  if (!t.log_tail.empty()) {
    out << "log tail\n";
    indent(out, t.log_tail);
  }
  return cli::kExitOk;
}

int export_command(int argc, char** argv) {
  const std::string command = argv[0];
  cxxopts::Options options("hpo export",
                           "Export a whole study, metrics included.\n"
                           "  json: {\"study\": {...}, \"trials\": [{..., \"config\": {...}, "
                           "\"metrics\": [{\"step\": 1, <name>: value, ...}]}]}\n"
                           "  csv:  one row per trial and step: trial, state, value, ..., "
                           "parameters, step, one column per metric");
  cli_detail::add_common_options(options, {"json", "csv"});
  int code = cli::kExitOk;
  auto args = cli::parse(options, argc, argv, code);
  if (!args) return code;
  auto format = cli_detail::format_option(*args, {"json", "csv"});
  if (!format) return report(format.error(), command);
  auto name = cli_detail::study_argument(*args);
  if (!name) return report(name.error(), command);
  auto store = cli_detail::open_database(*args);
  if (!store) return report(store.error(), command);
  auto study = cli_detail::resolve_study(*store, *name);
  if (!study) return report(study.error(), command);
  auto trials = store->trials(study->id);
  if (!trials) return report(Exit{cli::kExitFailure, trials.error().message}, command);
  auto metrics = store->study_metrics(study->id);
  if (!metrics) return report(Exit{cli::kExitFailure, metrics.error().message}, command);

  // Metrics come sorted by trial number: [first, last) per trial.
  std::map<std::int64_t, std::pair<std::size_t, std::size_t>> spans;
  for (std::size_t i = 0; i < metrics->size(); ++i) {
    auto [it, fresh] = spans.try_emplace((*metrics)[i].number, i, i + 1);
    if (!fresh) it->second.second = i + 1;
  }
  auto steps_of = [&](const TrialRow& t) {
    auto it = spans.find(t.number);
    return it == spans.end() ? json::array()
                             : metrics_by_step(*metrics, it->second.first, it->second.second);
  };

  if (*format == Format::kJson) {
    ojson out;
    out["study"] = ojson{{"name", study->name},
                         {"metric", study->metric},
                         {"direction", std::string(search::to_string(study->direction))},
                         {"seed", study->seed},
                         {"status", study->status},
                         {"created", cli_detail::time_json(study->created)},
                         {"updated", cli_detail::time_json(study->updated)},
                         {"spec", ojson(search::without_secrets(study->spec))}};
    out["trials"] = ojson::array();
    for (const auto& t : *trials) {
      ojson row = trial_json(t);
      row["metrics"] = ojson(steps_of(t));
      out["trials"].push_back(std::move(row));
    }
    std::cout << out.dump(1, ' ', false, kDump) << "\n";
    return cli::kExitOk;
  }

  // CSV: a row per (trial, step); a trial without metrics still has one row.
  std::vector<const TrialRow*> row_trials;
  std::vector<json> row_steps;
  for (const auto& t : *trials) {
    json steps = steps_of(t);
    if (steps.empty()) steps.push_back(json::object());
    for (auto& s : steps) {
      row_trials.push_back(&t);
      row_steps.push_back(std::move(s));
    }
  }
  std::set<std::string> names;
  for (const auto& m : *metrics) names.insert(m.name);
  Frame frame(row_trials.size());
  const auto number = frame.add("trial");
  const auto state = frame.add("state");
  const auto value = frame.add("value");
  const auto attempt = frame.add("attempt");
  const auto agent = frame.add("agent");
  const auto started = frame.add("started");
  const auto duration = frame.add("duration_s");
  const auto error = frame.add("error");
  for (std::size_t r = 0; r < row_trials.size(); ++r) {
    const TrialRow& t = *row_trials[r];
    frame.set(number, r, t.number);
    frame.set(state, r, std::string(search::to_string(t.state)));
    if (t.value) frame.set(value, r, *t.value);
    frame.set(attempt, r, t.attempt);
    frame.set(agent, r, t.agent);
    frame.set(started, r, cli_detail::time_text(t.started, true));
    if (auto d = cli_detail::trial_duration(t)) frame.set(duration, r, *d);
    frame.set(error, r, t.error);
  }
  std::vector<std::string> reserved = {"trial",   "state",      "value", "attempt", "agent",
                                       "started", "duration_s", "error", "step"};
  reserved.insert(reserved.end(), names.begin(), names.end());
  cli_detail::add_param_columns(frame, row_trials, reserved);
  const auto step = frame.add("step");
  std::map<std::string, std::size_t> metric_columns;
  for (const auto& name : names) {
    std::string column = name;
    for (const auto& c : frame.columns()) {
      if (c.name == column) column = "metric." + name;
    }
    metric_columns[name] = frame.add(column);
  }
  for (std::size_t r = 0; r < row_steps.size(); ++r) {
    for (const auto& [key, v] : row_steps[r].items()) {
      if (key == "step") {
        frame.set(step, r, v);
      } else {
        frame.set(metric_columns[key], r, v);
      }
    }
  }
  frame.print_csv(std::cout);
  return cli::kExitOk;
}

}  // namespace hpo::results
