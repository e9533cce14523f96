// `hpo studies/trials/show/export` and what every query command shares, run as the real
// binary on a database filled through the API: study names, missing or foreign databases,
// usage errors.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/results/cli_fixture.h"

using namespace hpo::results;
using namespace hpo::results::testing;
using nlohmann::json;

TEST_CASE("a query without --study needs exactly one study and names them otherwise") {
  Db db;
  CHECK(run_hpo(db.dir, "leaderboard " + db.db + " --format json").code == 0);
  db.add_study("branin");
  auto r = run_hpo(db.dir, "leaderboard " + db.db);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("--study"));
  CHECK_THAT(r.err, Catch::Contains("mlp, branin"));
  CHECK(run_hpo(db.dir, "leaderboard " + db.db + " --study mlp").code == 0);
}

TEST_CASE("an unknown study is an error that lists the known ones") {
  Db db;
  auto r = run_hpo(db.dir, "trials " + db.db + " --study nope");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("unknown study 'nope'"));
  CHECK_THAT(r.err, Catch::Contains("known studies: mlp"));
  CHECK(r.out.empty());
}

TEST_CASE("the query commands never create a missing database") {
  TempDir dir;
  const auto path = dir / "missing.db";
  for (const char* command : {"leaderboard", "studies", "trials", "show 0", "export"}) {
    auto r = run_hpo(dir, std::string(command) + " --db " + path);
    INFO(command);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::Contains("no such database"));
  }
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("a file that is not an hpo database is refused by the query commands") {
  TempDir dir;
  const auto path = dir / "notes.db";
  std::ofstream(path) << std::string(2000, 'z');
  auto r = run_hpo(dir, "studies --db " + path);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("not an hpo database"));
}

TEST_CASE("bad options are usage errors with exit code 2") {
  Db db;
  CHECK(run_hpo(db.dir, "leaderboard " + db.db + " --format xml").code == 2);
  CHECK(run_hpo(db.dir, "leaderboard " + db.db + " --where nonsense").code == 2);
  CHECK(run_hpo(db.dir, "leaderboard " + db.db + " --where").code == 2);
  CHECK(run_hpo(db.dir, "leaderboard " + db.db + " --top -1").code == 2);
  CHECK(run_hpo(db.dir, "leaderboard " + db.db + " --direction up").code == 2);
  CHECK(run_hpo(db.dir, "trials " + db.db + " --state sleeping").code == 2);
  CHECK(run_hpo(db.dir, "show " + db.db).code == 2);
  CHECK(run_hpo(db.dir, "show 99 " + db.db).code == 2);
  CHECK(run_hpo(db.dir, "export " + db.db + " --format table").code == 2);
  CHECK(run_hpo(db.dir, "leaderboard --help").code == 0);
}

TEST_CASE("hpo studies counts trials by state and shows the best value") {
  Db db;
  db.add_study("empty");
  auto rows = parse(run_hpo(db.dir, "studies " + db.db + " --format json"));
  REQUIRE(rows.size() == 2);
  CHECK(rows[0]["study"] == "mlp");
  CHECK(rows[0]["trials"] == 9);
  CHECK(rows[0]["completed"] == 6);
  CHECK(rows[0]["failed"] == 1);
  CHECK(rows[0]["running"] == 1);
  CHECK(rows[0]["queued"] == 1);
  CHECK(rows[0]["best"] == Approx(0.75));
  CHECK(rows[0]["best_trial"] == 5);
  CHECK(rows[1]["trials"] == 0);
  CHECK_FALSE(rows[1].contains("best"));
  auto table = run_hpo(db.dir, "studies " + db.db);
  CHECK_THAT(table.out, Catch::Contains("mlp"));
  CHECK_THAT(table.out, Catch::Contains("empty"));
}

TEST_CASE("hpo trials lists every trial or those in one state") {
  Db db;
  CHECK(parse(run_hpo(db.dir, "trials " + db.db + " --format json")).size() == 9);
  auto failed = parse(run_hpo(db.dir, "trials " + db.db + " --format json --state failed"));
  REQUIRE(failed.size() == 1);
  CHECK(failed[0]["trial"] == 6);
  CHECK(failed[0]["error"] == "CUDA out of memory");
  auto running = parse(run_hpo(db.dir, "trials " + db.db + " --format json --state RUNNING"));
  REQUIRE(running.size() == 1);
  CHECK(running[0]["trial"] == 7);
}

TEST_CASE("hpo show prints the config, metrics by step, error and log tail") {
  Db db;
  auto r = run_hpo(db.dir, "show 6 " + db.db, "COLUMNS=200");
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("trial 6 of study mlp"));
  CHECK_THAT(r.out, Catch::Contains("FAILED"));
  CHECK_THAT(r.out, Catch::Contains("\"type\": \"sgd\""));
  CHECK_THAT(r.out, Catch::Contains("train_loss"));
  CHECK_THAT(r.out, Catch::Contains("CUDA out of memory"));
  CHECK_THAT(r.out, Catch::Contains("tb line 2"));
  auto shown = parse(run_hpo(db.dir, "show 6 " + db.db + " --format json"));
  CHECK(shown["trial"] == 6);
  CHECK(shown["state"] == "FAILED");
  REQUIRE(shown["metrics"].size() == 3);
  CHECK(shown["metrics"][2]["step"] == 3);
  CHECK(shown["metrics"][0]["train_loss"] == 1.0);
  CHECK(shown["log_tail"] == "tb line 1\ntb line 2");
  CHECK(shown["config"]["solver"]["lr"] == Approx(0.007));
}

