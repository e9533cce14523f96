// The agents rows (`hpo agents`): state, running counts, sightings and what a reader calls an
// agent; and `hpo agents` itself on a database filled through the API.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>

#include "tests/results/cli_fixture.h"

using namespace hpo::results;
using namespace hpo::results::testing;
using nlohmann::json;

namespace {

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

AgentRow by_id(Store& store, const std::string& id) {
  for (auto& a : ok(store.agents())) {
    if (a.id == id) return a;
  }
  FAIL("no agent " << id);
  return {};
}

}  // namespace

TEST_CASE("an agent's state and running trials are read back with it") {
  TempDir dir;
  auto store = open_writer(dir / "hpo.db");
  ok(store.upsert_agent("a1", "gpu-01", json::array(), 2, 100.0, 9.0));
  ok(store.upsert_agent("a2", "gpu-02", json::array(), 1, 100.0, 9.0));
  auto study = ok(store.create_study(study_row("s")));
  for (int n = 0; n < 3; ++n) {
    auto id = ok(store.add_trial(study, n, json{{"x", n}}, "h", 100.0));
    const std::string lease = std::to_string(n) + ".1";
    ok(store.start_trial(id, 1, lease, n < 2 ? "a1" : "a2", "", 101.0));
    if (n == 2) ok(store.finish_trial(id, TrialState::kCompleted, 1.0, "", "", 102.0));
  }
  auto a1 = by_id(store, "a1");
  CHECK(a1.state == "live");
  CHECK(a1.stale_after == 9.0);
  CHECK(a1.running == 2);
  CHECK(by_id(store, "a2").running == 0);  // its trial completed

  ok(store.set_agent_state("a1", "draining", 105.0));
  CHECK(by_id(store, "a1").state == "draining");
  CHECK(by_id(store, "a1").last_seen == 105.0);
  // An older sighting never moves last_seen back.
  ok(store.set_agent_state("a1", "left", 103.0));
  CHECK(by_id(store, "a1").last_seen == 105.0);
  CHECK_FALSE(store.set_agent_state("nobody", "left", 1.0));
  // A HELLO makes it live again.
  ok(store.upsert_agent("a1", "gpu-01", json::array(), 2, 110.0, 9.0));
  CHECK(by_id(store, "a1").state == "live");
}

TEST_CASE("sightings move last_seen forward only and skip unknown agents") {
  TempDir dir;
  auto store = open_writer(dir / "hpo.db");
  ok(store.upsert_agent("a1", "h", json::array(), 1, 100.0));
  ok(store.upsert_agent("a2", "h", json::array(), 1, 100.0));
  ok(store.touch_agents({{"a1", 120.0}, {"a2", 90.0}, {"ghost", 130.0}}));
  CHECK(by_id(store, "a1").last_seen == 120.0);
  CHECK(by_id(store, "a2").last_seen == 100.0);
  CHECK(ok(store.agents()).size() == 2);
}

TEST_CASE("what a reader calls an agent: drained, and lost once its live row is out of date") {
  AgentRow a;
  a.state = "live";
  a.last_seen = 100.0;
  a.stale_after = 10.0;
  CHECK(agent_status(a, 105.0) == "live");
  CHECK(agent_status(a, 111.0) == "lost");  // the scheduler stopped writing
  a.drained = "3 trials failed to start";
  CHECK(agent_status(a, 105.0) == "drained");
  a.drained.clear();
  a.state = "draining";
  CHECK(agent_status(a, 105.0) == "draining");
  CHECK(agent_status(a, 111.0) == "lost");
  for (const char* gone : {"left", "lost", "revoked"}) {
    a.state = gone;
    CHECK(agent_status(a, 1e9) == gone);
  }
  a.state = "live";
  a.stale_after = 0;  // never out of date
  CHECK(agent_status(a, 1e9) == "live");
}

