#include "trainer/agent/metric_lines.h"

#include <cmath>

#include "base/json.h"

namespace hpo::agent {
namespace {

constexpr std::string_view kMarker = "HPO_METRIC";
constexpr std::size_t kShownChars = 200;  // of a malformed line, in its warning

JsonLimits record_limits() {
  JsonLimits limits;
  limits.max_bytes = kMaxRecordBytes;
  limits.max_depth = 128;
  return limits;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool is_native_metric(const nlohmann::json& j) {
  if (!j.is_object()) return false;
  for (const char* key : {"step", "epoch"}) {
    auto it = j.find(key);
    if (it != j.end() && it->is_number()) return true;
  }
  auto it = j.find("final");
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

MetricLine record_or_warning(std::string_view text, std::string_view where) {
  MetricLine out;
  auto record = parse_metric_record(text);
  if (!record) {
    out.kind = MetricLine::Kind::kMalformed;
    out.warning = "warning: malformed " + std::string(where) + " ignored (" +
                  record.error().message + "): " + std::string(trim(text).substr(0, kShownChars));
    return out;
  }
  out.kind = MetricLine::Kind::kRecord;
  out.record = std::move(*record);
  return out;
}

// Steps and epochs are integers that a double holds exactly: |v| <= 2^53.
constexpr double kMaxStep = 9007199254740992.0;

bool is_step_key(const std::string& key) {
  return key == "step" || key == "epoch" || key == "final";
}

std::optional<std::int64_t> step_of(const nlohmann::json& record) {
  // An epoch is comparable across trials (the pruner compares trials at equal
  // steps); a batch-step count is not when batch sizes differ.
  for (const char* key : {"epoch", "step"}) {
    auto it = record.find(key);
    if (it != record.end() && it->is_number()) {
      double v = it->get<double>();
      if (std::isfinite(v) && std::fabs(v) <= kMaxStep)
        return static_cast<std::int64_t>(std::floor(v));
    }
  }
  return std::nullopt;
}

protocol::Metrics numeric_fields(const nlohmann::json& record) {
  protocol::Metrics m;
  for (auto it = record.begin(); it != record.end(); ++it) {
    if (is_step_key(it.key()) || !it->is_number()) continue;
    double v = it->get<double>();
    if (std::isfinite(v)) m[it.key()] = v;
  }
  return m;
}

}  // namespace

Result<nlohmann::json> parse_metric_record(std::string_view text) {
  text = trim(text);
  if (text.empty()) return fail("empty metric record");
  auto parsed = parse_json(text, "", record_limits());
  if (!parsed) {
    // A syntax error keeps the short reason trial authors know; a size, depth or number limit
    // says which one.
    const std::string& why = parsed.error().message;
    if (why.find("invalid JSON") != std::string::npos) return fail("not valid JSON");
    return fail(why);
  }
  nlohmann::json j = std::move(*parsed);
  if (!j.is_object()) return fail("not a JSON object");
  for (const char* key : {"step", "epoch"}) {
    auto it = j.find(key);
    if (it != j.end() && !it->is_number())
      return fail(std::string("\"") + key + "\" is not a number");
    // Converting a larger one to an integer step would be undefined behaviour.
    if (it != j.end() && std::fabs(it->get<double>()) > kMaxStep)
      return fail(std::string("\"") + key + "\" is out of range (beyond 2^53)");
  }
  return j;
}

MetricLine read_metric_line(OutputStream stream, std::string_view line, bool bare_json_metrics) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::string_view text = trim(line);
  if (stream == OutputStream::kMetricsFd) {
    if (text.empty()) return {};
    if (text.starts_with(kMarker)) text.remove_prefix(kMarker.size());
    return record_or_warning(text, "metrics fd line");
  }
  if (text.starts_with(kMarker) && (text.size() == kMarker.size() || text[kMarker.size()] == ' ' ||
                                    text[kMarker.size()] == '\t')) {
    return record_or_warning(text.substr(kMarker.size()), "HPO_METRIC line");
  }
  if (stream == OutputStream::kStdout && bare_json_metrics && text.starts_with('{')) {
    // Plain output that happens to look like JSON stays plain output: no warning.
    auto j = parse_json(text, "", record_limits());
    if (j && is_native_metric(*j)) {
      MetricLine out;
      out.kind = MetricLine::Kind::kRecord;
      out.record = std::move(*j);
      return out;
    }
  }
  return {};
}

std::optional<MetricTally::Report> MetricTally::add(const nlohmann::json& record) {
  protocol::Metrics m = numeric_fields(record);
  if (m.empty()) return std::nullopt;
  any_ = true;
  // Only a boolean true marks the final record; "final": 1 or "yes" is an ordinary record
  // (json::value would throw on them, and an exception here would end the agent).
  auto final_it = record.find("final");
  if (final_it != record.end() && final_it->is_boolean() && final_it->get<bool>()) {
    for (const auto& [k, v] : m) final_line_[k] = v;
    return std::nullopt;
  }
  for (const auto& [k, v] : m) last_[k] = v;
  auto step = step_of(record);
  if (!step) return std::nullopt;
  return Report{*step, std::move(m)};
}

protocol::Metrics MetricTally::final_metrics() const {
  protocol::Metrics out = last_;
  for (const auto& [k, v] : final_line_) out[k] = v;
  return out;
}

}  // namespace hpo::agent
