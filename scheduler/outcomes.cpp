#include "scheduler/outcomes.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

#include "scheduler/log.h"

namespace hpo::scheduler {
namespace {

using nlohmann::json;
using search::TrialState;
namespace p = protocol;

std::string trial_name(const StudyRuntime& s, const Lease& l) {
  return s.name() + "#" + std::to_string(l.number);
}

Status failed_attempt(results::Store& store, StudyRuntime& s, const Lease& l,
                      const std::string& error, const std::string& log_tail, double t) {
  std::int64_t id = s.trial_id(l.number);
  int failures = s.count_failure(l.number);
  if (failures <= s.spec().max_retries) {
    if (auto r = store.append_event(s.id(), id, "retry",
                                    json{{"attempt", l.attempt}, {"error", error}}, t);
        !r) {
      return r;
    }
    if (auto r = store.requeue_trial(id, t); !r) return r;
    s.requeued(l.number, /*front=*/true);
    log_line(trial_name(s, l) + " attempt " + std::to_string(l.attempt) + " failed (" + error +
             "); retrying");
    return {};
  }
  if (auto r = store.finish_trial(id, TrialState::kFailed, std::nullopt, error, log_tail, t); !r)
    return r;
  s.failed(l.number);
  log_line(trial_name(s, l) + " FAILED: " + error);
  return {};
}

}  // namespace

Status interrupt_and_requeue(results::Store& store, StudyRuntime& s, std::int64_t number,
                             const std::string& why, double now) {
  std::int64_t id = s.trial_id(number);
  if (auto r = store.finish_trial(id, TrialState::kInterrupted, std::nullopt, why, "", now); !r)
    return r;
  if (auto r = store.requeue_trial(id, now); !r) return r;
  s.requeued(number, /*front=*/true);
  return {};
}

Result<bool> record_report(results::Store& store, StudyRuntime& s, Lease& l, const p::Report& m,
                           double now, bool verbose) {
  std::int64_t id = s.trial_id(l.number);
  std::optional<double> objective;
  for (const auto& [name, value] : m.metrics) {
    if (auto r = store.record_metric(id, m.step, name, value, now); !r) {
      return std::unexpected(r.error());
    }
    if (name == s.spec().objective_metric) objective = value;
  }
  l.last_step = std::max(l.last_step, m.step);
  bool stop = s.reported(l.number, m.step, objective) || s.time_up(now);
  if (stop && verbose) log_line("pruning " + trial_name(s, l));
  return stop;
}

Status record_finish(results::Store& store, StudyRuntime& s, const Lease& l, const p::Finish& m,
                     double now, bool verbose) {
  std::int64_t id = s.trial_id(l.number);
  for (const auto& [name, value] : m.metrics) {
    if (auto r = store.record_metric(id, l.last_step, name, value, now); !r) return r;
  }
  const std::string& metric = s.spec().objective_metric;
  std::optional<double> value;
  if (auto it = m.metrics.find(metric); it != m.metrics.end()) value = it->second;
  const auto& rec = s.history()[l.number];
  switch (m.outcome) {
    case p::Outcome::kOk:
      if (!value) {
        return failed_attempt(store, s, l, "final metrics lack the objective '" + metric + "'",
                              m.log_tail, now);
      }
      if (auto r = store.finish_trial(id, TrialState::kCompleted, value, "", m.log_tail, now); !r)
        return r;
      s.completed(l.number, value, TrialState::kCompleted);
      if (verbose) log_line(trial_name(s, l) + " completed: " + std::to_string(*value));
      return {};
    case p::Outcome::kPruned:
      if (!value && !rec.intermediates.empty()) value = rec.intermediates.back().value;
      if (auto r = store.finish_trial(id, TrialState::kPruned, value, "", m.log_tail, now); !r)
        return r;
      s.completed(l.number, value, TrialState::kPruned);
      return {};
    case p::Outcome::kFailed:
      return failed_attempt(store, s, l, m.error.empty() ? "trial failed" : m.error, m.log_tail,
                            now);
    case p::Outcome::kInterrupted:
      return interrupt_and_requeue(store, s, l.number,
                                   m.error.empty() ? "interrupted on the agent" : m.error, now);
  }
  return {};
}

}  // namespace hpo::scheduler
