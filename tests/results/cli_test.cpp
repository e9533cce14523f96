// The query commands run as the real binary on a database filled through the API.
#include <sys/wait.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fixtures.h"

using namespace hpo::results;
using namespace hpo::results::testing;
using nlohmann::json;

namespace {

struct Run {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs `hpo ARGS` with `env` (e.g. "COLUMNS=60") and captures both streams.
Run run_hpo(const TempDir& dir, const std::string& args, const std::string& env = "") {
  const std::string err_file = dir.file("stderr.txt");
  const std::string cmd = env + " " + HPO_BINARY + " " + args + " 2>" + err_file;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  Run r;
  std::array<char, 4096> buf{};
  while (std::size_t n = fread(buf.data(), 1, buf.size(), p)) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_file);
  std::stringstream ss;
  ss << in.rdbuf();
  r.err = ss.str();
  return r;
}

json parse(const Run& r) {
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  return json::parse(r.out);
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) out.push_back(line);
  return out;
}

// Splits one CSV record (quotes honoured).
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        out.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

// A database with study "mlp" (maximize val_accuracy): trials 0..5 completed
// with value 0.5 + 0.05 * n, trial 6 failed, trial 7 running, trial 8 queued.
struct Db {
  TempDir dir;
  std::string path = dir.file("hpo.db");
  std::string db = "--db " + path;

  Db() {
    auto store = open_writer(path);
    auto study = ok(store.create_study(study_row("mlp")));
    for (int n = 0; n < 9; ++n) {
      json config = {{"solver",
                      {{"lr", 0.001 * (n + 1)},
                       {"optimizer", {{"type", n % 2 ? "adam" : "sgd"}}},
                       {"note", "a, \"quoted\" value"}}},
                     {"net", {{"dense", json::array({{{"units", 64 * (n % 3 + 1)}}})}}},
                     {"sizes", json::array({64, 32})}};
      auto id = ok(store.add_trial(study, n, config, "h", 100.0 + n));
      if (n == 8) continue;
      ok(store.start_trial(id, 1, "L", "agent-" + std::to_string(n % 2), 200.0));
      for (int step = 1; step <= 3; ++step) {
        ok(store.record_metric(id, step, "val_accuracy", 0.5 + 0.05 * n - 0.1 / step, 201.0));
        ok(store.record_metric(id, step, "train_loss", 1.0 / step, 201.0));
      }
      if (n == 7) continue;
      if (n == 6) {
        ok(store.finish_trial(id, TrialState::kFailed, {}, "CUDA out of memory",
                              "tb line 1\ntb line 2", 230.0));
        continue;
      }
      ok(store.finish_trial(id, TrialState::kCompleted, 0.5 + 0.05 * n, "", "done", 265.0));
    }
  }
  void add_study(const std::string& name) {
    auto store = open_writer(path);
    ok(store.create_study(study_row(name, Direction::kMinimize, "loss")));
  }
};

}  // namespace

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
  const auto path = dir.file("missing.db");
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
  const auto path = dir.file("notes.db");
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
  const auto path = dir.file("hpo.db");
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
  const auto path = dir.file("hpo.db");
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