TEST_CASE("hpo export writes the whole study with its metrics as JSON and CSV") {
  Db db;
  auto all = parse(run_hpo(db.dir, "export " + db.db));
  CHECK(all["study"]["name"] == "mlp");
  CHECK(all["study"]["spec"]["budget"]["max_trials"] == 20);
  REQUIRE(all["trials"].size() == 9);
  CHECK(all["trials"][3]["metrics"].size() == 3);
  CHECK(all["trials"][8]["metrics"].empty());
  CHECK(all["trials"][8]["started"].is_null());

  auto csv = run_hpo(db.dir, "export " + db.db + " --format csv");
  REQUIRE(csv.code == 0);
  auto rows = lines(csv.out);
  REQUIRE(rows.size() == 1 + 8 * 3 + 1);  // 8 trials x 3 steps, the queued one alone
  const auto header = csv_fields(rows[0]);
  const auto step = std::find(header.begin(), header.end(), "step") - header.begin();
  const auto loss = std::find(header.begin(), header.end(), "train_loss") - header.begin();
  REQUIRE(static_cast<std::size_t>(loss) < header.size());
  const auto first = csv_fields(rows[1]);
  REQUIRE(first.size() == header.size());
  CHECK(first[step] == "1");
  CHECK(first[loss] == "1.0");
}

TEST_CASE("the query commands read while a writer holds the database") {
  Db db;
  auto writer = open_writer(db.path);
  auto study = ok(writer.find_study("mlp"))->id;
  auto tx = ok(writer.begin());
  ok(writer.add_trial(study, 100, json::object(), "h", 1.0));
  auto r = parse(run_hpo(db.dir, "trials " + db.db + " --format json"));
  CHECK(r.size() == 9);  // the open transaction is not visible
  ok(tx.commit());
  CHECK(parse(run_hpo(db.dir, "trials " + db.db + " --format json")).size() == 10);
}

TEST_CASE("the query commands take the study's name as their first argument") {
  Db db;
  db.add_study("branin");  // two studies: without a name the commands would refuse
  CHECK(parse(run_hpo(db.dir, "leaderboard mlp " + db.db + " --format json")).size() == 6);
  CHECK(parse(run_hpo(db.dir, "leaderboard branin " + db.db + " --format json")).empty());
  CHECK(parse(run_hpo(db.dir, "trials mlp " + db.db + " --format json --state failed")).size() ==
        1);
  CHECK(parse(run_hpo(db.dir, "export mlp " + db.db))["study"]["name"] == "mlp");
  CHECK(parse(run_hpo(db.dir, "export branin " + db.db))["study"]["name"] == "branin");
  // hpo show [STUDY] TRIAL: the trial is always last.
  auto shown = parse(run_hpo(db.dir, "show mlp 6 " + db.db + " --format json"));
  CHECK(shown["study"] == "mlp");
  CHECK(shown["trial"] == 6);
  CHECK(parse(run_hpo(db.dir, "show mlp --trial 6 " + db.db + " --format json"))["trial"] == 6);
  auto unnamed = run_hpo(db.dir, "show 6 " + db.db);
  CHECK(unnamed.code == 2);
  CHECK_THAT(unnamed.err, Catch::Contains("mlp, branin"));
  // The name and --study may both be given when they agree.
  CHECK(run_hpo(db.dir, "leaderboard mlp --study mlp " + db.db).code == 0);
}

TEST_CASE("an argument a command does not take is refused with exit 2, never ignored") {
  Db db;
  struct Case {
    std::string args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"leaderboard mlp extra " + db.db, "unexpected argument 'extra'"},
      {"trials mlp extra " + db.db, "unexpected argument 'extra'"},
      {"export mlp extra " + db.db, "unexpected argument 'extra'"},
      {"show mlp 6 extra " + db.db, "unexpected argument 'extra'"},
      {"show mlp 6 --trial 6 " + db.db, "unexpected argument '6'"},
      {"show mlp " + db.db, "'mlp' is not a trial number"},
      {"studies extra " + db.db, "unexpected argument 'extra'"},
      {"leaderboard mlp --study branin " + db.db, "two studies named"},
      {"resume mlp extra " + db.db, "unexpected argument 'extra'"},
      {"run a.json b.json", "unexpected argument 'b.json'"},
  };
  for (const auto& c : cases) {
    auto r = run_hpo(db.dir, c.args);
    INFO("hpo " << c.args << "\n" << r.err);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::Contains(c.says));
    CHECK(r.out.empty());
  }
}
