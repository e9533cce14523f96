#include "scheduler/transfers.h"

namespace hpo::scheduler {

namespace p = protocol;

p::PutAck Transfers::put(CheckpointKey key, const p::Put& m) {
  auto refused = [&](const Error& e) { return p::PutAck{m.lease, 0, false, e.message}; };
  if (m.offset == 0) {
    if (auto s = store_.begin(key, static_cast<std::uint64_t>(m.total), m.sha256); !s) {
      return refused(s.error());
    }
  }
  if (auto s = store_.append(key, static_cast<std::uint64_t>(m.offset), m.data); !s) {
    return refused(s.error());
  }
  const std::int64_t next = m.offset + static_cast<std::int64_t>(m.data.size());
  if (next < m.total) return p::PutAck{m.lease, next, false, ""};
  auto done = store_.commit(key);
  if (!done) return refused(done.error());
  return p::PutAck{m.lease, next, true, ""};
}

p::Chunk Transfers::get(CheckpointKey key, const p::Get& m) const {
  p::Chunk out{m.lease, m.offset, 0, "", ""};
  auto info = store_.find(key);
  if (!info) {
    out.error = "trial " + std::to_string(key.trial) + " has no checkpoint here";
    return out;
  }
  out.total = static_cast<std::int64_t>(info->bytes);
  auto data = store_.read(key, static_cast<std::uint64_t>(m.offset), p::kMaxChunkBytes);
  if (!data) {
    out.error = data.error().message;
    return out;
  }
  out.data = std::move(*data);
  return out;
}

}  // namespace hpo::scheduler
