// The scheduler end to end: the real `hpo` binary, real agent processes on
// 127.0.0.1, crashes by SIGKILL, and the database read back afterwards.
#include <fstream>
#include <regex>
#include <thread>

#include "tests/e2e/harness.h"

using namespace hpo::e2e;
using hpo::search::TrialState;
using nlohmann::json;

namespace {

// The scheduler tests' word for wait_until.
constexpr auto& eventually = wait_until;

const std::vector<std::string> kFastBeats = {"--heartbeat-ms", "100", "--liveness", "5"};

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<std::unique_ptr<Process>> start_agents(const TempDir& dir, const std::string& endpoint,
                                                   int n, int first = 0) {
  std::vector<std::unique_ptr<Process>> agents;
  for (int i = first; i < first + n; ++i) {
    agents.push_back(std::make_unique<Process>(
        with({"agent", "--connect", endpoint, "--name", "agent-" + std::to_string(i)}, kFastBeats),
        dir / ("agent-" + std::to_string(i) + ".log")));
  }
  return agents;
}

void stop_agents(std::vector<std::unique_ptr<Process>>& agents) {
  for (auto& a : agents) {
    if (a->running()) a->signal(SIGTERM);
  }
  for (auto& a : agents) {
    auto code = a->wait(10s);
    CHECK(code.has_value());
  }
}

// Every current-attempt metric of every trial, as (number, name, step) -> count.
std::map<std::tuple<std::int64_t, std::string, std::int64_t>, int> metric_rows(
    const fs::path& db, const std::string& study) {
  auto store = hpo::results::Store::open(db.string(), hpo::results::OpenMode::kReadOnly);
  REQUIRE(store);
  auto row = store->find_study(study);
  REQUIRE(row);
  REQUIRE(*row);
  auto rows = store->study_metrics((*row)->id);
  REQUIRE(rows);
  std::map<std::tuple<std::int64_t, std::string, std::int64_t>, int> out;
  for (const auto& m : *rows) ++out[{m.number, m.name, m.step}];
  return out;
}

}  // namespace

TEST_CASE(
    "a 200-trial Branin search submitted to a running scheduler with 4 agents ends with "
    "exactly 200 COMPLETED trials",
    "[e2e][scheduler]") {
  TempDir dir("branin");
  const fs::path db = dir / "b.db";
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(free_port());
  json study = json::parse(read_text(fs::path(HPO_SOURCE_DIR) / "experiments/branin.json"));
  study["budget"]["max_trials"] = 200;
  study["budget"]["max_parallel"] = 4;
  write_json(dir / "branin.json", study);

  Process scheduler(with({"scheduler", "--db", db.string(), "--bind", endpoint}, kFastBeats),
                    dir / "scheduler.log");
  auto agents = start_agents(dir, endpoint, 4);
  auto [code, out, err] =
      run_hpo(dir, "submit " + dir / "branin.json" + " --connect " + endpoint + " 2>&1");
  INFO(out);
  REQUIRE(code == 0);
  CHECK_THAT(out, Catch::Contains("submitted study branin"));

  bool done = eventually([&] { return completed(db, "branin") == 200; }, 60s);
  INFO(scheduler.log());
  REQUIRE(done);
  scheduler.signal(SIGTERM);
  REQUIRE(scheduler.wait(20s) == 0);
  stop_agents(agents);
  auto c = counts(db, "branin");
  CHECK(c.size() == 1);
  CHECK(c[TrialState::kCompleted] == 200);
  for (const auto& t : stored_trials(db, "branin")) CHECK(t.attempt == 1);
}

