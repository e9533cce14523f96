// `hpo dashboard` and `hpo report` in a real browser (issue 15): a real search into a real
// database, the real server, and headless Chromium (Debian's chromium; the test command
// installs it) loading every page. The page writes what it drew into <pre id="hpo-status">
// (dashboard/assets/app.js), which --dump-dom hands back after its scripts ran.
#include <sys/wait.h>

#include <regex>

#include "tests/e2e/harness.h"
#include "tests/support/skip.h"

namespace hpo::e2e {
namespace {

using nlohmann::json;

constexpr const char* kStudy = "dash e2e";  // a space in the name: it must survive every URL

// The page's status as the browser left it, and the browser's own log.
struct Browsed {
  json status;
  std::string log;
};

std::string unescape_html(std::string text) {
  const std::pair<const char*, const char*> entities[] = {
      {"&quot;", "\""}, {"&lt;", "<"}, {"&gt;", ">"}, {"&#39;", "'"}, {"&amp;", "&"}};
  for (const auto& [from, to] : entities) {
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + 1)) {
      text.replace(at, std::strlen(from), to);
    }
  }
  return text;
}

// Loads `url` in headless Chromium (a profile of its own under `dir`), lets its scripts run
// for 15 s of virtual time, and reads #hpo-status. `prefix` runs before chromium (unshare -n).
Browsed browse(const TempDir& dir, const std::string& url, const std::string& prefix = "") {
  const std::string profile = dir / "chromium-profile";
  const std::string err = dir / "chromium.log";
  const auto r = test::run_shell(prefix + " timeout 120 chromium --headless --no-sandbox " +
                                 "--disable-gpu --no-first-run --enable-logging=stderr --v=0 " +
                                 "--virtual-time-budget=15000 --user-data-dir='" + profile +
                                 "' --dump-dom '" + url + "' 2>'" + err + "'");
  INFO("chromium exit " << r.code << ", log:\n" << read_text(err));
  REQUIRE(r.code == 0);
  const std::regex pre(R"re(<pre id="hpo-status"[^>]*>([^<]*)</pre>)re");
  std::smatch m;
  REQUIRE(std::regex_search(r.out, m, pre));
  Browsed b{json::parse(unescape_html(m[1].str())), read_text(err)};
  INFO("status: " << b.status.dump());
  CHECK(b.status["ready"] == true);
  CHECK(b.status["errors"] == json::array());
  // Chromium logs every console message; an uncaught exception reads "Uncaught ...".
  CHECK(b.log.find("Uncaught") == std::string::npos);
  return b;
}

std::string encode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.') {
      out += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

// A search of 16 trials of the builtin learning curves (6 epochs each, median pruning) on two
// agents of two slots: completed and pruned trials, curves and a timeline of four slots.
void run_search(const TempDir& dir) {
  const json study = {
      {"name", kStudy},
      {"objective", {{"metric", "val_accuracy"}, {"direction", "maximize"}}},
      {"sampler", {{"type", "tpe"}, {"startup_trials", 6}}},
      {"pruner", {{"type", "median"}, {"warmup_steps", 1}, {"min_trials", 3}}},
      {"seed", 3},
      {"budget", {{"max_trials", 16}, {"max_parallel", 4}}},
      {"trial", {{"kind", "builtin"}, {"function", "curves"}, {"seconds", 0.02}, {"steps", 6}}},
      {"space",
       {{"lr", {{"type", "float"}, {"low", 1e-4}, {"high", 1e-1}, {"log", true}}},
        {"batch_size", {{"type", "choice"}, {"values", {32, 64, 128}}}},
        {"width", {{"type", "int"}, {"low", 16}, {"high", 512}}},
        {"dropout", {{"type", "float"}, {"low", 0.0}, {"high", 0.6}}}}}};
  write_text(dir / "study.json", study.dump(1));
  const auto r = run_hpo(dir, "run study.json --db hpo.db --agents 2 --cpu-slots 2");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
}

}  // namespace

