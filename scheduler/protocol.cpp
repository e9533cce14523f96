#include "scheduler/protocol.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>
#include <utility>

#include "base/json.h"
#include "scheduler/protocol_reader.h"

namespace hpo::scheduler::protocol {
namespace {

using nlohmann::json;
using detail::Reader;

constexpr std::array<std::pair<Outcome, std::string_view>, 5> kOutcomeNames{{
    {Outcome::kOk, "ok"},
    {Outcome::kFailed, "failed"},
    {Outcome::kPruned, "pruned"},
    {Outcome::kInterrupted, "interrupted"},
    {Outcome::kPaused, "paused"},
}};

json metrics_json(const Metrics& metrics) {
  json out = json::object();
  // JSON has no NaN/Inf: a non-finite value would turn into null and make the
  // whole message undecodable, so it is left out instead.
  for (const auto& [name, value] : metrics) {
    if (std::isfinite(value)) out[name] = value;
  }
  return out;
}

struct Encoder {
  json operator()(const Hello& m) const {
    json running = json::array();
    for (const auto& t : m.running) {
      running.push_back({{"study", t.study},
                         {"trial", t.trial},
                         {"attempt", t.attempt},
                         {"lease", t.lease},
                         {"finished", t.finished}});
    }
    return {{"agent", m.agent}, {"host", m.host}, {"slots", m.slots},
            {"gpus", m.gpus},   {"pid", m.pid},   {"running", std::move(running)}};
  }
  json operator()(const Welcome& m) const {
    json out = {{"scheduler", m.scheduler},
            {"heartbeat_ms", m.heartbeat_ms},
            {"liveness", m.liveness},
            {"adopted", m.adopted},
            {"stop", m.stop}};
    if (m.checkpoints) {
      out["checkpoints"] = {{"dir", m.checkpoints->dir}, {"token", m.checkpoints->token}};
    }
    return out;
  }
  json operator()(const Ready& m) const {
    return {{"free_slots", m.free_slots}, {"draining", m.draining}};
  }
  json operator()(const Assign& m) const {
    json out = {{"study", m.study}, {"trial", m.trial},   {"attempt", m.attempt},
                {"lease", m.lease}, {"config", m.config}, {"spec", m.spec}};
    if (m.resume) out["resume"] = detail::checkpoint_json(*m.resume);
    if (m.pausable) out["pausable"] = true;
    return out;
  }
  json operator()(const Report& m) const {
    return {{"study", m.study}, {"trial", m.trial}, {"attempt", m.attempt},
            {"lease", m.lease}, {"step", m.step},   {"metrics", metrics_json(m.metrics)}};
  }
  json operator()(const Decision& m) const {
    return {{"trial", m.trial},
            {"attempt", m.attempt},
            {"lease", m.lease},
            {"decision", m.stop ? "STOP" : m.pause ? "PAUSE" : "CONTINUE"}};
  }
  json operator()(const Finish& m) const {
    json out = {{"study", m.study},
                {"trial", m.trial},
                {"attempt", m.attempt},
                {"lease", m.lease},
                {"outcome", to_string(m.outcome)},
                {"metrics", metrics_json(m.metrics)},
                {"error", m.error},
                {"log_tail", m.log_tail}};
    // Optional: sent only when true, so a FINISH of a trial that ran is what it always was.
    if (m.start_failed) out["start_failed"] = true;
    if (m.refused) out["refused"] = true;
    if (m.checkpoint) out["checkpoint"] = detail::checkpoint_json(*m.checkpoint);
    return out;
  }
  json operator()(const Ack& m) const {
    return {{"trial", m.trial}, {"attempt", m.attempt}, {"lease", m.lease}};
  }
  json operator()(const Heartbeat&) const { return json::object(); }
  json operator()(const Bye&) const { return json::object(); }
  json operator()(const Submit& m) const { return {{"study", m.study}}; }
  json operator()(const Ok& m) const { return m.body.is_object() ? m.body : json::object(); }
  json operator()(const Put& m) const { return detail::encode_body(m); }
  json operator()(const PutAck& m) const { return detail::encode_body(m); }
  json operator()(const Get& m) const { return detail::encode_body(m); }
  json operator()(const Chunk& m) const { return detail::encode_body(m); }
  json operator()(const ErrorReply& m) const {
    json body = {{"message", m.message}, {"hello_required", m.hello_required}};
    if (m.fatal) body["fatal"] = true;
    return body;
  }
};

Result<Message> decode_body(std::string_view type, const json& body) {
  Reader r(type, body);
  Message out;
  if (type == "HELLO") {
    Hello m;
    m.agent = r.name("agent");
    m.host = r.name("host", false);
    m.slots = static_cast<int>(r.integer("slots", true, 0, kMaxSlots));
    m.gpus = r.any("gpus", false);
    if (m.gpus.is_null()) m.gpus = json::array();
    m.pid = r.integer("pid", false);
    m.running = r.running("running");
    if (auto e = r.error()) return std::unexpected(*e);
    // What an agent found on its machine, kept in the store's agents row: bounded so that a
    // flood of HELLOs cannot fill the file.
    if (!m.gpus.is_array()) return fail("HELLO: field 'gpus': not an array");
    if (m.gpus.size() > kMaxGpus) {
      return fail("HELLO: field 'gpus': more than " + std::to_string(kMaxGpus) + " entries (" +
                  std::to_string(m.gpus.size()) + ")");
    }
    if (const auto bytes = m.gpus.dump(-1, ' ', false, json::error_handler_t::replace).size();
        bytes > kMaxGpusBytes) {
      return fail("HELLO: field 'gpus': over " + std::to_string(kMaxGpusBytes) + " bytes (" +
                  std::to_string(bytes) + ")");
    }
    out = std::move(m);
  } else if (type == "WELCOME") {
    Welcome m;
    m.scheduler = r.string("scheduler");
    m.heartbeat_ms = static_cast<int>(r.integer("heartbeat_ms", true, 1, 86'400'000));
    m.liveness = static_cast<int>(r.integer("liveness", true, 1, 1000));
    m.adopted = r.strings("adopted", false);
    m.stop = r.strings("stop", false);
    m.checkpoints = r.shared_checkpoints("checkpoints");
    out = std::move(m);
  } else if (type == "READY") {
    Ready m;
    m.free_slots = static_cast<int>(r.integer("free_slots", true, 0, kMaxSlots));
    m.draining = r.boolean("draining", false);
    out = m;
  } else if (type == "ASSIGN") {
    Assign m;
    m.study = r.string("study");
    m.trial = r.integer("trial");
    m.attempt = r.integer("attempt");
    m.lease = r.name("lease");
    m.config = r.any("config");
    m.spec = r.object("spec");
    m.resume = r.checkpoint("resume");
    m.pausable = r.boolean("pausable", false);
    out = std::move(m);
  } else if (type == "REPORT") {
    Report m;
    m.study = r.string("study");
    m.trial = r.integer("trial");
    m.attempt = r.integer("attempt");
    m.lease = r.name("lease");
    m.step = r.integer("step");
    m.metrics = r.metrics("metrics");
    out = std::move(m);
  } else if (type == "DECISION") {
    Decision m;
    m.trial = r.integer("trial");
    m.attempt = r.integer("attempt");
    m.lease = r.name("lease");
    std::string d = r.string("decision");
    if (!r.error() && d != "STOP" && d != "PAUSE" && d != "CONTINUE") {
      return fail("DECISION: field 'decision': must be STOP, PAUSE or CONTINUE (got '" +
                  shown_frame(d) + "')");
    }
    m.stop = d == "STOP";
    m.pause = d == "PAUSE";
    out = std::move(m);
  } else if (type == "FINISH") {
    Finish m;
    m.study = r.string("study");
    m.trial = r.integer("trial");
    m.attempt = r.integer("attempt");
    m.lease = r.name("lease");
    std::string outcome = r.string("outcome");
    m.metrics = r.metrics("metrics", false);
    m.error = r.string("error", false);
    m.log_tail = r.string("log_tail", false);
    m.start_failed = r.boolean("start_failed", false);
    m.refused = r.boolean("refused", false);
    m.checkpoint = r.checkpoint("checkpoint");
    if (!r.error()) {
      auto o = outcome_from_string(outcome);
      if (!o) {
        return fail(
            "FINISH: field 'outcome': must be ok, failed, pruned, interrupted or paused (got '" +
            shown_frame(outcome) + "')");
      }
      m.outcome = *o;
    }
    out = std::move(m);
  } else if (type == "ACK") {
    Ack m;
    m.trial = r.integer("trial");
    m.attempt = r.integer("attempt");
    m.lease = r.name("lease");
    out = std::move(m);
  } else if (type == "HEARTBEAT") {
    out = Heartbeat{};
  } else if (type == "BYE") {
    out = Bye{};
  } else if (type == "SUBMIT") {
    out = Submit{r.object("study")};
  } else if (type == "OK") {
    out = Ok{body};
  } else if (type == "ERROR") {
    ErrorReply m;
    m.message = r.string("message");
    m.hello_required = r.boolean("hello_required", false);
    m.fatal = r.boolean("fatal", false);
    out = std::move(m);
  } else if (auto t = detail::decode_transfer(type, body)) {
    return std::move(*t);
  } else {
    return fail("unknown message type '" + shown_frame(type) + "'");
  }
  if (auto e = r.error()) return std::unexpected(*e);
  return out;
}

}  // namespace

std::string_view to_string(Outcome outcome) {
  for (const auto& [o, name] : kOutcomeNames) {
    if (o == outcome) return name;
  }
  return "failed";
}

std::optional<Outcome> outcome_from_string(std::string_view name) {
  for (const auto& [o, n] : kOutcomeNames) {
    if (n == name) return o;
  }
  return std::nullopt;
}

// A frame as it may appear in a log line or an ERROR: at most 32 bytes, and anything but
// printable ASCII as '?' (a hostile peer's bytes must not reach a terminal as they are).
std::string shown_frame(std::string_view frame) {
  std::string out(frame.substr(0, 32));
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  if (frame.size() > 32) out += "...";
  return out;
}

std::string_view type_name(const Message& message) {
  static constexpr std::array<std::string_view, std::variant_size_v<Message>> kNames{
      "HELLO", "WELCOME",   "READY", "ASSIGN", "REPORT", "DECISION", "FINISH", "ACK",
      "HEARTBEAT", "BYE",   "SUBMIT", "OK",     "ERROR",  "PUT",      "PUT_ACK", "GET", "CHUNK"};
  return kNames[message.index()];
}

Frames encode(const Message& message) {
  json body = std::visit(Encoder{}, message);
  // error_handler_t::replace: a config with invalid UTF-8 must not throw here.
  return Frames{std::string(kVersion), std::string(type_name(message)),
                body.dump(-1, ' ', false, json::error_handler_t::replace)};
}

Result<Message> decode(std::span<const std::string_view> frames) {
  if (frames.size() != kFrameCount) {
    std::string shown_type = frames.size() >= 2 ? shown_frame(frames[1]) + ": " : "";
    return fail(shown_type + "bad message: expected 3 frames (version, type, body), got " +
                std::to_string(frames.size()));
  }
  std::string_view type = frames[1];
  std::string shown_type = shown_frame(type);
  if (frames[0] != kVersion) {
    return fail(shown_type + ": unknown protocol version '" + shown_frame(frames[0]) +
                "' (this build speaks " + std::string(kVersion) + ")");
  }
  if (frames[2].size() > kMaxBodyBytes) {
    return fail(shown_type + ": body of " + std::to_string(frames[2].size()) +
                " bytes is over the limit of " + std::to_string(kMaxBodyBytes));
  }
  // The bounded reader: a body nested past 128 levels or holding a number that overflows a
  // double is refused here, before any code walks it (base/json.h).
  JsonLimits limits;
  limits.max_bytes = kMaxBodyBytes;
  auto parsed = parse_json(frames[2], "body", limits);
  if (!parsed)
    return fail(shown_type + ": body is not valid JSON (" + parsed.error().message + ")");
  json body = std::move(*parsed);
  if (!body.is_object()) return fail(shown_type + ": body is not a JSON object");
  return decode_body(type, body);
}

}  // namespace hpo::scheduler::protocol
