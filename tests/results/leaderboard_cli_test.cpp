// `hpo leaderboard` run as the real binary on a database filled through the API:
// ranking, filters, formats, and the table's fit to the terminal.
#include <catch2/catch.hpp>
#include <sstream>

#include "tests/results/cli_fixture.h"

using namespace hpo::results;
using namespace hpo::results::testing;
using nlohmann::json;

TEST_CASE("hpo leaderboard ranks best first with flattened parameter columns") {
  Db db;
  auto rows = parse(run_hpo(db.dir, "leaderboard " + db.db + " --format json --top 3"));
  REQUIRE(rows.size() == 3);
  CHECK(rows[0]["rank"] == 1);
  CHECK(rows[0]["trial"] == 5);
  CHECK(rows[0]["val_accuracy"] == Approx(0.75));
  CHECK(rows[1]["trial"] == 4);
  CHECK(rows[0]["solver.optimizer.type"] == "adam");
  CHECK(rows[0]["net.dense[0].units"] == 192);
  CHECK(rows[0]["sizes[1]"] == 32);
  CHECK(rows[0]["state"] == "COMPLETED");
  CHECK(rows[0]["duration_s"] == Approx(65.0));
  CHECK(rows[0]["agent"] == "agent-1");
  // Columns keep their order: rank, trial, objective first.
  const auto out = run_hpo(db.dir, "leaderboard " + db.db + " --format json --top 1").out;
  CHECK(out.find("\"rank\"") < out.find("\"trial\""));
  CHECK(out.find("\"trial\"") < out.find("\"val_accuracy\""));
  CHECK(out.find("\"val_accuracy\"") < out.find("\"solver.lr\""));
  CHECK(out.find("\"solver.lr\"") < out.find("\"state\""));
}

TEST_CASE("hpo leaderboard honours --where, --metric and --direction") {
  Db db;
  auto adam = parse(run_hpo(
      db.dir, "leaderboard " + db.db + " --format json --where solver.optimizer.type=adam"));
  REQUIRE(adam.size() == 3);
  for (const auto& r : adam) CHECK(r["solver.optimizer.type"] == "adam");
  auto both = parse(run_hpo(db.dir, "leaderboard " + db.db +
                                        " --format json --where solver.optimizer.type=adam "
                                        "--where=net.dense[0].units=128"));
  REQUIRE(both.size() == 1);
  CHECK(both[0]["trial"] == 1);
  auto listed =
      parse(run_hpo(db.dir, "leaderboard " + db.db + " --format json --where 'sizes=[64,32]'"));
  CHECK(listed.size() == 6);
  auto worst =
      parse(run_hpo(db.dir, "leaderboard " + db.db + " --format json --direction minimize"));
  CHECK(worst[0]["trial"] == 0);
  auto loss = parse(run_hpo(db.dir, "leaderboard " + db.db +
                                        " --format json --metric train_loss --aggregate last "
                                        "--direction minimize --top 2"));
  REQUIRE(loss.size() == 2);
  CHECK(loss[0]["train_loss"] == Approx(1.0 / 3));
}

TEST_CASE("hpo leaderboard CSV has one header and equal fields in every row") {
  Db db;
  auto r = run_hpo(db.dir, "leaderboard " + db.db + " --format csv --top 0");
  REQUIRE(r.code == 0);
  auto rows = lines(r.out);
  REQUIRE(rows.size() == 7);  // header + 6 completed
  const auto header = csv_fields(rows[0]);
  CHECK(header[0] == "rank");
  CHECK(header[2] == "val_accuracy");
  for (std::size_t i = 1; i < rows.size(); ++i) {
    const auto fields = csv_fields(rows[i]);
    REQUIRE(fields.size() == header.size());
    CHECK(std::find(fields.begin(), fields.end(), "a, \"quoted\" value") != fields.end());
  }
  CHECK(csv_fields(rows[1])[1] == "5");
}

TEST_CASE("hpo leaderboard's table fits the terminal width and says what it hid") {
  Db db;
  auto r = run_hpo(db.dir, "leaderboard " + db.db, "COLUMNS=60");
  REQUIRE(r.code == 0);
  auto text = lines(r.out);
  REQUIRE(text.size() >= 8);
  for (const auto& line : text) CHECK(line.size() <= 60);
  CHECK_THAT(r.out, Catch::Contains("hidden"));
  CHECK_THAT(text[1], Catch::StartsWith("rank  trial  val_accuracy"));
  auto wide = run_hpo(db.dir, "leaderboard " + db.db, "COLUMNS=400");
  CHECK_THAT(wide.out, Catch::Contains("  optimizer.type  "));  // a short header in tables
  CHECK_THAT(wide.out, !Catch::Contains("hidden"));
}

