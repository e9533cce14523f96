// dashboard/report.h: the self-contained HTML file of one study.
#include <catch2/catch.hpp>

#include "dashboard/report.h"
#include "dashboard/views.h"
#include "tests/dashboard/fixtures.h"

using namespace hpo;
using namespace hpo::dashboard;
using namespace hpo::dashboard::testing;
using nlohmann::json;

namespace {

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The JSON after "window.HPO_REPORT = " up to the ";\n</script>" that closes it.
json report_data(const std::string& html) {
  const std::string start = "window.HPO_REPORT = ";
  const auto from = html.find(start);
  REQUIRE(from != std::string::npos);
  const auto to = html.find(";\n</script>", from);
  REQUIRE(to != std::string::npos);
  std::string text = html.substr(from + start.size(), to - from - start.size());
  // script_safe's "<\/" is JSON's escaped "/" already; "<\!--" is not JSON, put it back.
  for (auto at = text.find("<\\!--"); at != std::string::npos; at = text.find("<\\!--", at)) {
    text.erase(at + 1, 1);
  }
  return json::parse(text);
}

}  // namespace

TEST_CASE("a report inlines the page, ECharts and the study's answers under the page's keys") {
  TempDir dir;
  auto store = open_writer(dir / "hpo.db");
  auto study = ok(store.create_study(spaced_study("a study")));
  ok(store.create_study(spaced_study("other")));
  for (int n = 0; n < 3; ++n) {
    run_trial(store, study, n, json{{"x", 0.1 * n}, {"y", 0.2}, {"opt", "sgd"}}, 0.1 * n, "a", n,
              n + 1);
  }
  // A log tail that would end the script early if it were not escaped.
  ok(store.finish_trial(ok(store.add_trial(study, 3, json{{"x", 1}}, "h3", 9)),
                        search::TrialState::kFailed, std::nullopt, "boom",
                        "</script><script>alert(1)</script><!--", 10));
  ReportOptions o;
  o.study = "a study";
  const std::string html = ok(build_report(store, o, 100.0));

  // Nothing is loaded from elsewhere: no script or style by address.
  CHECK(html.find("<script src=") == std::string::npos);
  CHECK(html.find("<link rel=\"stylesheet\"") == std::string::npos);
  // Three scripts (ECharts, the data, the page) and each closes once: the log tail's
  // "</script>" below was escaped (its "<script>" is harmless text once "<!--" is escaped too).
  CHECK(count(html, "</script>") == 3);
  CHECK(count(html, "window.HPO_REPORT = ") == 1);
  CHECK(html.find("echarts") != std::string::npos);

  const json data = report_data(html);
  CHECK(data["study"] == "a study");
  const json& answers = data["data"];
  for (const char* key : {"api/study?name=a%20study", "api/history?name=a%20study",
                          "api/leaderboard?name=a%20study", "api/parallel?name=a%20study",
                          "api/importance?name=a%20study", "api/curves?name=a%20study",
                          "api/curves?metric=val_loss&name=a%20study", "api/slice?name=a%20study",
                          "api/timeline?name=a%20study", "api/agents", "api/studies",
                          "api/trial?name=a%20study&number=3"}) {
    INFO(key);
    CHECK(answers.contains(key));
  }
  // The same answers the server gives, and only this study in the list.
  Params p = {{"name", "a study"}};
  CHECK(answers["api/history?name=a%20study"] == answer(store, "/api/history", p, 100.0).body);
  CHECK(answers["api/studies"]["studies"].size() == 1);
  CHECK(answers["api/trial?name=a%20study&number=3"]["log_tail"] ==
        "</script><script>alert(1)</script><!--");

  o.study = "nope";
  auto missing = build_report(store, o, 100.0);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("a study, other") != std::string::npos);
}

TEST_CASE("script_safe escapes what would end or comment out a script, and nothing else") {
  CHECK(script_safe("a</script>b") == "a<\\/script>b");
  CHECK(script_safe("x<!--y") == "x<\\!--y");
  CHECK(script_safe("1 < 2 && a<b") == "1 < 2 && a<b");
  CHECK(script_safe("<") == "<");
}
