// The metric-line protocol between a trial and its agent (README "What a trial runs",
// experiments/command-trial/README.md): which lines of a trial's output are metric records,
// and what the records add up to for the scheduler. No I/O: child_process.h feeds it lines,
// process_runner.h turns its results into REPORT and FINISH messages.
//
// Metric lines:
//   1. a stdout or stderr line `HPO_METRIC {json object}`: a metric record, for every trial kind.
//   2. any line written to the pipe whose number is in $HPO_METRICS_FD: a metric record (a JSON
//      object; the `HPO_METRIC ` marker is allowed there too).
//   3. with `bare_json_metrics` (native trials: `hpo train` prints pure JSON lines), a stdout
//      line that is a JSON object with a numeric "step" or "epoch", or with "final": true.
// A record is a JSON object; its numeric fields are metrics, "step"/"epoch" give the step and
// "final": true marks the last one. A marker or fd line that is not such an object (or is over
// kMaxRecordBytes, or nested deeper than 128 levels) is malformed: the caller logs the warning
// and the trial goes on. Any other line is plain output.
//
// What records mean (MetricTally):
//   - a record with a numeric "epoch" (or else "step") is a REPORT at that step with every
//     other finite numeric field as a metric (the scheduler picks the study's objective among
//     them for the pruner); epochs win because they are comparable across trials with
//     different batch sizes, batch steps are not;
//   - every record updates the trial's final metrics: the latest value of each name wins, and
//     the record with "final": true is applied last and wins over all.
//
// Threading: plain functions and values; a MetricTally belongs to one trial's owner.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"
#include "scheduler/protocol.h"

namespace hpo::agent {

namespace protocol = hpo::scheduler::protocol;

// A metric record larger than this is malformed (a line is cut by the reader well before it
// could hold a longer one).
inline constexpr std::size_t kMaxRecordBytes = 1 << 20;

// Where a line of a trial's output came from.
enum class OutputStream { kStdout, kStderr, kMetricsFd };

// What one line of output is.
struct MetricLine {
  enum class Kind {
    kText,       // plain output (only logged)
    kRecord,     // a metric record: `record`
    kMalformed,  // a marker or fd line that is not a record: `warning` says why
  };
  Kind kind = Kind::kText;
  nlohmann::json record;  // kRecord: the JSON object
  std::string warning;    // kMalformed: "warning: malformed HPO_METRIC line ignored (why): text"
};

// Classifies one line (without its newline; a trailing '\r' is ignored) by rules 1-3 above.
MetricLine read_metric_line(OutputStream stream, std::string_view line, bool bare_json_metrics);

// Parses one metric record (the text after the marker, or a metrics-fd line) with the bounded
// JSON reader (base/json.h). Returns the object, or an error saying why it is malformed ("not
// valid JSON", "not a JSON object", "\"step\" is not a number", "\"step\" is out of range"
// beyond 2^53, a size or depth limit).
Result<nlohmann::json> parse_metric_record(std::string_view text);

// One trial's records, in arrival order, turned into reports and final metrics.
class MetricTally {
 public:
  struct Report {
    std::int64_t step = 0;
    protocol::Metrics metrics;
  };

  // Takes one record. Returns the REPORT it makes: none for a "final" record, one without a
  // numeric step, or one with no finite numeric metric.
  std::optional<Report> add(const nlohmann::json& record);

  // True once a record held at least one finite numeric metric.
  bool any() const { return any_; }

  // The latest value of each metric, with the "final" record's values over them.
  protocol::Metrics final_metrics() const;

 private:
  protocol::Metrics last_;        // latest value of every metric
  protocol::Metrics final_line_;  // the "final": true record(s)
  bool any_ = false;
};

}  // namespace hpo::agent