TEST_CASE("hpo agents lists each agent with its host, slots, GPUs, running trials and state") {
  TempDir dir;
  const std::string path = dir / "hpo.db";
  const double now = wall_now();
  {
    auto store = open_writer(path);
    const json h200 = {{"index", 0}, {"name", "NVIDIA H200"}, {"memory_bytes", 1}};
    ok(store.upsert_agent("gpu-a", "host-a", json::array({h200, h200}), 2, now - 3, 60));
    ok(store.upsert_agent("cpu-b", "host-b", json::array(), 4, now - 2, 60));
    ok(store.set_agent_state("cpu-b", "draining", now - 1));
    ok(store.upsert_agent("old-c", "host-c", json::array(), 1, now - 7200, 60));
    ok(store.set_agent_state("old-c", "left", now - 7200));
    ok(store.upsert_agent("gone-d", "host-d", json::array(), 1, now - 60, 60));
    ok(store.set_agent_state("gone-d", "lost", now - 60));
    auto study = ok(store.create_study(study_row("s")));
    auto id = ok(store.add_trial(study, 0, json{{"x", 1}}, "h", now));
    ok(store.start_trial(id, 1, "L", "gpu-a", "", now));
  }
  auto rows = parse(run_hpo(dir, "agents --db " + path + " --format json"));
  REQUIRE(rows.size() == 3);  // old-c left two hours ago
  // By first sighting.
  CHECK(rows[0]["agent"] == "gone-d");
  CHECK(rows[0]["state"] == "lost");
  CHECK(rows[1]["agent"] == "gpu-a");
  CHECK(rows[1]["host"] == "host-a");
  CHECK(rows[1]["state"] == "live");
  CHECK(rows[1]["slots"] == 2);
  CHECK(rows[1]["running"] == 1);
  CHECK(rows[1]["gpus"] == 2);
  CHECK(rows[1]["gpu_models"] == "2x NVIDIA H200");
  CHECK(rows[1]["silent_s"].get<double>() >= 0);
  CHECK(rows[2]["agent"] == "cpu-b");
  CHECK(rows[2]["state"] == "draining");
  CHECK(rows[2]["gpus"] == 0);

  auto all = parse(run_hpo(dir, "agents --db " + path + " --format json --all"));
  REQUIRE(all.size() == 4);
  CHECK(all[0]["agent"] == "old-c");
  CHECK(all[0]["state"] == "left");

  // CSV: the same rows, and the same values under the same names.
  auto csv = run_hpo(dir, "agents --db " + path + " --format csv");
  REQUIRE(csv.code == 0);
  auto text = lines(csv.out);
  REQUIRE(text.size() == 4);
  const auto header = csv_fields(text[0]);
  for (std::size_t r = 0; r < 3; ++r) {
    const auto fields = csv_fields(text[r + 1]);
    REQUIRE(fields.size() == header.size());
    for (const auto& [name, value] : rows[r].items()) {
      const auto at = std::find(header.begin(), header.end(), name);
      REQUIRE(at != header.end());
      const auto& field = fields[static_cast<std::size_t>(at - header.begin())];
      if (value.is_string()) CHECK(field == value.get<std::string>());
      if (value.is_number_integer()) CHECK(field == std::to_string(value.get<long>()));
    }
  }

  auto table = run_hpo(dir, "agents --db " + path, "COLUMNS=200");
  REQUIRE(table.code == 0);
  CHECK_THAT(table.out, Catch::Contains("3 agent(s): 1 draining, 1 live, 1 lost"));
  CHECK_THAT(table.out, Catch::Contains("1 gone for over an hour not shown: --all"));
  CHECK_THAT(table.out, Catch::Contains("s ago"));
  CHECK_THAT(table.out, Catch::Contains("host-b"));
}

TEST_CASE("hpo agents on a database without agents says so, and refuses a bad format") {
  Db db;
  auto r = run_hpo(db.dir, "agents " + db.db);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("0 agent(s)"));
  CHECK(parse(run_hpo(db.dir, "agents " + db.db + " --format json")).empty());
  auto bad = run_hpo(db.dir, "agents " + db.db + " --format xml");
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Catch::Contains("--format"));
  auto missing = run_hpo(db.dir, "agents --db " + (db.dir / "missing.db"));
  CHECK(missing.code == 2);
}
