// `hpo report`: one study's dashboard as a single self-contained HTML file (the page, the chart
// library and the API answers it draws, all inline), to open offline or attach to an email.
//
// Contract
// - The file loads nothing from anywhere: no network, no other file.
// - It holds the answers (views.h) the page asks for on the study's page with its default
//   choices, the curves of every metric, and the trial pages of the `trials` best trials; a
//   choice whose answer is not in the file says so in its panel.
// - Read-only over the store, like the dashboard.
#pragma once

#include <cstddef>
#include <string>

#include "base/error.h"
#include "results/store.h"

namespace hpo::dashboard {

struct ReportOptions {
  std::string study;         // required
  std::size_t trials = 50;   // trial pages included: the best this many (and every trial when
                             // the study has at most 200)
};

// The HTML text. Errors: no such study (naming the known ones), database errors.
Result<std::string> build_report(results::Store& store, const ReportOptions& options, double now);

// `text` made safe inside <script>...</script>: every "</" becomes "<\/" (the same string in a
// JavaScript string, regular expression or JSON text) and "<!--" becomes "<\!--" (in a JavaScript
// string: the same text).
std::string script_safe(std::string_view text);

}  // namespace hpo::dashboard
