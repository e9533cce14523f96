// A cluster operator's commands end to end (issue 13): `hpo agents` while a real scheduler runs
// real agents, and draining an agent with SIGUSR1.
#include <unistd.h>

#include <csignal>
#include <sstream>

#include "tests/e2e/harness.h"

using namespace hpo::e2e;
using hpo::search::TrialState;
using nlohmann::json;

namespace {

std::string this_host() {
  char buf[256] = {};
  REQUIRE(gethostname(buf, sizeof buf - 1) == 0);
  return buf;
}

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// `hpo agents --format json --all`, by agent name.
std::map<std::string, json> agents_json(const TempDir& dir, const fs::path& db) {
  auto r = run_hpo(dir, "agents --all --format json --db " + db.string());
  INFO(r.err);
  REQUIRE(r.code == 0);
  std::map<std::string, json> out;
  for (auto& row : json::parse(r.out)) out[row["agent"].get<std::string>()] = row;
  return out;
}

// The status `hpo agents` gives `name` now, read from the store directly (cheap to poll).
std::string status_of(const fs::path& db, const std::string& name) {
  auto store = hpo::results::Store::open(db.string(), hpo::results::OpenMode::kReadOnly);
  if (!store) return "";
  auto rows = store->agents();
  if (!rows) return "";
  for (const auto& a : *rows) {
    if (a.id == name) return hpo::results::agent_status(a, wall_now());
  }
  return "";
}

std::vector<hpo::results::TrialRow> running_on(const fs::path& db, const std::string& study,
                                               const std::string& agent) {
  std::vector<hpo::results::TrialRow> out;
  for (auto& t : trials_of(db, study)) {
    if (t.state == TrialState::kRunning && t.agent == agent) out.push_back(t);
  }
  return out;
}

}  // namespace

TEST_CASE(
    "hpo agents lists two live agents with host, slots and running trials, and one "
    "SIGKILLed as lost",
    "[e2e][operator]") {
  TempDir dir("agents-e2e");
  const fs::path db = dir / "a.db";
  const int port = free_port();
  write_json(dir / "study.json", sleep_study("busy", 5, 3, 4.0, 4));
  Process scheduler(scheduler_args(db, port, dir / "study.json"), dir / "scheduler.log");
  Process a1(agent_args(port, dir / "w1", 2, "a1"), dir / "a1.log");
  Process a2(agent_args(port, dir / "w2", 1, "a2"), dir / "a2.log");
  INFO(scheduler.log() << a1.log() << a2.log());
  REQUIRE(wait_until(
      [&] {
        return running_on(db, "busy", "a1").size() == 2 && running_on(db, "busy", "a2").size() == 1;
      },
      20s));

  auto rows = agents_json(dir, db);
  REQUIRE(rows.size() == 2);
  const std::string host = this_host();
  for (const auto& [name, slots] : {std::pair{"a1", 2}, std::pair{"a2", 1}}) {
    INFO(name << ": " << rows[name].dump());
    CHECK(rows[name]["state"] == "live");
    CHECK(rows[name]["host"] == host);
    CHECK(rows[name]["slots"] == slots);
    CHECK(rows[name]["running"] == slots);  // each agent's slots are all busy
    CHECK(rows[name]["gpus"] == 0);
  }
  // CSV carries the same rows.
  auto csv = run_hpo(dir, "agents --format csv --db " + db.string());
  REQUIRE(csv.code == 0);
  std::stringstream lines(csv.out);
  std::string header, line;
  std::getline(lines, header);
  CHECK(header.rfind("agent,host,state,slots,running,", 0) == 0);
  std::map<std::string, std::string> csv_rows;
  while (std::getline(lines, line)) csv_rows[line.substr(0, line.find(','))] = line;
  REQUIRE(csv_rows.size() == 2);
  CHECK(csv_rows["a1"].rfind("a1," + host + ",live,2,", 0) == 0);
  CHECK(csv_rows["a2"].rfind("a2," + host + ",live,1,", 0) == 0);

  a2.signal(SIGKILL);
  REQUIRE(a2.wait(5s).has_value());
  // Lost once the scheduler's liveness window (5 x 200 ms) passes; its trial goes back.
  REQUIRE(wait_until([&] { return status_of(db, "a2") == "lost"; }, 15s));
  rows = agents_json(dir, db);
  CHECK(rows["a2"]["state"] == "lost");
  CHECK(rows["a2"]["running"] == 0);
  CHECK(rows["a1"]["state"] == "live");

  // The study still ends with its budget, on a1.
  auto code = scheduler.wait(60s);
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(completed(db, "busy") == 5);
  a1.signal(SIGTERM);
  CHECK(a1.wait(10s).has_value());
}

TEST_CASE(
    "SIGUSR1 drains an agent: its running trial completes, it gets no new one, it exits 0, "
    "and another agent finishes the budget",
    "[e2e][operator]") {
  TempDir dir("drain-e2e");
  const fs::path db = dir / "d.db";
  const int port = free_port();
  write_json(dir / "study.json", sleep_study("drain", 4, 2, 2.5, 5));
  Process scheduler(scheduler_args(db, port, dir / "study.json"), dir / "scheduler.log");
  Process drainer(agent_args(port, dir / "w1", 1, "drainer"), dir / "drainer.log");
  INFO(scheduler.log() << drainer.log());
  REQUIRE(wait_until([&] { return running_on(db, "drain", "drainer").size() == 1; }, 20s));
  const auto first = running_on(db, "drain", "drainer").front();
  const double drained_at = wall_now();
  drainer.signal(SIGUSR1);
  REQUIRE(wait_until([&] { return status_of(db, "drainer") == "draining"; }, 10s));
  CHECK(agents_json(dir, db)["drainer"]["state"] == "draining");
  Process other(agent_args(port, dir / "w2", 1, "other"), dir / "other.log");
  INFO(other.log());

  auto code = drainer.wait(20s);
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK_THAT(drainer.log(), Catch::Contains("draining"));
  auto t = stored_trials(db, "drain")[static_cast<std::size_t>(first.number)];
  CHECK(t.state == TrialState::kCompleted);  // finished, not interrupted and rerun
  CHECK(t.attempt == first.attempt);
  CHECK(t.interruptions == 0);
  CHECK(status_of(db, "drainer") == "left");

  auto done = scheduler.wait(60s);
  REQUIRE(done.has_value());
  CHECK(*done == 0);
  const auto trials = stored_trials(db, "drain");
  CHECK(count_state(trials, TrialState::kCompleted) == 4);
  for (const auto& trial : trials) {
    INFO("trial " << trial.number << " on " << trial.agent);
    if (trial.number == first.number) continue;
    CHECK(trial.agent == "other");  // nothing went to the drainer after the signal
    CHECK(trial.started.value_or(0) > drained_at);
  }
  other.signal(SIGTERM);
  CHECK(other.wait(10s).has_value());
}
