// The dashboard's data: the answer to each GET /api/... request of dashboard/API.md, computed
// from a read-only Store. The server (server.h) sends these answers; the report (report.h)
// stores them in its HTML file under their canonical keys, so the page draws the same thing
// from either.
//
// Contract
// - Read-only: nothing here writes the database, so it is safe while a scheduler writes it.
// - Scale: each answer costs at most one pass over the study's trials without their configs
//   (Store::trial_briefs) plus a bounded number of index seeks (configs, metrics of at most a
//   few thousand trials): the charts are downsampled here, not in the browser.
// - Errors are answers: an unknown path is 404, a bad or missing parameter and an unknown study
//   or trial 400/404, a database error 500; each with {"error": message} naming the parameter.
// - Threads: answer() uses only the Store it is given (one thread at a time per Store).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "results/store.h"

namespace hpo::dashboard {

// A request's query parameters, name -> values in the order given (`where` may repeat).
using Params = std::multimap<std::string, std::string>;

struct Answer {
  int status = 200;     // HTTP status
  nlohmann::json body;  // always an object
};

// A study's trials (Store::trial_briefs) read once per state of the database and shared by the
// requests of a server: the page asks for eight views at once, and each reads every trial
// (150 ms at 100,000 trials on this machine). Any thread may call get(); the first caller for a
// (study, mark) reads while the others wait for its result.
class BriefsCache {
 public:
  using Briefs = std::shared_ptr<const std::vector<results::TrialBrief>>;
  // The trials of `study` as of `mark` (an ever-changing number such as PRAGMA data_version of
  // one connection), read with `store` unless cached for that mark.
  Result<Briefs> get(results::Store& store, std::int64_t study, std::int64_t mark);

 private:
  std::mutex mutex_;
  std::map<std::int64_t, std::pair<std::int64_t, Briefs>> studies_;
};

// The answer to GET `path` ("/api/studies", ...) with `params`, at wall time `now` (seconds since
// the epoch: RUNNING trials' bars and agents' ages are measured to it). With `cache`, the
// trials are read through it for `mark`.
Answer answer(results::Store& store, std::string_view path, const Params& params, double now,
              BriefsCache* cache = nullptr, std::int64_t mark = 0);

// The key a report stores a request's answer under, the same the page computes (app.js
// canonicalKey): the path without its leading '/', then '?' and the parameters sorted by name
// (repeated names in their given order), each name=value with the value percent-encoded as
// JavaScript's encodeURIComponent does, joined by '&'. "/api/curves" {name: "a b", metric:
// "loss"} -> "api/curves?metric=loss&name=a%20b".
std::string canonical_key(std::string_view path, const Params& params);

}  // namespace hpo::dashboard
