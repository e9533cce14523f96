#include "tests/e2e/chaos_driver.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <random>
#include <sstream>
#include <thread>

#include "tests/e2e/harness.h"

namespace hpo::e2e::chaos {
namespace {

using search::TrialState;

// (trial number, attempt) of a trial process: the last two words of its
// command line (the study's command ends with "{hpo.trial} {hpo.attempt}").
// One caught before bash has exec'd the trial reads `bash -c "..."`.
std::optional<Kills::Attempt> attempt_of(const TrialProcess& p) {
  std::vector<std::string> args = p.args;
  if (args.size() == 3 && args[1] == "-c") {
    std::istringstream words(args[2]);
    args.assign(std::istream_iterator<std::string>(words), {});
  }
  if (args.size() < 3) return std::nullopt;
  try {
    return Kills::Attempt{std::stoll(args[args.size() - 2]), std::stoll(args.back())};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::vector<Event> schedule(std::uint32_t seed) {
  std::mt19937 rng(seed);
  auto uniform = [&](double lo, double hi) { return std::uniform_real_distribution(lo, hi)(rng); };
  auto pick = [&](int n) { return std::uniform_int_distribution(0, n - 1)(rng); };
  const double long_lo = 1.3 * kLivenessWindow, long_hi = 2.2 * kLivenessWindow;
  std::vector<Event> events;
  for (bool long_outage : {true, true, false}) {
    events.push_back(
        {Event::kScheduler, 0, long_outage ? uniform(long_lo, long_hi) : uniform(0.05, 0.4), 0});
  }
  for (bool long_outage : {true, false, false, true, false}) {
    events.push_back({Event::kAgent, pick(kAgents), 0,
                      long_outage ? uniform(long_lo, long_hi) : uniform(0.05, 0.5)});
  }
  for (int i = 0; i < 2; ++i) {
    const double outage = uniform(long_lo, long_hi);
    events.push_back({Event::kBoth, pick(kAgents), outage, uniform(0.2, outage + 0.5)});
  }
  std::shuffle(events.begin(), events.end(), rng);
  return events;
}

namespace {

std::vector<std::string> agent_names() {
  std::vector<std::string> names;
  for (int i = 0; i < kAgents; ++i) names.push_back("agent-" + std::to_string(i));
  return names;
}

}  // namespace

Cluster::Cluster(const test::TempDir& dir, std::filesystem::path study_file, std::string study,
                 std::string marker)
    : dir_(dir),
      db_(dir.path / (study + ".db")),
      keys_(make_keys(dir.path, agent_names(), {})),
      study_file_(std::move(study_file)),
      study_(std::move(study)),
      marker_(std::move(marker)),
      port_(test::free_port()),
      agents_(kAgents) {
  start_scheduler();
  for (int i = 0; i < kAgents; ++i) start_agent(i);
}

void Cluster::run_for(double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  do {
    tick();
    std::this_thread::sleep_for(20ms);
  } while (!summary_.finished && std::chrono::steady_clock::now() < until);
}

bool Cluster::run_until_completed(std::int64_t count, double limit) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(limit);
  while (!summary_.finished && std::chrono::steady_clock::now() < until) {
    if (completed(db_, study_) >= count) return true;
    run_for(0.05);
  }
  return false;
}

void Cluster::kill_scheduler() {
  summary_.running_at_scheduler_kills += trial_processes(marker_).size();
  scheduler_->signal(SIGKILL);
  scheduler_->wait(5s);
  scheduler_.reset();
  ++summary_.scheduler_kills;
}

void Cluster::kill_agent(int i) {
  const pid_t pid = agents_[i]->pid();
  wait_until([&] { return children_of(trial_processes(marker_), pid) > 0; }, 3s);
  std::vector<pid_t> children;
  for (const auto& p : trial_processes(marker_)) {
    if (p.ppid != pid) continue;
    children.push_back(p.pid);
    if (auto a = attempt_of(p)) summary_.kills.held.insert(*a);
  }
  summary_.kills.at.emplace("agent-" + std::to_string(i), unix_now());
  agents_[i]->signal(SIGKILL);
  agents_[i]->wait(5s);
  agents_[i].reset();
  ++summary_.agent_kills;
  summary_.held_by_killed_agents += children.size();
  // What the agent promises (child_process.h, PR_SET_PDEATHSIG): its trial dies with it.
  auto alive = [&] {
    std::size_t n = 0;
    for (const auto& p : trial_processes(marker_)) {
      n += static_cast<std::size_t>(std::count(children.begin(), children.end(), p.pid));
    }
    return n;
  };
  wait_until([&] { return alive() == 0; }, 2s);
  summary_.orphans += alive();
}

void Cluster::start_scheduler() {
  if (scheduler_starts_++ > 0) ++summary_.restarts;
  scheduler_ = std::make_unique<test::Process>(
      plus_args(scheduler_args(db_, port_, study_file_), keys_.scheduler_args()),
      dir_.path / "scheduler.log");
}

void Cluster::start_agent(int i) {
  if (agent_starts_++ >= kAgents) ++summary_.restarts;
  summary_.kills.started.emplace("agent-" + std::to_string(i), unix_now());
  agents_[i] = std::make_unique<test::Process>(
      plus_args(agent_args(port_, dir_.path / "work", kSlots, "agent-" + std::to_string(i)),
           keys_.client_args("agents/agent-" + std::to_string(i))),
      dir_.path / ("agent-" + std::to_string(i) + ".log"));
}

void Cluster::play(const Event& e) {
  switch (e.kind) {
    case Event::kScheduler:
      kill_scheduler();
      run_for(e.outage);
      start_scheduler();
      break;
    case Event::kAgent:
      kill_agent(e.agent);
      run_for(e.agent_down);
      start_agent(e.agent);
      break;
    case Event::kBoth: {
      // The agent dies during the scheduler's outage: the restarted scheduler
      // waits its recovery window for trials nobody will re-announce.
      kill_scheduler();
      run_for(0.2);
      kill_agent(e.agent);
      const double scheduler_at = std::max(0.0, e.outage - 0.2);
      const double agent_at = e.agent_down;
      run_for(std::min(scheduler_at, agent_at));
      if (scheduler_at <= agent_at) {
        start_scheduler();
        run_for(agent_at - scheduler_at);
        start_agent(e.agent);
      } else {
        start_agent(e.agent);
        run_for(scheduler_at - agent_at);
        start_scheduler();
      }
      break;
    }
  }
}

void Cluster::finish(double limit) {
  run_for(limit);
  if (!summary_.finished) summary_.notes.push_back("the study did not finish in time");
  for (auto& a : agents_) {
    if (a) a->signal(SIGTERM);
  }
  for (std::size_t i = 0; i < agents_.size(); ++i) {
    if (!agents_[i]) continue;
    auto code = agents_[i]->wait(15s);
    if (code != 0) {
      summary_.notes.push_back("agent-" + std::to_string(i) + " ended with " +
                               (code ? std::to_string(*code) : std::string("no exit")));
    }
  }
}

void Cluster::tick() {
  if (scheduler_) {
    if (auto code = scheduler_->wait(0ms)) {
      scheduler_.reset();
      if (*code == 0) {
        summary_.finished = true;
      } else {
        ++summary_.scheduler_crashes;
        summary_.notes.push_back("the scheduler exited with " + std::to_string(*code));
        start_scheduler();
      }
    }
  }
  for (int i = 0; i < kAgents; ++i) {
    if (!agents_[i]) continue;
    if (auto code = agents_[i]->wait(0ms)) {
      ++summary_.agent_crashes;
      summary_.notes.push_back("agent-" + std::to_string(i) + " exited with " +
                               std::to_string(*code));
      start_agent(i);
    }
  }
  // Parallelism: trials the file calls RUNNING that also have a process.
  auto c = counts(db_, study_);
  const auto running = c.count(TrialState::kRunning) ? c[TrialState::kRunning] : 0;
  const auto procs = static_cast<std::int64_t>(trial_processes(marker_).size());
  const int now = static_cast<int>(std::min(running, procs));
  summary_.peak = std::max(summary_.peak, now);
  if (calm_) summary_.peak_after_last_restart = std::max(summary_.peak_after_last_restart, now);
}

}  // namespace hpo::e2e::chaos
