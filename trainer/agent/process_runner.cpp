#include "trainer/agent/process_runner.h"

#include <signal.h>

#include <algorithm>
#include <exception>
#include <iostream>

namespace hpo::agent {
namespace {

using std::chrono::milliseconds;

// Whether a child's exit status (ChildExit::status: -signal when killed) is one of the
// signals that end jobs, as a batch system or a terminal sends them; a crash (SIGSEGV,
// SIGABRT) is not.
bool ended_with_the_job(int status) {
  return status == -SIGTERM || status == -SIGINT || status == -SIGHUP || status == -SIGKILL;
}

// The last line of output that is the trial's own (not our [hpo] notes):
// usually the exception message of a crashed script.
std::string last_output_line(const std::string& tail) {
  size_t end = tail.size();
  while (end > 0) {
    size_t start = tail.rfind('\n', end - 1);
    start = start == std::string::npos ? 0 : start + 1;
    std::string line = tail.substr(start, end - start);
    while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
    if (!line.empty() && !line.starts_with("[hpo] ") && !line.starts_with("[metric] ")) return line;
    if (start == 0) break;
    end = start - 1;
  }
  return {};
}

double ms_between(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

struct ProcessRunner::Trial {
  protocol::Assign assign;
  size_t slot = 0;
  std::unique_ptr<ChildProcess> child;
  StopReason stop_reason = StopReason::kInterrupted;
  bool stop_requested = false;
  MetricTally metrics;
  SteadyClock::time_point assigned;
};

ProcessRunner::ProcessRunner(ProcessRunnerOptions options) : options_(std::move(options)) {
  if (options_.slots.empty()) options_.slots.push_back(Slot{});
  slot_busy_.assign(options_.slots.size(), false);
}

ProcessRunner::~ProcessRunner() = default;

Status ProcessRunner::start(const protocol::Assign& assign, const TrialFiles& files) {
  auto now = SteadyClock::now();
  if (trials_.count(assign.lease)) return fail("agent: lease " + assign.lease + " already running");
  auto free = std::find(slot_busy_.begin(), slot_busy_.end(), false);
  if (free == slot_busy_.end()) return fail("agent: no free slot");
  size_t slot = static_cast<size_t>(free - slot_busy_.begin());

  TrialContext ctx;
  ctx.study = assign.study;
  ctx.number = assign.trial;
  ctx.attempt = static_cast<int>(assign.attempt);
  ctx.workdir = options_.workdir;
  ctx.hpo_binary = options_.hpo_binary;
  ctx.kill_grace_s = options_.kill_grace_s;
  ctx.checkpoint_dir = files.checkpoint_dir;
  ctx.resume_from = files.resume_from;
  ctx.pausable = files.pausable;
  if (options_.slots[slot].gpu) ctx.gpu = options_.slots[slot].gpu->visible_id;

  auto launch = build_launch(assign.spec, assign.config, ctx);
  if (!launch) return std::unexpected(launch.error());
  // From here a failure is this agent's (its disk, its programs, its process table), not the
  // trial's: kIo, so that the trial runs elsewhere (agent.h, TrialRunner::start).
  if (auto w = write_trial_files(*launch); !w) return fail(ErrorCode::kIo, w.error());
  auto child = ChildProcess::start(launch->child, now);
  if (!child) return fail(ErrorCode::kIo, child.error());

  auto t = std::make_unique<Trial>();
  t->assign = assign;
  t->slot = slot;
  t->child = std::move(*child);
  t->assigned = now;
  if (options_.verbose) {
    std::cerr << "hpo agent: trial " << assign.study << "#" << assign.trial << " attempt "
              << assign.attempt << " started (pid " << t->child->pid() << ", slot " << slot
              << (ctx.gpu ? ", GPU " + *ctx.gpu : std::string(", CPU")) << ") in "
              << ms_between(now, SteadyClock::now()) << " ms; log " << launch->child.log_path
              << "\n";
  }
  slot_busy_[slot] = true;
  trials_.emplace(assign.lease, std::move(t));
  return {};
}

void ProcessRunner::stop(const std::string& lease, StopReason reason) {
  auto it = trials_.find(lease);
  if (it == trials_.end()) return;
  Trial& t = *it->second;
  if (!t.stop_requested) {
    t.stop_requested = true;
    t.stop_reason = reason;
  }
  t.child->stop();
}

protocol::Finish ProcessRunner::finish_of(Trial& t) {
  const ChildExit& e = *t.child->exit();
  protocol::Finish f;
  f.study = t.assign.study;
  f.trial = t.assign.trial;
  f.attempt = t.assign.attempt;
  f.lease = t.assign.lease;
  f.metrics = t.metrics.final_metrics();
  f.log_tail = e.log_tail;
  switch (e.kind) {
    case ChildExit::Kind::kOk:
      if (t.metrics.any()) {
        f.outcome = protocol::Outcome::kOk;
      } else {
        f.outcome = protocol::Outcome::kFailed;
        f.error = "exited with status 0 but reported no metric (print HPO_METRIC {...} lines)";
      }
      break;
    case ChildExit::Kind::kStopped:
      f.outcome = t.stop_reason == StopReason::kPruned   ? protocol::Outcome::kPruned
                  : t.stop_reason == StopReason::kPaused ? protocol::Outcome::kPaused
                                                         : protocol::Outcome::kInterrupted;
      f.error = t.stop_reason == StopReason::kInterrupted ? "interrupted" : "";
      break;
    case ChildExit::Kind::kFailed:
      if (agent_stopping_ && ended_with_the_job(e.status)) {
        f.outcome = protocol::Outcome::kInterrupted;
        f.error = "interrupted: " + e.error + " while the agent was stopping";
        break;
      }
      [[fallthrough]];
    case ChildExit::Kind::kTimedOut: {
      f.outcome = protocol::Outcome::kFailed;
      f.error = e.error;
      std::string last = last_output_line(e.log_tail);
      if (!last.empty()) f.error += ": " + last.substr(0, 300);
      break;
    }
  }
  return f;
}

std::vector<TrialEvent> ProcessRunner::poll() {
  std::vector<TrialEvent> events;
  auto now = SteadyClock::now();
  for (auto it = trials_.begin(); it != trials_.end();) {
    Trial& t = *it->second;
    try {
      t.child->pump(now);
      for (const auto& record : t.child->take_metrics()) {
        if (auto r = t.metrics.add(record.values)) {
          events.emplace_back(protocol::Report{t.assign.study, t.assign.trial, t.assign.attempt,
                                               t.assign.lease, r->step, std::move(r->metrics)});
        }
      }
    } catch (const std::exception& e) {
      // Exception boundary of one trial: what its output did to us ends it, not the agent.
      std::cerr << "hpo agent: trial " << t.assign.study << "#" << t.assign.trial << " attempt "
                << t.assign.attempt << ": cannot handle its output: " << e.what()
                << "; ending it FAILED\n";
      protocol::Finish f{t.assign.study,
                         t.assign.trial,
                         t.assign.attempt,
                         t.assign.lease,
                         protocol::Outcome::kFailed,
                         {},
                         "",
                         "",
                         false,
                         false};
      f.error = std::string("agent: cannot handle the trial's output: ") + e.what();
      f.log_tail = f.error + "\n";
      events.emplace_back(std::move(f));
      slot_busy_[t.slot] = false;
      it = trials_.erase(it);  // ~ChildProcess kills its group
      continue;
    }
    if (!t.child->finished()) {
      ++it;
      continue;
    }
    auto f = finish_of(t);
    if (options_.verbose) {
      const auto& first = t.child->first_output();
      std::cerr << "hpo agent: trial " << f.study << "#" << f.trial << " attempt " << f.attempt
                << " " << protocol::to_string(f.outcome) << " after " << t.child->exit()->seconds
                << " s; assign->first output "
                << (first ? std::to_string(ms_between(t.assigned, *first)) + " ms" : "none")
                << ", exit->finish "
                << ms_between(t.child->started() +
                                  std::chrono::duration_cast<SteadyClock::duration>(
                                      std::chrono::duration<double>(t.child->exit()->seconds)),
                              SteadyClock::now())
                << " ms\n";
    }
    events.emplace_back(std::move(f));
    slot_busy_[t.slot] = false;
    it = trials_.erase(it);
  }
  return events;
}

std::chrono::milliseconds ProcessRunner::wait_hint() const {
  milliseconds hint(100);
  auto now = SteadyClock::now();
  for (const auto& [lease, t] : trials_) {
    if (auto d = t->child->next_deadline()) {
      hint = std::min(hint, std::max(milliseconds(0), std::chrono::ceil<milliseconds>(*d - now)));
    }
  }
  return hint;
}

std::vector<int> ProcessRunner::wait_fds() const {
  std::vector<int> fds;
  for (const auto& [lease, t] : trials_) {
    auto more = t->child->poll_fds();
    fds.insert(fds.end(), more.begin(), more.end());
  }
  return fds;
}

KindRunner::KindRunner(std::unique_ptr<TrialRunner> builtin, std::unique_ptr<TrialRunner> process)
    : builtin_(std::move(builtin)), process_(std::move(process)) {}

Status KindRunner::start(const protocol::Assign& assign, const TrialFiles& files) {
  std::string kind =
      assign.spec.is_object() ? assign.spec.value("kind", std::string()) : std::string();
  TrialRunner* runner = kind == "builtin" ? builtin_.get() : process_.get();
  auto s = runner->start(assign, files);
  if (s) owner_[assign.lease] = runner;
  return s;
}

void KindRunner::stop(const std::string& lease, StopReason reason) {
  auto it = owner_.find(lease);
  if (it != owner_.end()) it->second->stop(lease, reason);
}

std::vector<TrialEvent> KindRunner::poll() {
  auto events = builtin_->poll();
  auto more = process_->poll();
  std::move(more.begin(), more.end(), std::back_inserter(events));
  for (const auto& e : events) {
    if (auto* f = std::get_if<protocol::Finish>(&e)) owner_.erase(f->lease);
  }
  return events;
}

std::chrono::milliseconds KindRunner::wait_hint() const {
  return std::min(builtin_->wait_hint(), process_->wait_hint());
}

std::vector<int> KindRunner::wait_fds() const {
  auto fds = builtin_->wait_fds();
  auto more = process_->wait_fds();
  fds.insert(fds.end(), more.begin(), more.end());
  return fds;
}

void KindRunner::agent_stopping() {
  builtin_->agent_stopping();
  process_->agent_stopping();
}

std::size_t KindRunner::running() const { return builtin_->running() + process_->running(); }

}  // namespace hpo::agent
