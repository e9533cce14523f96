// Fuzzes what the agent does with one line of a trial's output (trainer/agent/metric_lines.h):
// the first byte picks the stream (stdout, stderr, metrics fd) and whether bare JSON lines are
// metrics; every record goes through a MetricTally, as the agent's reports do.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "trainer/agent/metric_lines.h"

using namespace hpo::agent;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const OutputStream stream = data[0] % 3 == 0   ? OutputStream::kStdout
                              : data[0] % 3 == 1 ? OutputStream::kStderr
                                                 : OutputStream::kMetricsFd;
  const bool bare_json = (data[0] & 4) != 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  MetricTally tally;
  // Several lines in one input: a tally sees a trial's records in order.
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    MetricLine m = read_metric_line(stream, line, bare_json);
    if (m.kind == MetricLine::Kind::kRecord) (void)tally.add(m.record);
    (void)parse_metric_record(line);
  }
  (void)tally.final_metrics();
  return 0;
}