TEST_CASE(
    "SIGKILL of an agent mid-trial: its trial is requeued, the budget is exact and nothing "
    "is counted twice",
    "[e2e][scheduler]") {
  TempDir dir("agent-kill");
  const fs::path db = dir / "s.db";
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(free_port());
  write_json(dir / "sleep.json", sleep_study("sleepy", 24, 3, 0.4, 4));
  Process scheduler(with({"scheduler", "--db", db.string(), "--bind", endpoint, "--study",
                          dir / "sleep.json", "--exit-when-done"},
                         kFastBeats),
                    dir / "scheduler.log");
  auto agents = start_agents(dir, endpoint, 3);
  REQUIRE(eventually([&] { return completed(db, "sleepy") >= 6; }, 30s));
  agents[0]->signal(SIGKILL);  // trials run back to back: it is mid-trial
  REQUIRE(agents[0]->wait(5s) == 128 + SIGKILL);
  auto more = start_agents(dir, endpoint, 1, 3);

  auto code = scheduler.wait(60s);
  INFO(scheduler.log());
  REQUIRE(code == 0);
  CHECK_THAT(scheduler.log(), Catch::Contains("agent agent-0 lost"));
  stop_agents(more);
  agents.erase(agents.begin());
  stop_agents(agents);

  auto c = counts(db, "sleepy");
  CHECK(c.size() == 1);
  CHECK(c[TrialState::kCompleted] == 24);
  int retried = 0;
  for (const auto& t : stored_trials(db, "sleepy")) {
    retried += t.attempt > 1;
    CHECK(t.value.has_value());
  }
  CHECK(retried >= 1);
  // Each trial's current attempt has exactly one value per step 1..4.
  auto metrics = metric_rows(db, "sleepy");
  CHECK(metrics.size() == 24 * 4);
  for (const auto& [key, n] : metrics) CHECK(n == 1);
}

TEST_CASE(
    "SIGKILL of the scheduler mid-search and a restart on the same file: agents' trials "
    "are re-adopted, the budget is exact and the leaderboard's best is the best recorded",
    "[e2e][scheduler]") {
  TempDir dir("scheduler-kill");
  const fs::path db = dir / "s.db";
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(free_port());
  write_json(dir / "sleep.json", sleep_study("sleepy", 30, 4, 0.3, 3));
  auto scheduler_args = with({"scheduler", "--db", db.string(), "--bind", endpoint, "--study",
                              dir / "sleep.json", "--exit-when-done"},
                             kFastBeats);
  auto first = std::make_unique<Process>(scheduler_args, dir / "scheduler-1.log");
  auto agents = start_agents(dir, endpoint, 4);
  REQUIRE(eventually([&] { return completed(db, "sleepy") >= 8; }, 30s));
  first->signal(SIGKILL);
  REQUIRE(first->wait(5s) == 128 + SIGKILL);
  std::this_thread::sleep_for(200ms);

  Process second(scheduler_args, dir / "scheduler-2.log");
  auto code = second.wait(60s);
  INFO(second.log());
  REQUIRE(code == 0);
  stop_agents(agents);
  std::string log = second.log();
  const std::regex readopted_re("re-adopted (\\d+)");
  int readopted = 0;
  for (std::sregex_iterator it(log.begin(), log.end(), readopted_re), end; it != end; ++it) {
    readopted += std::stoi((*it)[1]);
  }
  CHECK(readopted >= 1);

  auto c = counts(db, "sleepy");
  CHECK(c.size() == 1);
  CHECK(c[TrialState::kCompleted] == 30);
  auto metrics = metric_rows(db, "sleepy");
  CHECK(metrics.size() == 30 * 3);
  for (const auto& [key, n] : metrics) CHECK(n == 1);

  double best = 1e300;
  for (const auto& t : stored_trials(db, "sleepy")) {
    REQUIRE(t.value);
    best = std::min(best, *t.value);
  }
  auto store = hpo::results::Store::open(db.string(), hpo::results::OpenMode::kReadOnly);
  REQUIRE(store);
  auto row = store->find_study("sleepy");
  REQUIRE((row && *row));
  auto board = store->leaderboard((*row)->id, hpo::results::LeaderboardQuery{});
  REQUIRE(board);
  REQUIRE_FALSE(board->empty());
  CHECK(board->front().score == best);
}

