#include "tests/e2e/chaos.h"

#include <sqlite3.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <sstream>

#include "results/store.h"
#include "tests/support/temp_dir.h"

namespace hpo::e2e::chaos {
namespace fs = std::filesystem;

std::vector<TrialProcess> trial_processes(const std::string& marker) {
  std::vector<TrialProcess> out;
  std::error_code ec;
  for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    // Read while the process may exit: a vanished one reads as "" and is skipped.
    const std::string cmdline = test::read_text(it->path() / "cmdline");
    if (cmdline.find(marker) == std::string::npos) continue;
    const std::string stat = test::read_text(it->path() / "stat");
    const auto close = stat.rfind(')');  // the command name may hold spaces and ')'
    if (close == std::string::npos || close + 2 > stat.size()) continue;
    std::istringstream fields(stat.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    if (!(fields >> state >> ppid) || state == 'Z' || state == 'X') continue;
    TrialProcess p{static_cast<pid_t>(std::stol(name)), ppid, {}};
    std::istringstream args(cmdline);
    for (std::string arg; std::getline(args, arg, '\0');) p.args.push_back(arg);
    out.push_back(std::move(p));
  }
  return out;
}

std::size_t children_of(const std::vector<TrialProcess>& procs, pid_t parent) {
  return static_cast<std::size_t>(
      std::count_if(procs.begin(), procs.end(), [&](const auto& p) { return p.ppid == parent; }));
}

std::string integrity_check(const fs::path& db) {
  sqlite3* handle = nullptr;
  std::string answer;
  if (sqlite3_open_v2(db.c_str(), &handle, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    answer = "cannot open: " + std::string(sqlite3_errmsg(handle));
  } else {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(handle, "PRAGMA integrity_check", -1, &st, nullptr) != SQLITE_OK) {
      answer = "cannot prepare: " + std::string(sqlite3_errmsg(handle));
    } else if (sqlite3_step(st) != SQLITE_ROW) {
      answer = "no answer: " + std::string(sqlite3_errmsg(handle));
    } else {
      answer = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(handle);
  return answer;
}

namespace {

enum class Last { kNone, kAgent, kRestart, kRetry, kOther };

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

}  // namespace

Tally tally_events(const fs::path& db, const std::string& study) {
  auto store = results::Store::open(db.string(), results::OpenMode::kReadOnly);
  REQUIRE(store);
  auto row = store->find_study(study);
  REQUIRE((row && *row));
  auto events = store->events((*row)->id);
  REQUIRE(events);

  Tally t;
  std::map<std::int64_t, Last> last;           // trial id -> what its last event was
  std::map<std::int64_t, std::int64_t> tried;  // trial id -> its last assigned attempt
  std::map<std::int64_t, double> assigned_at;  // trial id -> when it was assigned
  for (const auto& e : *events) {
    if (!e.trial) continue;
    const std::int64_t id = *e.trial;
    const auto attempt = e.detail.value("attempt", std::int64_t{0});
    if (e.kind == "assigned") {
      ++t.assigned;
      if (tried.count(id) && tried[id] == attempt) ++t.readopted;
      if (!tried.count(id) || tried[id] != attempt) assigned_at[id] = e.time;
      tried[id] = attempt;
      last[id] = Last::kNone;
    } else if (e.kind == "interrupted") {
      ++t.interrupted;
      const std::string reason = e.detail.value("reason", std::string());
      const auto error = e.detail.contains("error") && e.detail["error"].is_string()
                             ? e.detail["error"].get<std::string>()
                             : std::string();
      if (contains(reason, "scheduler stopped")) {
        ++t.interrupted_by_restart;
        last[id] = Last::kRestart;
      } else if (contains(error, "no longer runs it")) {
        ++t.interrupted_not_announced;
        last[id] = Last::kAgent;
      } else if (contains(error, " lost")) {
        ++t.interrupted_agent_lost;
        last[id] = Last::kAgent;
      } else if (contains(error, "reconnected")) {
        ++t.interrupted_reconnected;
        last[id] = Last::kAgent;
      } else {
        ++t.interrupted_other;
        t.unexplained.push_back("interrupted: " + e.detail.dump());
        last[id] = Last::kOther;
      }
    } else if (e.kind == "requeued") {
      ++t.requeued;
      const auto agent = e.detail.contains("agent") && e.detail["agent"].is_string()
                             ? e.detail["agent"].get<std::string>()
                             : std::string();
      Tally::Requeue r{e.detail.value("number", std::int64_t{-1}),
                       attempt,
                       "other",
                       agent,
                       assigned_at[id],
                       e.time};
      switch (last[id]) {
        case Last::kAgent:
          ++t.requeued_after_agent;
          r.after = "agent";
          break;
        case Last::kRestart:
          ++t.requeued_after_restart;
          r.after = "restart";
          break;
        case Last::kRetry:
          ++t.requeued_after_retry;
          r.after = "retry";
          break;
        default:
          ++t.requeued_other;
          t.unexplained.push_back("requeued: " + e.detail.dump());
      }
      t.requeues.push_back(std::move(r));
      last[id] = Last::kNone;
    } else if (e.kind == "retry") {
      last[id] = Last::kRetry;
    } else if (e.kind == "completed") {
      ++t.completed[e.detail.value("number", std::int64_t{-1})];
      last[id] = Last::kNone;
    }
  }
  return t;
}

RequeueCauses explain_requeues(const Tally& tally, const Kills& kills,
                               const std::function<bool(std::int64_t, std::int64_t)>& started) {
  RequeueCauses causes;
  for (const auto& r : tally.requeues) {
    // The process that got the lease: the agent's last start before it was assigned.
    double holder_start = -1;
    auto [s0, s1] = kills.started.equal_range(r.agent);
    for (auto it = s0; it != s1; ++it) {
      if (it->second <= r.assigned_at) holder_start = std::max(holder_start, it->second);
    }
    auto [k0, k1] = kills.at.equal_range(r.agent);
    const bool holder_killed = holder_start >= 0 && std::any_of(k0, k1, [&](const auto& k) {
                                 return k.second >= holder_start && k.second <= r.at;
                               });
    if (kills.held.count({r.number, r.attempt})) {
      ++causes.held;
    } else if (holder_killed) {
      ++causes.killed;
    } else if (r.after == "restart" && !started(r.number, r.attempt)) {
      ++causes.unsent;
    } else {
      causes.unexplained.push_back("#" + std::to_string(r.number) + " attempt " +
                                   std::to_string(r.attempt) + " of " + r.agent + " (after " +
                                   r.after + ")");
    }
  }
  return causes;
}

}  // namespace hpo::e2e::chaos
