// The protocol's body reader (protocol.cpp, protocol_transfer.cpp): typed fields out of a
// JSON body, the first error remembered and named as "TYPE: field 'name': what". Internal to
// scheduler/protocol*.cpp.
#pragma once

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/base64.h"
#include "base/sha256.h"
#include "scheduler/protocol.h"

namespace hpo::scheduler::protocol::detail {

using nlohmann::json;

// Reads typed fields out of a message body, remembering the first error.
class Reader {
 public:
  Reader(std::string_view type, const json& body) : type_(type), body_(body) {}

  std::string string(const char* field, bool required = true) {
    const json* v = find(field, required);
    if (!v) return {};
    if (!v->is_string()) return bad(field, "not a string"), std::string();
    return v->get<std::string>();
  }
  // A name-like string: not empty, at most kMaxNameBytes.
  std::string name(const char* field, bool required = true) {
    std::string out = string(field, required);
    if (error_ || (!required && out.empty())) return out;
    if (out.empty()) return bad(field, "empty"), out;
    if (out.size() > kMaxNameBytes) {
      bad(field, "longer than " + std::to_string(kMaxNameBytes) + " bytes (" +
                     std::to_string(out.size()) + ")");
      out.clear();
    }
    return out;
  }
  // An integer within [min, max]; every integer of the protocol is one of these.
  std::int64_t integer(const char* field, bool required = true, std::int64_t min = 0,
                       std::int64_t max = kMaxInteger) {
    const json* v = find(field, required);
    if (!v) return 0;
    if (!v->is_number_integer()) return bad(field, "not an integer"), 0;
    const bool too_big =
        v->is_number_unsigned() && v->get<std::uint64_t>() > static_cast<std::uint64_t>(max);
    const std::int64_t n = too_big ? max : v->get<std::int64_t>();
    if (too_big || n < min || n > max) {
      bad(field, "out of range [" + std::to_string(min) + ", " + std::to_string(max) + "] (got " +
                     v->dump() + ")");
      return 0;
    }
    return n;
  }
  bool boolean(const char* field, bool required = true) {
    const json* v = find(field, required);
    if (!v) return false;
    if (!v->is_boolean()) return bad(field, "not a boolean"), false;
    return v->get<bool>();
  }
  json object(const char* field, bool required = true) {
    const json* v = find(field, required);
    if (!v) return json::object();
    if (!v->is_object()) return bad(field, "not an object"), json::object();
    return *v;
  }
  json any(const char* field, bool required = true) {
    const json* v = find(field, required);
    return v ? *v : json();
  }
  std::vector<std::string> strings(const char* field, bool required = true) {
    std::vector<std::string> out;
    const json* v = find(field, required);
    if (!v) return out;
    if (!v->is_array()) return bad(field, "not an array"), out;
    for (const auto& e : *v) {
      if (!e.is_string()) return bad(field, "holds a non-string"), out;
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  Metrics metrics(const char* field, bool required = true) {
    Metrics out;
    const json* v = find(field, required);
    if (!v) return out;
    if (!v->is_object()) return bad(field, "not an object"), out;
    for (const auto& [name, value] : v->items()) {
      if (!value.is_number()) {
        bad(field, "value of '" + name + "' is not a number");
        return out;
      }
      out[name] = value.get<double>();
    }
    return out;
  }
  std::vector<RunningTrial> running(const char* field) {
    std::vector<RunningTrial> out;
    const json* v = find(field, false);
    if (!v) return out;
    if (!v->is_array()) return bad(field, "not an array"), out;
    for (std::size_t i = 0; i < v->size(); ++i) {
      const json& e = (*v)[i];
      std::string where = std::string(field) + "[" + std::to_string(i) + "]";
      if (!e.is_object()) return bad(where, "not an object"), out;
      Reader r(type_, e);
      RunningTrial t;
      t.study = r.string("study");
      t.trial = r.integer("trial");
      t.attempt = r.integer("attempt");
      t.lease = r.name("lease");
      t.finished = r.boolean("finished", false);
      if (r.error_) return bad(where + "." + r.error_field_, r.error_what_), out;
      out.push_back(std::move(t));
    }
    return out;
  }

  // An optional checkpoint reference {bytes, sha256}.
  std::optional<CheckpointRef> checkpoint(const char* field) {
    const json* v = find(field, false);
    if (!v) return std::nullopt;
    if (!v->is_object()) return bad(field, "not an object"), std::nullopt;
    Reader r(type_, *v);
    CheckpointRef c;
    c.bytes = r.integer("bytes");
    c.sha256 = r.string("sha256");
    c.shared = r.boolean("shared", false);
    c.path = r.string("path", false);
    if (r.error_) return bad(std::string(field) + "." + r.error_field_, r.error_what_), std::nullopt;
    if (!is_sha256_hex(c.sha256)) return bad(std::string(field) + ".sha256", "not 64 lowercase hex digits"), std::nullopt;
    if (!c.path.empty() && !is_relative_path(c.path)) {
      return bad(std::string(field) + ".path", "not a relative path of at most " +
                                                   std::to_string(kMaxNameBytes) +
                                                   " bytes without '..'"),
             std::nullopt;
    }
    return c;
  }
  // The optional shared checkpoint directory of a WELCOME: {dir (absolute), token}.
  std::optional<SharedCheckpoints> shared_checkpoints(const char* field) {
    const json* v = find(field, false);
    if (!v) return std::nullopt;
    if (!v->is_object()) return bad(field, "not an object"), std::nullopt;
    Reader r(type_, *v);
    SharedCheckpoints s;
    s.dir = r.string("dir");
    s.token = r.string("token");
    if (r.error_) return bad(std::string(field) + "." + r.error_field_, r.error_what_), std::nullopt;
    if (s.dir.empty() || s.dir.front() != '/' || s.dir.size() > 4096 ||
        s.dir.find('\0') != std::string::npos) {
      return bad(std::string(field) + ".dir", "not an absolute path"), std::nullopt;
    }
    if (s.token.size() != 32 ||
        s.token.find_first_not_of("0123456789abcdef") != std::string::npos) {
      return bad(std::string(field) + ".token", "not 32 lowercase hex digits"), std::nullopt;
    }
    return s;
  }
  // Base64 bytes, at most `max` of them once decoded.
  std::string bytes(const char* field, std::size_t max) {
    std::string text = string(field);
    if (error_) return {};
    if (text.size() > (max + 2) / 3 * 4) {
      return bad(field, "over " + std::to_string(max) + " bytes"), std::string();
    }
    auto decoded = base64_decode(text);
    if (!decoded) return bad(field, decoded.error().message), std::string();
    return std::move(*decoded);
  }

  std::optional<Error> error() const {
    if (!error_) return std::nullopt;
    return Error{std::string(type_) + ": field '" + error_field_ + "': " + error_what_};
  }

 private:
  const json* find(const std::string& field, bool required) {
    if (error_) return nullptr;
    auto it = body_.find(field);
    if (it == body_.end() || (it->is_null() && !required)) {
      if (required) bad(field, "missing");
      return nullptr;
    }
    return &*it;
  }
  void bad(const std::string& field, const std::string& what) {
    if (error_) return;
    error_ = true;
    error_field_ = field;
    error_what_ = what;
  }

  // Relative, not empty, at most kMaxNameBytes, no empty, "." or ".." component.
  static bool is_relative_path(const std::string& p) {
    if (p.empty() || p.size() > kMaxNameBytes || p.front() == '/' ||
        p.find('\0') != std::string::npos)
      return false;
    std::size_t start = 0;
    while (start <= p.size()) {
      const std::size_t end = std::min(p.find('/', start), p.size());
      const std::string part = p.substr(start, end - start);
      if (part.empty() || part == "." || part == "..") return false;
      start = end + 1;
    }
    return true;
  }

  std::string_view type_;
  const json& body_;
  bool error_ = false;
  std::string error_field_;
  std::string error_what_;
};

// The checkpoint-transfer messages (protocol_transfer.cpp).
json encode_body(const Put& m);
json encode_body(const PutAck& m);
json encode_body(const Get& m);
json encode_body(const Chunk& m);
json checkpoint_json(const CheckpointRef& c);
// PUT, PUT_ACK, GET or CHUNK from its body; nullopt for any other type.
std::optional<Result<Message>> decode_transfer(std::string_view type, const json& body);

}  // namespace hpo::scheduler::protocol::detail
