#include "trainer/agent/transfer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "base/pack.h"
#include "base/sha256.h"

namespace hpo::agent {
namespace {

namespace fs = std::filesystem;
using protocol::kMaxChunkBytes;
using protocol::kTransferCredit;

std::string lease_name(const std::string& study, std::int64_t trial, std::int64_t attempt,
                       const std::string& lease) {
  return "lease " + lease + " (" + study + "#" + std::to_string(trial) + " attempt " +
         std::to_string(attempt) + ")";
}

void remove_quietly(const fs::path& path) {
  std::error_code ec;
  fs::remove(path, ec);
}

// fsync of a file or directory; the cause when it fails.
std::optional<std::string> sync_path(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return path.string() + ": cannot open: " + std::strerror(errno);
  const int r = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (r != 0) return path.string() + ": fsync failed: " + std::strerror(saved);
  return std::nullopt;
}

}  // namespace

void Transfers::share(const std::optional<protocol::SharedCheckpoints>& shared) {
  std::optional<fs::path> root;
  std::string said;
  if (shared) {
    const fs::path dir = shared->dir, id = dir / "shared-id";
    std::string token;
    std::ifstream in(id);
    if (in) std::getline(in, token);
    std::error_code ec;
    if (token.empty()) {
      said = "the scheduler's shared checkpoint directory " + dir.string() + " is not visible " +
             "here (no " + id.string() + "): checkpoints go over the network";
    } else if (token != shared->token) {
      said = id.string() + " holds another token than the scheduler's: this machine has " +
             "another directory at that path; checkpoints go over the network";
    } else if (!fs::is_directory(dir / "incoming", ec)) {
      said = "the shared checkpoint directory " + dir.string() + " has no incoming/: " +
             "checkpoints go over the network";
    } else {
      root = dir;
      said = "checkpoints go through the shared directory " + dir.string();
    }
  }
  if (!said.empty() && said != shared_said_) log_(said);
  shared_said_ = said;
  shared_root_ = root;
}

// Packs the checkpoint into <shared>/incoming/ (a temporary name, fsync, rename, fsync of the
// directory) and makes `paused` the FINISH that names it; nullopt (logged) when it cannot.
std::optional<protocol::Finish> Transfers::upload_shared(protocol::Finish& paused,
                                                         const std::string& checkpoint_dir) {
  const fs::path incoming = *shared_root_ / "incoming";
  std::string tmp_name = sha256_hex(paused.lease).substr(0, 16);
  tmp_name.insert(0, 1, '.');
  tmp_name.append(".").append(std::to_string(::getpid())).append(".tmp");
  const fs::path tmp = incoming / tmp_name;
  std::optional<std::string> why;
  auto packed = pack_directory(checkpoint_dir, tmp);
  if (!packed) {
    why = packed.error().message;
  } else if (!(why = sync_path(tmp, false))) {
    const fs::path target = incoming / protocol::shared_pack_name(packed->sha256, paused.lease);
    if (::rename(tmp.c_str(), target.c_str()) != 0) {
      why = target.string() + ": rename failed: " + std::strerror(errno);
    } else {
      why = sync_path(incoming, true);
    }
  }
  if (why) {
    remove_quietly(tmp);
    log_(lease_name(paused.study, paused.trial, paused.attempt, paused.lease) +
         ": cannot write its checkpoint to the shared directory: " + *why +
         "; uploading it over the network");
    return std::nullopt;
  }
  paused.checkpoint = protocol::CheckpointRef{static_cast<std::int64_t>(packed->bytes),
                                              packed->sha256, true, ""};
  return std::move(paused);
}

// Unpacks the resumed trial's checkpoint straight from the shared directory; the cause when
// it cannot (the caller then fetches it over the network).
std::optional<std::string> Transfers::fetch_shared(const protocol::Assign& a,
                                                   const TrialFiles& files) {
  const fs::path pack = *shared_root_ / a.resume->path;
  std::error_code ec;
  const auto size = fs::file_size(pack, ec);
  if (ec) return pack.string() + ": " + ec.message();
  if (size != static_cast<std::uintmax_t>(a.resume->bytes)) {
    return pack.string() + " has " + std::to_string(size) + " bytes, the ASSIGN names " +
           std::to_string(a.resume->bytes);
  }
  auto digest = sha256_file(pack);
  if (!digest) return digest.error().message;
  if (*digest != a.resume->sha256) {
    return "SHA-256 mismatch: the ASSIGN names " + a.resume->sha256 + ", got " + *digest;
  }
  fs::remove_all(files.resume_from, ec);  // an earlier try's
  if (auto s = unpack_directory(pack, files.resume_from); !s) {
    return "cannot unpack the checkpoint: " + s.error().message;
  }
  return std::nullopt;
}

std::optional<protocol::Finish> Transfers::upload(protocol::Finish paused,
                                                  const std::string& checkpoint_dir,
                                                  const fs::path& pack) {
  const std::string who = lease_name(paused.study, paused.trial, paused.attempt, paused.lease);
  std::error_code ec;
  if (checkpoint_dir.empty() || !fs::is_directory(checkpoint_dir, ec) ||
      fs::is_empty(checkpoint_dir, ec)) {
    log_(who + ": paused with nothing in its checkpoint directory; FINISH paused without a "
               "checkpoint (a resume starts afresh)");
    return paused;
  }
  if (shared_root_) {
    if (auto done = upload_shared(paused, checkpoint_dir)) return done;
  }
  auto packed = pack_directory(checkpoint_dir, pack);
  if (!packed) {
    log_(who + ": cannot pack its checkpoint: " + packed.error().message +
         "; FINISH paused without a checkpoint");
    remove_quietly(pack);
    return paused;
  }
  Upload u;
  u.finish = std::move(paused);
  u.pack = pack;
  u.ref = {static_cast<std::int64_t>(packed->bytes), packed->sha256};
  u.in.open(pack, std::ios::binary);
  if (!u.in) {
    log_(who + ": cannot read " + pack.string() + "; FINISH paused without a checkpoint");
    return std::move(u.finish);
  }
  const std::string lease = u.finish.lease;
  uploads_.insert_or_assign(lease, std::move(u));
  return std::nullopt;
}

std::optional<TransferEvent> Transfers::fetch(const protocol::Assign& assign, TrialFiles files,
                                              const fs::path& pack) {
  if (!assign.resume || assign.resume->bytes <= 0) {
    return fetch_failed(assign, "the checkpoint to resume from is empty");
  }
  if (shared_root_ && !assign.resume->path.empty()) {
    auto why = fetch_shared(assign, files);
    if (!why) return Fetched{assign, std::move(files)};
    log_(lease_name(assign.study, assign.trial, assign.attempt, assign.lease) +
         ": cannot read its checkpoint in the shared directory: " + *why +
         "; fetching it over the network");
  }
  std::error_code ec;
  fs::create_directories(pack.parent_path(), ec);
  Fetch f;
  f.assign = assign;
  f.files = std::move(files);
  f.pack = pack;
  f.out.open(pack, std::ios::binary | std::ios::trunc);
  if (!f.out) return fetch_failed(assign, pack.string() + ": cannot write");
  fetches_.insert_or_assign(assign.lease, std::move(f));
  return std::nullopt;
}

std::vector<protocol::Message> Transfers::pump() {
  std::vector<protocol::Message> out;
  for (auto it = uploads_.begin(); it != uploads_.end();) {
    Upload& u = it->second;
    bool readable = true;
    while (u.unacked < kTransferCredit && u.offset < u.ref.bytes) {
      const auto n = static_cast<std::size_t>(
          std::min<std::int64_t>(static_cast<std::int64_t>(kMaxChunkBytes), u.ref.bytes - u.offset));
      std::string data(n, '\0');
      u.in.clear();
      u.in.seekg(u.offset);
      u.in.read(data.data(), static_cast<std::streamsize>(n));
      if (static_cast<std::size_t>(u.in.gcount()) != n) {
        readable = false;
        break;
      }
      const auto& f = u.finish;
      out.push_back(protocol::Put{f.study, f.trial, f.attempt, f.lease, u.offset, u.ref.bytes,
                                  u.ref.sha256, std::move(data)});
      u.offset += static_cast<std::int64_t>(n);
      ++u.unacked;
    }
    if (readable) {
      ++it;
      continue;
    }
    const auto& f = u.finish;
    log_(lease_name(f.study, f.trial, f.attempt, f.lease) + ": cannot read " + u.pack.string() +
         " at byte " + std::to_string(u.offset) + "; FINISH paused without a checkpoint");
    failed_.push_back(std::move(u.finish));
    remove_quietly(u.pack);
    it = uploads_.erase(it);
  }
  for (auto& [lease, f] : fetches_) {
    while (f.unanswered < kTransferCredit && f.requested < f.assign.resume->bytes) {
      const auto& a = f.assign;
      out.push_back(protocol::Get{a.study, a.trial, a.attempt, a.lease, f.requested});
      f.requested += static_cast<std::int64_t>(kMaxChunkBytes);
      ++f.unanswered;
    }
  }
  return out;
}

std::optional<TransferEvent> Transfers::on_put_ack(const protocol::PutAck& ack) {
  auto it = uploads_.find(ack.lease);
  if (it == uploads_.end()) return std::nullopt;
  Upload& u = it->second;
  u.unacked = std::max(0, u.unacked - 1);
  if (ack.error.empty() && !ack.done) return std::nullopt;
  protocol::Finish f = std::move(u.finish);
  if (ack.done) {
    f.checkpoint = u.ref;
  } else {
    log_(lease_name(f.study, f.trial, f.attempt, f.lease) +
         ": the scheduler refused its checkpoint upload: " + ack.error +
         "; FINISH paused without a checkpoint");
  }
  u.in.close();
  remove_quietly(u.pack);
  uploads_.erase(it);
  return f;
}

std::optional<TransferEvent> Transfers::on_chunk(const protocol::Chunk& chunk) {
  auto it = fetches_.find(chunk.lease);
  if (it == fetches_.end()) return std::nullopt;
  Fetch& f = it->second;
  f.unanswered = std::max(0, f.unanswered - 1);
  auto failure = take_chunk(f, chunk);
  if (!failure && f.received < f.assign.resume->bytes) return std::nullopt;
  if (!failure) failure = complete(f);
  std::optional<TransferEvent> event;
  if (failure) {
    event = fetch_failed(f.assign, *failure);
  } else {
    event = Fetched{std::move(f.assign), std::move(f.files)};
  }
  f.out.close();
  remove_quietly(f.pack);
  fetches_.erase(it);
  return event;
}

// Appends one CHUNK; the failure's cause when it is not the next piece of the checkpoint.
std::optional<std::string> Transfers::take_chunk(Fetch& f, const protocol::Chunk& chunk) {
  const std::int64_t total = f.assign.resume->bytes;
  if (!chunk.error.empty()) return "the scheduler cannot send its checkpoint: " + chunk.error;
  if (chunk.total != total) {
    return "the scheduler holds a checkpoint of " + std::to_string(chunk.total) +
           " bytes, the ASSIGN names one of " + std::to_string(total);
  }
  if (chunk.offset != f.received) {
    return "CHUNK at offset " + std::to_string(chunk.offset) + ", expected " +
           std::to_string(f.received);
  }
  const auto size = static_cast<std::int64_t>(chunk.data.size());
  if (size == 0) return "the checkpoint ended at byte " + std::to_string(f.received);
  if (size > static_cast<std::int64_t>(kMaxChunkBytes) || f.received + size > total) {
    return "CHUNK at offset " + std::to_string(chunk.offset) + " runs past the checkpoint's " +
           std::to_string(total) + " bytes";
  }
  f.out.write(chunk.data.data(), static_cast<std::streamsize>(size));
  if (!f.out) return f.pack.string() + ": cannot write";
  f.received += size;
  return std::nullopt;
}

// All bytes are there: checks their digest and unpacks them into files.resume_from.
std::optional<std::string> Transfers::complete(Fetch& f) {
  f.out.close();
  if (!f.out) return f.pack.string() + ": cannot write";
  auto digest = sha256_file(f.pack);
  if (!digest) return digest.error().message;
  if (*digest != f.assign.resume->sha256) {
    return "SHA-256 mismatch: the ASSIGN names " + f.assign.resume->sha256 + ", got " + *digest;
  }
  std::error_code ec;
  fs::remove_all(f.files.resume_from, ec);  // an earlier try's
  if (auto s = unpack_directory(f.pack, f.files.resume_from); !s) {
    return "cannot unpack the checkpoint: " + s.error().message;
  }
  return std::nullopt;
}

protocol::Finish Transfers::fetch_failed(const protocol::Assign& a, const std::string& cause) {
  protocol::Finish f{a.study, a.trial, a.attempt, a.lease, protocol::Outcome::kInterrupted,
                     {},      "",      "",        true,    false};
  f.error = "agent: " + lease_name(a.study, a.trial, a.attempt, a.lease) +
            ": cannot resume: " + cause;
  f.log_tail = f.error + "\n";
  log_(f.error);
  return f;
}

void Transfers::restart() {
  for (auto& [lease, u] : uploads_) {
    u.offset = 0;
    u.unacked = 0;
  }
  for (auto& [lease, f] : fetches_) {
    f.requested = f.received = 0;
    f.unanswered = 0;
    f.out.close();
    f.out.clear();
    f.out.open(f.pack, std::ios::binary | std::ios::trunc);
  }
}

std::optional<protocol::CheckpointRef> Transfers::fetching(const std::string& lease) const {
  auto it = fetches_.find(lease);
  if (it == fetches_.end()) return std::nullopt;
  return it->second.assign.resume;
}

bool Transfers::drop(const std::string& lease) {
  if (auto u = uploads_.find(lease); u != uploads_.end()) {
    u->second.in.close();
    remove_quietly(u->second.pack);
    uploads_.erase(u);
    return true;
  }
  if (auto f = fetches_.find(lease); f != fetches_.end()) {
    f->second.out.close();
    remove_quietly(f->second.pack);
    fetches_.erase(f);
    return true;
  }
  return false;
}

std::vector<protocol::Finish> Transfers::abandon(const std::string& why) {
  std::vector<protocol::Finish> out;
  for (auto& [lease, u] : uploads_) {
    out.push_back(std::move(u.finish));
    out.back().error = why;
    u.in.close();
    remove_quietly(u.pack);
  }
  for (auto& [lease, f] : fetches_) {
    const auto& a = f.assign;
    out.push_back({a.study, a.trial, a.attempt, a.lease, protocol::Outcome::kInterrupted,
                   {}, why, why + "\n", false, true});
    f.out.close();
    remove_quietly(f.pack);
  }
  uploads_.clear();
  fetches_.clear();
  return out;
}

}  // namespace hpo::agent
