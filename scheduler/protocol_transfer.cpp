// The checkpoint-transfer messages of the wire protocol (protocol.h: PUT, PUT_ACK, GET,
// CHUNK): a paused trial's packed checkpoint in base64 chunks of at most kMaxChunkBytes.
#include "base/base64.h"
#include "scheduler/protocol_reader.h"

namespace hpo::scheduler::protocol::detail {

json checkpoint_json(const CheckpointRef& c) {
  json out = {{"bytes", c.bytes}, {"sha256", c.sha256}};
  if (c.shared) out["shared"] = true;
  if (!c.path.empty()) out["path"] = c.path;
  return out;
}

json encode_body(const Put& m) {
  return {{"study", m.study},   {"trial", m.trial},   {"attempt", m.attempt},
          {"lease", m.lease},   {"offset", m.offset}, {"total", m.total},
          {"sha256", m.sha256}, {"data", base64_encode(m.data)}};
}

json encode_body(const PutAck& m) {
  json out = {{"lease", m.lease}, {"next", m.next}, {"done", m.done}};
  if (!m.error.empty()) out["error"] = m.error;
  return out;
}

json encode_body(const Get& m) {
  return {{"study", m.study},
          {"trial", m.trial},
          {"attempt", m.attempt},
          {"lease", m.lease},
          {"offset", m.offset}};
}

json encode_body(const Chunk& m) {
  json out = {{"lease", m.lease},
              {"offset", m.offset},
              {"total", m.total},
              {"data", base64_encode(m.data)}};
  if (!m.error.empty()) out["error"] = m.error;
  return out;
}

std::optional<Result<Message>> decode_transfer(std::string_view type, const json& body) {
  Reader r(type, body);
  Message out;
  if (type == "PUT") {
    Put m;
    m.study = r.string("study");
    m.trial = r.integer("trial");
    m.attempt = r.integer("attempt");
    m.lease = r.name("lease");
    m.offset = r.integer("offset");
    m.total = r.integer("total");
    m.sha256 = r.string("sha256");
    m.data = r.bytes("data", kMaxChunkBytes);
    if (!r.error()) {
      if (!is_sha256_hex(m.sha256)) return fail("PUT: field 'sha256': not 64 lowercase hex digits");
      if (m.offset + static_cast<std::int64_t>(m.data.size()) > m.total) {
        return fail("PUT: field 'data': ends at byte " +
                    std::to_string(m.offset + static_cast<std::int64_t>(m.data.size())) +
                    ", past the total of " + std::to_string(m.total));
      }
    }
    out = std::move(m);
  } else if (type == "PUT_ACK") {
    PutAck m;
    m.lease = r.name("lease");
    m.next = r.integer("next");
    m.done = r.boolean("done");
    m.error = r.string("error", false);
    out = std::move(m);
  } else if (type == "GET") {
    Get m;
    m.study = r.string("study");
    m.trial = r.integer("trial");
    m.attempt = r.integer("attempt");
    m.lease = r.name("lease");
    m.offset = r.integer("offset");
    out = std::move(m);
  } else if (type == "CHUNK") {
    Chunk m;
    m.lease = r.name("lease");
    m.offset = r.integer("offset");
    m.total = r.integer("total");
    m.data = r.bytes("data", kMaxChunkBytes);
    m.error = r.string("error", false);
    out = std::move(m);
  } else {
    return std::nullopt;
  }
  if (auto e = r.error()) return Result<Message>(std::unexpected(*e));
  return Result<Message>(std::move(out));
}

}  // namespace hpo::scheduler::protocol::detail

namespace hpo::scheduler::protocol {

std::string shared_pack_name(const std::string& sha256, const std::string& lease) {
  return sha256 + "." + sha256_hex(lease).substr(0, 16) + ".pack";
}

}  // namespace hpo::scheduler::protocol