TEST_CASE("every dashboard page loads in headless Chromium, and draws what hpo prints") {
  if (test::run_shell("command -v chromium").code != 0) {
    HPO_SKIP("chromium is not installed (the README's test command installs Debian's chromium)");
  }
  TempDir dir;
  run_search(dir);
  Process dashboard({"dashboard", "--db", dir / "hpo.db", "--bind", "127.0.0.1:0"},
                    fs::path(dir / "dashboard.log"));
  std::string base;
  REQUIRE(wait_until(
      [&] {
        std::smatch m;
        const std::string log = dashboard.output();
        static const std::regex address(R"(at (http://127\.0\.0\.1:[0-9]+/))");
        if (!std::regex_search(log, m, address)) return false;
        base = m[1].str();
        return true;
      },
      10s));
  const std::string study_url = base + "#/study/" + encode(kStudy);

  // What `hpo` prints, to compare the pages with.
  const auto board = run_hpo(dir, std::string("leaderboard --db hpo.db --format json --top 100 '") +
                                      kStudy + "'");
  REQUIRE(board.code == 0);
  json rows = json::parse(board.out);  // (not const: a missing key reads null, not UB)
  const auto trials = run_hpo(dir, "trials --db hpo.db --format json");
  REQUIRE(trials.code == 0);
  std::size_t completed = 0;
  for (const auto& t : json::parse(trials.out)) completed += t.value("state", "") == "COMPLETED";
  REQUIRE(completed >= 2);

  {  // the study page: the leaderboard's numbers are hpo leaderboard's, one history point per completed trial
    Browsed b = browse(dir, study_url);
    CHECK(b.status["view"] == "study");
    REQUIRE(b.status["leaderboard"].size() == rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      INFO("row " << i);
      CHECK(b.status["leaderboard"][i]["trial"] == rows[i]["trial"]);
      CHECK(b.status["leaderboard"][i]["score"] == rows[i]["val_accuracy"]);
    }
    // (A missing count reads -1: a failed chart fails the check, it does not crash the test.)
    auto drawn = [&](const char* pointer) {
      return b.status.value(json::json_pointer(std::string("/charts/") + pointer), -1);
    };
    CHECK(drawn("history/points") == static_cast<int>(completed));
    CHECK(drawn("parallel/lines") == static_cast<int>(completed));
    CHECK(drawn("timeline/bars") == 16);
    CHECK(drawn("curves/series") >= 2);
    CHECK(drawn("importance/bars") >= 1);
    CHECK(drawn("slice/points") == static_cast<int>(completed));
  }
  {  // the studies, trial and agents pages
    Browsed studies = browse(dir, base + "#/");
    CHECK(studies.status["view"] == "studies");
    Browsed trial =
        browse(dir, study_url + "/trial/" + std::to_string(rows[0]["trial"].get<int>()));
    CHECK(trial.status["view"] == "trial");
    Browsed agents = browse(dir, base + "#/agents");
    CHECK(agents.status["view"] == "agents");
    CHECK(agents.status.value("/counts/rows"_json_pointer, -1) == 2);  // two agents
  }
  {  // the report file renders with the network switched off
    const auto r = run_hpo(dir, std::string("report --db hpo.db -o report.html '") + kStudy + "'");
    INFO(r.err);
    REQUIRE(r.code == 0);
    dashboard.signal(SIGTERM);  // nothing serves the data any more
    // A network namespace of its own with no interface up: nothing but the file can load.
    std::string prefix = "unshare -n";
    if (test::run_shell("unshare -n true").code != 0) {
      WARN("unshare -n is not allowed here: the report is opened with every host unresolvable");
      prefix = "";
    }
    const std::string url = "file://" + (dir / "report.html");
    Browsed b = browse(dir, prefix.empty() ? url + "' --host-resolver-rules='MAP * ~NOTFOUND"
                                                 : url,
                             prefix);
    CHECK(b.status["report"] == true);
    CHECK(b.status["view"] == "study");
    CHECK(b.status.value("/charts/history/points"_json_pointer, -1) == static_cast<int>(completed));
    REQUIRE(b.status["leaderboard"].size() == rows.size());
    CHECK(b.status["leaderboard"][0]["score"] == rows[0]["val_accuracy"]);
  }
}

}  // namespace hpo::e2e
