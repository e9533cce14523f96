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
  auto failures = store.count_failure(id);
  if (!failures) return std::unexpected(failures.error());
  if (*failures <= s.spec().max_retries) {
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
                             const std::string& why, double now, bool counted) {
  std::int64_t id = s.trial_id(number);
  if (counted) {
    auto n = store.count_interruption(id);
    if (!n) return std::unexpected(n.error());
    if (*n > s.spec().max_interruptions) {
      std::string error = "interrupted " + std::to_string(*n) +
                          " times, more than budget.max_interruptions (" +
                          std::to_string(s.spec().max_interruptions) + "); last: " + why;
      if (auto r = store.finish_trial(id, TrialState::kFailed, std::nullopt, error, "", now); !r)
        return r;
      s.failed(number);
      log_line(s.name() + "#" + std::to_string(number) + " FAILED: " + error);
      return {};
    }
  }
  if (auto r = store.finish_trial(id, TrialState::kInterrupted, std::nullopt, why, "", now); !r)
    return r;
  if (auto r = store.requeue_trial(id, now); !r) return r;
  s.requeued(number, /*front=*/true);
  return {};
}

Status cancel_queued(results::Store& store, StudyRuntime& s, const std::string& why, double now) {
  auto numbers = s.cancel_queued();
  for (auto number : numbers) {
    if (auto r = store.finish_trial(s.trial_id(number), TrialState::kCancelled, std::nullopt, why,
                                    "", now);
        !r) {
      return r;
    }
  }
  if (!numbers.empty()) {
    log_line(s.name() + ": " + std::to_string(numbers.size()) + " queued trial(s) CANCELLED (" +
             why + ")");
  }
  return {};
}

Result<StudyRuntime::Verdict> record_report(results::Store& store, StudyRuntime& s, Lease& l,
                                            const p::Report& m, double now, bool verbose) {
  using Verdict = StudyRuntime::Verdict;
  std::int64_t id = s.trial_id(l.number);
  std::optional<double> objective;
  for (const auto& [name, value] : m.metrics) {
    if (auto r = store.record_metric(id, m.step, name, value, now); !r) {
      return std::unexpected(r.error());
    }
    if (name == s.spec().objective_metric) objective = value;
  }
  l.last_step = std::max(l.last_step, m.step);
  if (!l.cancelled.empty()) return Verdict::kStop;
  std::string ended;
  if (s.ending(now, &ended)) {
    l.cancelled = "study finished: " + ended;
    return Verdict::kStop;
  }
  // PBT judges a member by its report at the generation's step: what a pausing member
  // reports after it is stored but not judged (pbt.h).
  if (l.pausing && s.pbt()) return Verdict::kPause;
  Verdict v = s.reported(l.number, m.step, objective);
  if (l.pausing && v == Verdict::kContinue) v = Verdict::kPause;  // a report already in flight
  if (v == Verdict::kPause && !l.pausing) {
    l.pausing = true;
    if (verbose) {
      log_line("pausing " + trial_name(s, l) + " at rung " + std::to_string(s.rung_of(l.number)) +
               " (step " + std::to_string(m.step) + ")");
    }
  }
  if (v == Verdict::kStop && verbose) log_line("pruning " + trial_name(s, l));
  return v;
}

namespace {

std::optional<double> last_value(const StudyRuntime& s, std::int64_t number) {
  const auto& im = s.history()[number].intermediates;
  if (im.empty()) return std::nullopt;
  return im.back().value;
}

Status pause(results::Store& store, StudyRuntime& s, std::int64_t number,
             const std::string& log_tail, double now) {
  if (auto r = store.finish_trial(s.trial_id(number), TrialState::kPaused,
                                  last_value(s, number), "", log_tail, now);
      !r) {
    return r;
  }
  s.paused(number);
  return {};
}

}  // namespace

Status end_run(results::Store& store, StudyRuntime& s, const Lease& l, const std::string& why,
               double now, bool counted) {
  if (!l.pausing) return interrupt_and_requeue(store, s, l.number, why, now, counted);
  log_line(trial_name(s, l) + " paused (" + why + " while it was pausing: it resumes from its "
           "last complete checkpoint)");
  return pause(store, s, l.number, "", now);
}

Status end_paused(results::Store& store, StudyRuntime& s, const std::string& why, double now) {
  auto numbers = s.end_paused();
  for (auto number : numbers) {
    if (auto r = store.finish_trial(s.trial_id(number), TrialState::kPruned,
                                    last_value(s, number), why, "", now);
        !r) {
      return r;
    }
  }
  if (!numbers.empty()) {
    log_line(s.name() + ": " + std::to_string(numbers.size()) + " paused trial(s) PRUNED (" + why +
             ")");
  }
  return {};
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
  if (!l.cancelled.empty() && !(m.outcome == p::Outcome::kOk && value)) {
    // The study stopped it: whatever it ended with, it is not to run again.
    if (auto r = store.finish_trial(id, TrialState::kCancelled, std::nullopt, l.cancelled,
                                    m.log_tail, now);
        !r) {
      return r;
    }
    s.cancelled(l.number, /*was_running=*/true);
    if (verbose) log_line(trial_name(s, l) + " CANCELLED: " + l.cancelled);
    return {};
  }
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
      if (m.start_failed) {
        // The agent's fault, not the config's: requeued as it is, nothing charged (the
        // daemon counts it against the agent).
        if (auto r = store.append_event(s.id(), id, "start_failed",
                                        json{{"attempt", l.attempt}, {"error", m.error}}, now);
            !r) {
          return r;
        }
        if (auto r = store.requeue_trial(id, now); !r) return r;
        s.requeued(l.number, /*front=*/true);
        log_line(trial_name(s, l) + " attempt " + std::to_string(l.attempt) + " could not start (" +
                 m.error + "); requeued");
        return {};
      }
      return end_run(store, s, l, m.error.empty() ? "interrupted on the agent" : m.error, now,
                     /*counted=*/!m.refused);
    case p::Outcome::kPaused:
      if (l.pausing) {
        if (auto r = pause(store, s, l.number, m.log_tail, now); !r) return r;
        if (verbose) log_line(trial_name(s, l) + " paused");
        return {};
      }
      // Paused without being asked: requeued, uncharged, like one interrupted (it resumes from
      // its checkpoint when the scheduler holds one).
      return interrupt_and_requeue(store, s, l.number, "paused without being asked", now,
                                   /*counted=*/false);
  }
  return {};
}

Result<bool> count_start(results::Store& store, AgentRegistry& agents, Agent& a, const p::Finish& m,
                         int drain_after, double now) {
  if (m.refused) return false;
  if (!m.start_failed) {
    a.start_failures = 0;
    return false;
  }
  if (++a.start_failures < drain_after || !a.drained.empty()) return false;
  std::string why = std::to_string(a.start_failures) + " trials failed to start: " + m.error;
  agents.drain(a, why);
  log_line("agent " + a.name + " drained: " + why);
  if (auto r = store.set_agent_drained(a.name, why, now); !r) return std::unexpected(r.error());
  if (auto r = store.append_event(std::nullopt, std::nullopt, "agent_drained",
                                  json{{"agent", a.name}, {"reason", why}}, now);
      !r) {
    return std::unexpected(r.error());
  }
  return true;
}

}  // namespace hpo::scheduler
