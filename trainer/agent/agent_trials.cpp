// The agent's trials (agent.h): ASSIGN, the runner's events, FINISH kept until ACKed, and
// pause and resume with their checkpoint transfers (transfer.h).
#include <exception>
#include <filesystem>

#include "trainer/agent/agent_state.h"
#include "trainer/agent/trial_spec.h"

namespace hpo::agent {

void Agent::State::finish_now(protocol::Finish f) {
  running.erase(f.lease);
  ++stats.finished;
  if (dropped.erase(f.lease)) {
    // The scheduler no longer counts it, so no FINISH frees its slot there.
    reports.erase(f.lease);
    if (welcomed) send_ready();
    return;
  }
  // A FINISH the scheduler cannot take would be re-sent forever: cut it to fit first.
  if (auto cut = protocol::fit_to_limit(f); !cut.empty()) log("lease " + f.lease + ": " + cut);
  auto& p = unacked[f.lease];
  p.finish = std::move(f);
  p.sent = SteadyClock::now();
  if (welcomed) send(p.finish);
}

void Agent::State::on_assign(const protocol::Assign& a) {
  ++stats.assigned;
  if (options.verbose) {
    log("trial " + trial_name(a) + " lease " + a.lease + (a.resume ? " (resumed)" : ""));
  }
  if (running.count(a.lease) || unacked.count(a.lease)) {
    log("ignored a repeated ASSIGN for lease " + a.lease);
    return;
  }
  if (stopping || static_cast<int>(busy()) >= options.slots) {
    protocol::Finish refused{a.study, a.trial, a.attempt, a.lease, protocol::Outcome::kInterrupted,
                             {},      "",      "",        false,   true};
    refused.error = stopping ? (winddown.draining() ? "agent is draining" : "agent is stopping")
                             : "agent has no free slot";
    running[a.lease] = {};
    finish_now(std::move(refused));
    return;
  }
  running[a.lease] = {a.study, a.trial, a.attempt, a.lease, false};
  auto files = files_of(a);
  if (!a.resume) {
    start_trial(a, files);
    return;
  }
  // A resumed trial starts once its checkpoint is here (take()).
  const auto pack = std::filesystem::path(trial_dir_of(a.study, a.trial, a.attempt)) / "resume.pack";
  if (auto now = transfers.fetch(a, std::move(files), pack)) take(std::move(*now));
}

void Agent::State::start_trial(const protocol::Assign& a, const TrialFiles& files) {
  auto s = start(a, files);
  if (s) return;
  protocol::Finish f{a.study, a.trial, a.attempt, a.lease, protocol::Outcome::kInterrupted,
                     {},      "",      "",        false,   false};
  if (s.error().code == ErrorCode::kIo) {
    f.start_failed = true;  // this agent's fault: the scheduler runs it elsewhere
    log("trial " + trial_name(a) + " could not start: " + s.error().message);
  } else {
    f.outcome = protocol::Outcome::kFailed;
  }
  f.error = s.error().message;
  f.log_tail = s.error().message + "\n";
  finish_now(std::move(f));
}

// STOP and PAUSE. A trial still fetching its checkpoint has not started: it ends at once,
// pruned, or paused at the checkpoint it was to resume from (the scheduler holds it).
void Agent::State::on_decision(const protocol::Decision& d) {
  if (!d.stop && !d.pause) return;
  auto held = running.find(d.lease);
  auto resume = transfers.fetching(d.lease);
  if (held == running.end() || !resume) {
    runner->stop(d.lease, d.stop ? StopReason::kPruned : StopReason::kPaused);
    return;
  }
  const protocol::RunningTrial t = held->second;
  transfers.drop(d.lease);
  protocol::Finish f{t.study, t.trial, t.attempt, t.lease, protocol::Outcome::kPruned,
                     {},      "",      "",        false,   false};
  if (!d.stop) {
    f.outcome = protocol::Outcome::kPaused;
    f.checkpoint = resume;
  }
  finish_now(std::move(f));
}

// runner->start with the exception boundary: an exception (a spec whose fields have the
// wrong JSON types, say) is the trial's failure, not the agent's end.
Status Agent::State::start(const protocol::Assign& a, const TrialFiles& files) {
  try {
    return runner->start(a, files);
  } catch (const std::exception& e) {
    return fail("agent: ASSIGN " + trial_name(a) + ": cannot start: " + e.what());
  }
}

std::string Agent::State::trial_dir_of(const std::string& study, std::int64_t trial,
                                       std::int64_t attempt) const {
  TrialContext ctx;
  ctx.study = study;
  ctx.number = trial;
  ctx.attempt = static_cast<int>(attempt);
  ctx.workdir = options.workdir;
  return trial_dir(ctx);
}

TrialFiles Agent::State::files_of(const protocol::Assign& a) const {
  const std::filesystem::path dir = trial_dir_of(a.study, a.trial, a.attempt);
  TrialFiles files;
  files.checkpoint_dir = (dir / "checkpoint").string();
  if (a.resume) files.resume_from = (dir / "resume").string();
  files.pausable = a.pausable;
  return files;
}

void Agent::State::drain_runner() {
  std::vector<TrialEvent> events;
  try {
    events = runner->poll();
  } catch (const std::exception& e) {
    // A runner ends a trial whose output it cannot handle itself (ProcessRunner::poll);
    // this is the last line, so that one bad trial never ends the agent.
    log("trial runner failed: " + std::string(e.what()) + "; going on");
    return;
  }
  for (auto& event : events) {
    if (auto* report = std::get_if<protocol::Report>(&event)) {
      if (dropped.count(report->lease)) continue;
      reports[report->lease].push_back(*report);
      if (welcomed) send(*report);
      continue;
    }
    auto& f = std::get<protocol::Finish>(event);
    if (f.outcome != protocol::Outcome::kPaused || dropped.count(f.lease)) {
      finish_now(std::move(f));
      continue;
    }
    // Paused: its FINISH waits for the checkpoint's upload; the slot stays taken till then.
    const std::filesystem::path dir = trial_dir_of(f.study, f.trial, f.attempt);
    const std::string checkpoint = (dir / "checkpoint").string();
    if (auto now = transfers.upload(std::move(f), checkpoint, dir / "checkpoint.pack")) {
      finish_now(std::move(*now));
    }
  }
}

void Agent::State::take(TransferEvent event) {
  if (auto* f = std::get_if<protocol::Finish>(&event)) {
    finish_now(std::move(*f));
    return;
  }
  auto& fetched = std::get<Fetched>(event);
  if (winddown.mode() == Winddown::Mode::kStopping) {  // not started, not charged
    const auto& a = fetched.assign;
    finish_now({a.study, a.trial, a.attempt, a.lease, protocol::Outcome::kInterrupted, {},
                "agent is stopping", "", false, true});
    return;
  }
  start_trial(fetched.assign, fetched.files);
}

void Agent::State::pump_transfers() {
  if (!socket || !welcomed || transfers.count() == 0) return;
  for (const auto& m : transfers.pump()) send(m);
  for (auto& f : transfers.take_failed()) finish_now(std::move(f));
}

void Agent::State::drop_lease(const std::string& lease) {
  if (transfers.drop(lease)) {
    running.erase(lease);  // its trial has ended, or not started: no FINISH to wait for
  } else if (running.count(lease)) {
    dropped.insert(lease);
    runner->stop(lease, StopReason::kInterrupted);
  }
  unacked.erase(lease);
  reports.erase(lease);
}

}  // namespace hpo::agent
