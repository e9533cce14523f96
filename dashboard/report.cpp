// The self-contained report (report.h): the dashboard's page with its files inlined and the
// answers stored under the keys the page asks for (views.h canonical_key, app.js canonicalKey).
#include "dashboard/report.h"

#include <chrono>
#include <ctime>

#include "dashboard/assets.h"
#include "dashboard/views.h"

namespace hpo::dashboard {
namespace {

// index.html's three tags the report replaces with inline copies of what they load.
constexpr std::string_view kCssTag = "<link rel=\"stylesheet\" href=\"app.css\">";
constexpr std::string_view kEchartsTag = "<script src=\"echarts.min.js\"></script>";
constexpr std::string_view kAppTag = "<script src=\"app.js\"></script>";

Result<std::string> replace_once(std::string page, std::string_view tag, const std::string& with) {
  const auto at = page.find(tag);
  if (at == std::string::npos) {
    return fail(ErrorCode::kInternal,
                "the embedded index.html lacks '" + std::string(tag) + "' (a build error)");
  }
  page.replace(at, tag.size(), with);
  return page;
}

std::string iso_time(double epoch) {
  const std::time_t t = static_cast<std::time_t>(epoch);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

}  // namespace

std::string script_safe(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 64);
  for (std::size_t i = 0; i < text.size(); ++i) {
    out += text[i];
    if (text[i] == '<' && (text.substr(i + 1, 1) == "/" || text.substr(i + 1, 3) == "!--")) {
      out += '\\';
    }
  }
  return out;
}

Result<std::string> build_report(results::Store& store, const ReportOptions& options,
                                 double now) {
  nlohmann::json data = nlohmann::json::object();
  auto ask = [&](std::string_view path, Params params) -> nlohmann::json& {
    Answer a = answer(store, path, params, now);
    auto& slot = data[canonical_key(path, params)];
    slot = std::move(a.body);
    return slot;
  };
  const Params study = {{"name", options.study}};
  const nlohmann::json summary = ask("/api/study", study);
  if (summary.contains("error")) return fail(summary["error"].get<std::string>());

  // The studies list holds this study only: a report is about one.
  nlohmann::json& list = ask("/api/studies", {});
  if (list.contains("studies")) {
    nlohmann::json kept = nlohmann::json::array();
    for (auto& s : list["studies"]) {
      if (s.value("name", "") == options.study) kept.push_back(s);
    }
    list["studies"] = std::move(kept);
  }
  for (const char* path : {"/api/history", "/api/parallel", "/api/importance", "/api/curves",
                           "/api/slice", "/api/timeline"}) {
    ask(path, study);
  }
  const nlohmann::json& curves = data[canonical_key("/api/curves", study)];
  for (const auto& m : curves.value("metrics", nlohmann::json::array())) {
    if (!m.is_string() || m == curves.value("metric", "")) continue;
    ask("/api/curves", {{"metric", m.get<std::string>()}, {"name", options.study}});
  }
  ask("/api/agents", {});
  // The leaderboard as the page first asks for it, every ranked trial (the report's sorting and
  // filtering work on these rows), and the trial pages.
  ask("/api/leaderboard", study);
  const nlohmann::json& all =
      ask("/api/leaderboard", {{"name", options.study}, {"top", "0"}});
  const std::int64_t total = summary.value("total", std::int64_t{0});
  std::vector<std::int64_t> numbers;
  if (total <= 200) {
    for (std::int64_t n = 0; n < total; ++n) numbers.push_back(n);
  } else {
    for (const auto& row : all.value("rows", nlohmann::json::array())) {
      if (numbers.size() >= options.trials) break;
      numbers.push_back(row.value("trial", std::int64_t{-1}));
    }
  }
  for (std::int64_t n : numbers) {
    if (n >= 0) ask("/api/trial", {{"name", options.study}, {"number", std::to_string(n)}});
  }

  const nlohmann::json report = {
      {"study", options.study}, {"generated", iso_time(now)}, {"data", std::move(data)}};
  auto page_asset = find_asset("index.html");
  auto css = find_asset("app.css");
  auto echarts = find_asset("echarts.min.js");
  auto app = find_asset("app.js");
  if (!page_asset || !css || !echarts || !app) {
    return fail(ErrorCode::kInternal, "an embedded dashboard file is missing (a build error)");
  }
  std::string page(page_asset->data);
  auto with_css = replace_once(std::move(page), kCssTag,
                               "<style>\n" + script_safe(css->data) + "\n</style>");
  if (!with_css) return with_css;
  auto with_echarts = replace_once(std::move(*with_css), kEchartsTag,
                                   "<script>\n" + script_safe(echarts->data) + "\n</script>");
  if (!with_echarts) return with_echarts;
  const std::string json =
      report.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return replace_once(std::move(*with_echarts), kAppTag,
                      "<script>\nwindow.HPO_REPORT = " + script_safe(json) +
                          ";\n</script>\n<script>\n" + script_safe(app->data) + "\n</script>");
}

}  // namespace hpo::dashboard
