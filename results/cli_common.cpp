#include "results/cli_common.h"

#include <chrono>
#include <ctime>
#include <iostream>
#include <unordered_map>

#include "base/cli.h"
#include "search/trial_scheduler.h"

namespace hpo::results::cli_detail {

void add_common_options(cxxopts::Options& options, const std::vector<std::string>& formats,
                        bool with_study) {
  std::string list;
  for (const auto& f : formats) list += (list.empty() ? "" : ", ") + f;
  options.add_options()("db", "database file",
                        cxxopts::value<std::string>()->default_value("hpo.db"));
  if (with_study) {
    options.add_options()("study",
                          "study name, or give it first without --study (may be left out when "
                          "the database holds one study)",
                          cxxopts::value<std::string>())(
        "positional", "", cxxopts::value<std::vector<std::string>>());
    options.parse_positional({"positional"});  // positional options stay out of --help
    options.positional_help("[STUDY]");
  }
  options.add_options()("format", "output format: " + list,
                        cxxopts::value<std::string>()->default_value(formats.front()))(
      "h,help", "show this help");
}

Outcome<Format> format_option(const cxxopts::ParseResult& args,
                              const std::vector<std::string>& formats) {
  const auto name = args["format"].as<std::string>();
  for (const auto& f : formats) {
    if (f == name) return *format_from_string(name);
  }
  std::string list;
  for (const auto& f : formats) list += (list.empty() ? "" : ", ") + f;
  return std::unexpected(
      Exit{cli::kExitUsage, "--format: unknown format '" + name + "' (choose " + list + ")"});
}

Outcome<Store> open_database(const cxxopts::ParseResult& args) {
  auto store = Store::open(args["db"].as<std::string>(), OpenMode::kReadOnly);
  if (!store) return std::unexpected(Exit{cli::kExitUsage, store.error().message});
  return std::move(*store);
}

std::vector<std::string> positional(const cxxopts::ParseResult& args) {
  if (args.count("positional") == 0) return {};
  return args["positional"].as<std::vector<std::string>>();
}

Outcome<std::optional<std::string>> study_name(const cxxopts::ParseResult& args,
                                               const std::optional<std::string>& given) {
  std::optional<std::string> flag;
  if (args.count("study") > 0) flag = args["study"].as<std::string>();
  if (flag && given && *flag != *given) {
    return std::unexpected(Exit{cli::kExitUsage, "two studies named: '" + *given +
                                                     "' and --study '" + *flag + "'; give one"});
  }
  return flag ? flag : given;
}

Outcome<std::optional<std::string>> study_argument(const cxxopts::ParseResult& args) {
  const auto words = positional(args);
  if (words.size() > 1) {
    return std::unexpected(Exit{cli::kExitUsage, "unexpected argument '" + words[1] +
                                                     "' (the only positional argument is "
                                                     "the study's name)"});
  }
  return study_name(args, words.empty() ? std::nullopt : std::optional(words[0]));
}

Outcome<StudyRow> resolve_study(Store& store, const std::optional<std::string>& name) {
  auto studies = store.list_studies();
  if (!studies) return std::unexpected(Exit{cli::kExitFailure, studies.error().message});
  std::string known;
  for (const auto& s : *studies) known += (known.empty() ? "" : ", ") + s.name;
  if (name) {
    for (auto& s : *studies) {
      if (s.name == *name) return std::move(s);
    }
    return std::unexpected(Exit{
        cli::kExitUsage,
        store.path() + ": unknown study '" + *name + "'" +
            (known.empty() ? " (the database holds no studies)" : "; known studies: " + known)});
  }
  if (studies->size() == 1) return std::move(studies->front());
  if (studies->empty()) {
    return std::unexpected(Exit{cli::kExitUsage, store.path() + ": the database holds no studies"});
  }
  return std::unexpected(
      Exit{cli::kExitUsage, store.path() + " holds " + std::to_string(studies->size()) +
                                " studies; name one (first argument or --study): " + known});
}

int report(const Exit& exit, const std::string& command) {
  std::cerr << "hpo " << command << ": " << exit.message << "\n";
  return exit.code;
}

std::string time_text(std::optional<double> epoch_seconds, bool iso) {
  if (!epoch_seconds) return "";
  const auto t = static_cast<std::time_t>(*epoch_seconds);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return "";
  char buf[32];
  std::strftime(buf, sizeof buf, iso ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

nlohmann::json time_json(std::optional<double> epoch_seconds) {
  if (!epoch_seconds) return nullptr;
  return time_text(epoch_seconds, true);
}

void add_param_columns(Frame& frame, const std::vector<const TrialRow*>& trials,
                       const std::vector<std::string>& reserved) {
  std::unordered_map<std::string, std::size_t> index;
  std::vector<std::pair<std::string, nlohmann::json>> leaves;
  for (std::size_t r = 0; r < trials.size(); ++r) {
    leaves.clear();
    flatten(trials[r]->config, "", leaves);
    for (auto& [path, value] : leaves) {
      auto it = index.find(path);
      if (it == index.end()) {
        std::string name = path.empty() ? "config" : path;
        for (const auto& fixed : reserved) {
          if (fixed == name) name = "config." + name;
        }
        it = index.emplace(path, frame.add(name, true, value.is_number())).first;
      }
      frame.set(it->second, r, std::move(value));
    }
  }
  // Table headers keep the last two parts of a long path (optimizer.type for
  // solver.optimizer.type) when that stays unique among all the columns.
  std::unordered_map<std::string, int> uses;
  std::vector<std::pair<std::size_t, std::string>> labels;
  for (const auto& c : frame.columns()) ++uses[c.name];
  for (const auto& [path, column] : index) {
    const std::string& name = frame.columns()[column].name;
    const auto last = name.rfind('.');
    const auto second =
        last == std::string::npos || last == 0 ? std::string::npos : name.rfind('.', last - 1);
    if (second == std::string::npos) continue;
    labels.emplace_back(column, name.substr(second + 1));
    ++uses[labels.back().second];
  }
  for (const auto& [column, label] : labels) {
    if (uses[label] == 1) frame.set_label(column, label);
  }
}

std::optional<double> trial_duration(const TrialRow& trial) {
  if (!trial.started) return std::nullopt;
  double end = 0.0;
  if (trial.finished) {
    end = *trial.finished;
  } else if (trial.state == TrialState::kRunning) {
    end =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  } else {
    return std::nullopt;
  }
  if (end < *trial.started) return std::nullopt;  // clocks of different hosts disagree
  return end - *trial.started;
}

std::map<std::int64_t, RungInfo> study_rungs(Store& store, const StudyRow& study) {
  std::map<std::int64_t, RungInfo> out;
  auto it = study.spec.find("scheduler");
  if (it == study.spec.end()) return out;
  auto spec = search::parse_scheduler(*it, "scheduler");
  if (!spec || spec->type == search::SchedulerType::kNone) return out;
  auto history = store.history(study.id);
  if (!history) return out;
  const auto schedule = search::TrialScheduler::rebuild(*spec, study.direction, *history);
  const bool hyperband = spec->type == search::SchedulerType::kHyperband;
  for (const auto& t : *history) {
    RungInfo info;
    info.rung = schedule.rung_of(t.number);
    info.resource = schedule.rung_resource(t.number);
    if (hyperband) info.bracket = schedule.bracket_of(t.number);
    if (!t.intermediates.empty()) info.last_step = t.intermediates.back().step;
    out[t.number] = info;
  }
  return out;
}

std::string rung_text(const RungInfo& info) {
  std::string text = info.rung < 0 ? "-"
                                   : "rung " + std::to_string(info.rung) + " (step " +
                                         std::to_string(info.resource) + ")";
  if (info.bracket >= 0) text += ", bracket " + std::to_string(info.bracket);
  return text;
}

}  // namespace hpo::results::cli_detail