TEST_CASE("hpo leaderboard's table hides what is the same in every row and --wide shows it") {
  Db db;
  auto r = run_hpo(db.dir, "leaderboard " + db.db, "COLUMNS=400");
  REQUIRE(r.code == 0);
  auto text = lines(r.out);
  REQUIRE(text.size() == 1 + 1 + 6 + 1);  // title, header, 6 ranked, note
  CHECK_THAT(text[1], Catch::StartsWith("rank  trial  val_accuracy"));
  CHECK_THAT(text[1], !Catch::Contains("solver.note"));
  CHECK_THAT(text[1], !Catch::Contains("state"));
  CHECK_THAT(text[1], Catch::Contains("optimizer.type"));  // it varies: shown
  CHECK_THAT(text.back(), Catch::StartsWith("same in every row: "));
  CHECK_THAT(text.back(), Catch::Contains("solver.note=a, \"quoted\" value"));
  CHECK_THAT(text.back(), Catch::Contains("state=COMPLETED"));
  CHECK_THAT(text.back(), Catch::EndsWith("(--wide shows all)"));

  auto wide = run_hpo(db.dir, "leaderboard --wide " + db.db, "COLUMNS=40");
  REQUIRE(wide.code == 0);
  auto all = lines(wide.out);
  REQUIRE(all.size() == 1 + 1 + 6);  // no note: nothing hidden
  CHECK_THAT(all[1], Catch::Contains("solver.note"));
  CHECK_THAT(all[1], Catch::Contains("state"));
  CHECK(all[1].size() > 40);
  // csv and json keep every column whatever the terminal.
  auto json_rows = parse(run_hpo(db.dir, "leaderboard " + db.db + " --format json", "COLUMNS=40"));
  CHECK(json_rows[0]["solver.note"] == "a, \"quoted\" value");
  CHECK(json_rows[0]["state"] == "COMPLETED");
}

TEST_CASE("a table is 120 columns wide when neither $COLUMNS nor a terminal says otherwise") {
  TempDir dir;
  const auto path = dir / "hpo.db";
  {
    auto store = open_writer(path);
    auto study = ok(store.create_study(study_row("wide")));
    for (int n = 0; n < 4; ++n) {
      json config;
      for (int p = 0; p < 12; ++p) config["parameter_" + std::to_string(p)] = n * 100 + p;
      completed_trial(store, study, n, config, 0.1 * n);
    }
  }
  auto wide = run_hpo(dir, "leaderboard --wide --db " + path, "env -u COLUMNS");
  REQUIRE(wide.code == 0);
  REQUIRE(lines(wide.out).size() >= 2);
  CHECK(lines(wide.out)[1].size() > 120);  // more than fits
  auto r = run_hpo(dir, "leaderboard --db " + path, "env -u COLUMNS");
  REQUIRE(r.code == 0);
  for (const auto& line : lines(r.out)) CHECK(line.size() <= 120);
  CHECK_THAT(r.out, Catch::Contains("hidden to fit 120 columns: "));
}

TEST_CASE("hpo leaderboard shows test_accuracy where a trial reported it") {
  TempDir dir;
  const auto path = dir / "hpo.db";
  {
    auto store = open_writer(path);
    auto study = ok(store.create_study(study_row("cnn")));
    for (int n = 0; n < 3; ++n) {
      auto id = completed_trial(store, study, n, json{{"lr", 0.1 * (n + 1)}}, 0.8 + 0.05 * n);
      // The final line's test_accuracy lands at the last step (2) beside val_accuracy;
      // trial 1 never reported one.
      if (n != 1) ok(store.record_metric(id, 2, "test_accuracy", 0.7 + 0.05 * n, 40.0));
    }
  }
  auto rows = parse(run_hpo(dir, "leaderboard --db " + path + " --format json"));
  REQUIRE(rows.size() == 3);
  CHECK(rows[0]["trial"] == 2);
  CHECK(rows[0]["test_accuracy"] == Approx(0.8));
  CHECK_FALSE(rows[1].contains("test_accuracy"));
  CHECK(rows[2]["test_accuracy"] == Approx(0.7));
  auto table = run_hpo(dir, "leaderboard --db " + path, "COLUMNS=400");
  REQUIRE(table.code == 0);
  auto text = lines(table.out);
  REQUIRE(text.size() >= 2);
  CHECK_THAT(text[1], Catch::StartsWith("rank  trial  val_accuracy  test_accuracy"));
  REQUIRE(text.size() >= 3);
  std::stringstream first(text[2]);
  std::string rank, trial, val, test;
  first >> rank >> trial >> val >> test;
  CHECK(trial == "2");
  CHECK(val == "0.9");
  CHECK(test == "0.8");
  // A study without it has no such column.
  Db other;
  auto plain = run_hpo(other.dir, "leaderboard " + other.db, "COLUMNS=400");
  CHECK_THAT(plain.out, !Catch::Contains("test_accuracy"));
}
