// The dashboard's page and the chart library, embedded in the binary at build time (the page
// works with no network and nothing is loaded from elsewhere). The files are
// dashboard/assets/{index.html, app.js, app.css} and third_party/echarts/{echarts.min.js,
// LICENSE, NOTICE} (Apache ECharts 5.6.0 from its npm package; third_party/echarts/README.md).
#pragma once

#include <optional>
#include <string_view>

namespace hpo::dashboard {

struct Asset {
  std::string_view name;          // "index.html", "app.js", "echarts.min.js", "LICENSE-echarts"...
  std::string_view content_type;  // "text/html; charset=utf-8", ...
  std::string_view data;
};

// The asset called `name` (as above), nullopt if there is none.
std::optional<Asset> find_asset(std::string_view name);

}  // namespace hpo::dashboard
