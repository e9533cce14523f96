// Internal to dashboard/: what the views (views.cpp, charts.cpp) share.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dashboard/views.h"
#include "results/store.h"
#include "search/study.h"

namespace hpo::dashboard::detail {

// An answer that stops a view: `status` and {"error": message}.
struct Stop {
  int status;
  std::string message;
};
template <class T>
using Out = std::expected<T, Stop>;

inline Answer to_answer(const Stop& stop) { return Answer{stop.status, {{"error", stop.message}}}; }
inline Stop db_error(const Error& error) { return Stop{500, error.message}; }

// The single value of parameter `name`, if given.
std::optional<std::string> param(const Params& params, const std::string& name);
// An integer parameter in [lo, hi], `fallback` when absent; otherwise 400 naming it.
Out<std::int64_t> int_param(const Params& params, const std::string& name, std::int64_t fallback,
                            std::int64_t lo, std::int64_t hi);

// A study and its parsed spec (nullopt if the stored spec no longer parses: shown without it).
struct StudyView {
  results::StudyRow row;
  std::optional<search::StudySpec> spec;
};
// The study named by parameter `name` (required); unknown names list the known ones.
Out<StudyView> study_param(results::Store& store, const Params& params);

// "COMPLETED", ...
std::string state_name(search::TrialState state);
nlohmann::json opt(std::optional<double> value);
// Whether a is better than b in `direction`.
bool better(double a, double b, search::Direction direction);

// The completed trials with a finite value, in number order.
std::vector<const results::TrialBrief*> completed(const std::vector<results::TrialBrief>& trials);
// The same, best first (ties by number).
std::vector<const results::TrialBrief*> ranked(const std::vector<results::TrialBrief>& trials,
                                               search::Direction direction);
// At most `cap` of `ranked`: the best `best` of them, then an even sample of the rest (in rank
// order), so that a chart of a huge study shows both its front and its spread.
std::vector<const results::TrialBrief*> front_and_sample(
    const std::vector<const results::TrialBrief*>& ranked, std::size_t best, std::size_t cap);

// The flattened parameters of configs (results::flatten), as the page's axes: names in
// first-seen order, each a number axis when every value it takes is a number (a log axis when
// all are > 0 and span two decades or more: what a log-uniform parameter looks like), else a
// category axis with the values' texts in first-seen order.
struct Axis {
  std::string name;
  bool numeric = true;
  bool log = false;
  std::vector<std::string> categories;
};
struct ParamTable {
  std::vector<Axis> axes;
  std::vector<std::vector<nlohmann::json>> cells;  // per config, per axis: number, text or null
};
ParamTable param_table(const std::vector<const nlohmann::json*>& configs);
nlohmann::json axes_json(const std::vector<Axis>& axes);

// One request as the views see it.
struct Request {
  results::Store& store;
  const Params& params;
  double now = 0;
  BriefsCache* cache = nullptr;  // nullptr: read the trials each time
  std::int64_t mark = 0;
};
// The trials of `study` (Store::trial_briefs), through the request's cache when it has one.
Out<BriefsCache::Briefs> briefs(const Request& r, std::int64_t study);

// The chart views (charts.cpp).
Answer history_view(const Request& r);
Answer parallel_view(const Request& r);
Answer importance_view(const Request& r);
Answer curves_view(const Request& r);
Answer slice_view(const Request& r);
Answer timeline_view(const Request& r);

}  // namespace hpo::dashboard::detail
