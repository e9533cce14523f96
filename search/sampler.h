// Samplers: pure functions from (space, options, seed, history, trial number)
// to the next config. No I/O, no clock, no hidden state that changes a
// suggestion: the same inputs always give the same config, which is what lets
// a resumed study ask exactly what it would have asked. A sampler may keep
// caches that only make it faster.
//
// ask/tell: a sampler keeps no record of its own. The scheduler records each
// outcome in the database and rebuilds the History from it; "telling" a
// sampler a result means appending/updating that trial's TrialRecord in the
// History passed to the next ask (tell() below does just that). The History must include QUEUED and
// RUNNING trials: TPE uses them as a constant liar (a pending point counts as a bad result) so that
// parallel asks spread out, and grid skips the points they hold.
//
// Thread: a Sampler is not thread-safe; one thread asks at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/error.h"
#include "search/space.h"
#include "search/study.h"
#include "search/trial.h"

namespace hpo::search {

class Sampler {
 public:
  virtual ~Sampler();
  // The config for trial `number` (normally history.size()), or std::nullopt
  // when the sampler has nothing left to suggest (only grid: every grid point
  // is already in the history) — the study then stops asking. An Error is a
  // programmer/input error (never expected for a valid StudySpec).
  virtual Result<std::optional<nlohmann::json>> ask(const History& history,
                                                    std::int64_t number) = 0;
  // The sampler type, e.g. "tpe".
  virtual std::string name() const = 0;
};

// "tell": records a trial's outcome in the History the next ask sees (what the
// scheduler does when it rebuilds the History from the database). Sets the
// state and value of the record with `number`, appending records (QUEUED,
// empty config) up to it if the History is shorter. `value` is the objective
// (COMPLETED; PRUNED at its last step) or std::nullopt (FAILED, ...).
void tell(History& history, std::int64_t number, TrialState state, std::optional<double> value);

// Builds the sampler named by spec.sampler for spec.space; the objective
// direction tells TPE/evolution which values are good.
Result<std::unique_ptr<Sampler>> make_sampler(const StudySpec& spec);

// Same without a study: `sampler` is a "sampler" object (validated here).
Result<std::unique_ptr<Sampler>> make_sampler(const Space& space, const nlohmann::json& sampler,
                                              std::uint64_t seed, Direction direction);

}  // namespace hpo::search