TEST_CASE("SIGTERM stops the scheduler with exit 0 and hpo resume finishes a raised budget",
          "[e2e][scheduler]") {
  TempDir dir("resume");
  const fs::path db = dir / "s.db";
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(free_port());
  write_json(dir / "sleep.json", sleep_study("sleepy", 6, 2, 0.5, 2));
  Process scheduler(with({"scheduler", "--db", db.string(), "--bind", endpoint, "--study",
                          dir / "sleep.json", "--shutdown-grace-seconds", "0.1"},
                         kFastBeats),
                    dir / "scheduler.log");
  auto agents = start_agents(dir, endpoint, 2);
  REQUIRE(eventually([&] { return completed(db, "sleepy") >= 2; }, 30s));
  scheduler.signal(SIGTERM);
  REQUIRE(scheduler.wait(10s) == 0);
  // Trials still running are handed over (left RUNNING, their agents run on), not interrupted.
  auto c = counts(db, "sleepy");
  CHECK(c.count(TrialState::kInterrupted) == 0);

  Process resumed(with({"resume", "sleepy", "--db", db.string(), "--bind", endpoint, "--max-trials",
                        "8", "--exit-when-done"},
                       kFastBeats),
                  dir / "resume.log");
  auto code = resumed.wait(60s);
  INFO(resumed.log());
  REQUIRE(code == 0);
  stop_agents(agents);
  c = counts(db, "sleepy");
  CHECK(c.size() == 1);
  CHECK(c[TrialState::kCompleted] == 8);
}

TEST_CASE("hpo run searches with local agents and prints the leaderboard", "[e2e][scheduler]") {
  TempDir dir("run");
  json study = json::parse(read_text(fs::path(HPO_SOURCE_DIR) / "experiments/branin.json"));
  study["budget"]["max_trials"] = 20;
  write_json(dir / "branin.json", study);
  auto [code, out, err] =
      run_hpo(dir, "run " + dir / "branin.json" + " --agents 2 --db " + dir / "r.db" + " 2>&1");
  INFO(out);
  REQUIRE(code == 0);
  CHECK_THAT(out, Catch::Contains("rank"));
  CHECK(completed(dir / "r.db", "branin") == 20);
}

TEST_CASE("after hpo run ends only the database stays: no -wal, -shm or .lock file beside it",
          "[e2e][scheduler]") {
  TempDir dir("run-tidy");
  json study = json::parse(read_text(fs::path(HPO_SOURCE_DIR) / "experiments/branin.json"));
  study["budget"]["max_trials"] = 6;
  write_json(dir / "branin.json", study);
  const fs::path db = dir / "r.db";
  auto [code, out, err] =
      run_hpo(dir, "run " + dir / "branin.json" + " --agents 2 --db " + db.string() + " 2>&1");
  INFO(out);
  REQUIRE(code == 0);
  CHECK_THAT(out, Catch::Contains("rank"));  // the closing leaderboard read it too
  CHECK(fs::exists(db));
  for (const char* suffix : {"-wal", "-shm", ".lock"}) {
    INFO(suffix);
    CHECK_FALSE(fs::exists(db.string() + suffix));
  }
  CHECK(completed(db, "branin") == 6);
}

TEST_CASE("a bad study file or database is a clear error with exit 2 or 1", "[e2e][scheduler]") {
  TempDir dir("bad");
  json bad = sleep_study("bad", 0, 1, 0.1, 1);
  write_json(dir / "bad.json", bad);
  auto [code, out, err] =
      run_hpo(dir, "scheduler --db " + dir / "x.db" + " --study " + dir / "bad.json" + " 2>&1");
  CHECK(code == 2);
  CHECK_THAT(out, Catch::Contains("bad.json") && Catch::Contains("max_trials"));

  std::ofstream(dir / "junk.db") << "this is not a database, not even close...............";
  auto [code2, out2, err2] = run_hpo(dir, "scheduler --db " + dir / "junk.db" + " 2>&1");
  CHECK(code2 == 1);
  CHECK_THAT(out2, Catch::Contains("junk.db"));

  auto [code3, out3, err3] =
      run_hpo(dir, "submit " + dir / "missing.json" + " --connect tcp://127.0.0.1:1 2>&1");
  CHECK(code3 == 2);
  CHECK_THAT(out3, Catch::Contains("missing.json"));
}
