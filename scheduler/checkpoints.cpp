#include "scheduler/checkpoints.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <vector>

#include "base/random.h"
#include "base/sha256.h"

namespace hpo::scheduler {
namespace {

namespace fs = std::filesystem;

Status io_error(const fs::path& path, const std::string& what) {
  return fail(ErrorCode::kIo, path.string() + ": " + what + ": " + std::strerror(errno));
}

// fsync of a file or directory, by path.
Status sync_path(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return io_error(path, "cannot open to sync");
  const int r = ::fsync(fd);
  ::close(fd);
  if (r != 0) return io_error(path, "fsync failed");
  return {};
}

std::optional<std::int64_t> to_int(std::string_view s) {
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

// "<trial>.<seq>.<sha256>.pack" -> trial, info.
std::optional<std::pair<std::int64_t, CheckpointInfo>> parse_pack_name(const std::string& name) {
  constexpr std::string_view kSuffix = ".pack";
  if (name.size() <= kSuffix.size() || !name.ends_with(kSuffix)) return std::nullopt;
  const std::string stem = name.substr(0, name.size() - kSuffix.size());
  const auto a = stem.find('.');
  const auto b = a == std::string::npos ? a : stem.find('.', a + 1);
  if (b == std::string::npos) return std::nullopt;
  auto trial = to_int(std::string_view(stem).substr(0, a));
  auto seq = to_int(std::string_view(stem).substr(a + 1, b - a - 1));
  std::string sha = stem.substr(b + 1);
  if (!trial || !seq || !is_sha256_hex(sha)) return std::nullopt;
  return std::make_pair(*trial, CheckpointInfo{0, std::move(sha), *seq});
}

struct Upload {
  std::uint64_t bytes = 0;     // announced
  std::uint64_t received = 0;
  std::string sha256;          // announced
  Sha256 hash;                 // of what was received
  std::ofstream out;
};

}  // namespace

struct CheckpointStore::Impl {
  fs::path root;
  std::uint64_t max_bytes = 0;
  std::map<CheckpointKey, CheckpointInfo> packs;
  std::map<CheckpointKey, Upload> uploads;

  fs::path study_dir(std::int64_t study) const { return root / std::to_string(study); }
  fs::path part(CheckpointKey k) const {
    return study_dir(k.study) / (std::to_string(k.trial) + ".part");
  }
  fs::path pack(CheckpointKey k, const CheckpointInfo& i) const {
    return study_dir(k.study) /
           (std::to_string(k.trial) + "." + std::to_string(i.seq) + "." + i.sha256 + ".pack");
  }
  std::uint64_t usage() const {
    std::uint64_t n = 0;
    for (const auto& [k, p] : packs) n += p.bytes;
    for (const auto& [k, u] : uploads) n += u.bytes;
    return n;
  }
  void drop_upload(CheckpointKey k) {
    auto it = uploads.find(k);
    if (it == uploads.end()) return;
    it->second.out.close();
    uploads.erase(it);
    std::error_code ec;
    fs::remove(part(k), ec);
  }
};

CheckpointStore::CheckpointStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CheckpointStore::CheckpointStore(CheckpointStore&&) noexcept = default;
CheckpointStore& CheckpointStore::operator=(CheckpointStore&&) noexcept = default;
CheckpointStore::~CheckpointStore() = default;

Result<CheckpointStore> CheckpointStore::open(const fs::path& root, std::uint64_t max_bytes) {
  auto impl = std::make_unique<Impl>();
  impl->root = root;
  impl->max_bytes = max_bytes;
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return fail(ErrorCode::kIo, root.string() + ": " + ec.message());
  for (const auto& study : fs::directory_iterator(root, ec)) {
    auto id = to_int(study.path().filename().string());
    if (!id || !study.is_directory()) continue;  // not ours: left alone
    std::vector<fs::path> older;
    for (const auto& f : fs::directory_iterator(study.path(), ec)) {
      const std::string name = f.path().filename().string();
      if (name.ends_with(".part")) {  // an upload a crash cut short
        fs::remove(f.path(), ec);
        continue;
      }
      auto parsed = parse_pack_name(name);
      if (!parsed) continue;
      parsed->second.bytes = f.file_size(ec);
      const CheckpointKey key{*id, parsed->first};
      auto [it, fresh] = impl->packs.try_emplace(key, parsed->second);
      if (fresh) continue;
      // Two packs of one trial: a crash between the rename and the removal. Keep the newer.
      if (parsed->second.seq > it->second.seq) {
        older.push_back(impl->pack(key, it->second));
        it->second = parsed->second;
      } else {
        older.push_back(f.path());
      }
    }
    for (const auto& p : older) fs::remove(p, ec);
  }
  if (ec) return fail(ErrorCode::kIo, root.string() + ": " + ec.message());
  return CheckpointStore(std::move(impl));
}

Status CheckpointStore::begin(CheckpointKey key, std::uint64_t bytes, const std::string& sha256) {
  if (!is_sha256_hex(sha256)) return fail("checkpoint upload: sha256 is not 64 hex digits");
  impl_->drop_upload(key);
  const auto old = impl_->packs.find(key);
  const std::uint64_t replaced = old == impl_->packs.end() ? 0 : old->second.bytes;
  const std::uint64_t after = impl_->usage() - replaced + bytes;
  if (after > impl_->max_bytes) {
    return fail(ErrorCode::kBusy, "checkpoint store full: " + std::to_string(bytes) +
                                      " more bytes would make " + std::to_string(after) +
                                      ", over its " + std::to_string(impl_->max_bytes));
  }
  std::error_code ec;
  fs::create_directories(impl_->study_dir(key.study), ec);
  if (ec) return fail(ErrorCode::kIo, impl_->study_dir(key.study).string() + ": " + ec.message());
  Upload u;
  u.bytes = bytes;
  u.sha256 = sha256;
  u.out.open(impl_->part(key), std::ios::binary | std::ios::trunc);
  if (!u.out) return io_error(impl_->part(key), "cannot create");
  impl_->uploads.emplace(key, std::move(u));
  return {};
}

Status CheckpointStore::append(CheckpointKey key, std::uint64_t offset, std::string_view bytes) {
  auto it = impl_->uploads.find(key);
  if (it == impl_->uploads.end()) return fail("checkpoint upload: no upload in progress");
  Upload& u = it->second;
  if (offset != u.received || bytes.size() > u.bytes - u.received) {
    const std::string why = offset != u.received
                                ? "chunk at byte " + std::to_string(offset) + ", expected " +
                                      std::to_string(u.received)
                                : "chunk passes the announced " + std::to_string(u.bytes) + " bytes";
    impl_->drop_upload(key);
    return fail("checkpoint upload: " + why + "; upload dropped");
  }
  u.out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!u.out) {
    impl_->drop_upload(key);
    return fail(ErrorCode::kIo, "checkpoint upload: write failed; upload dropped");
  }
  u.hash.update(bytes);
  u.received += bytes.size();
  return {};
}

Result<CheckpointInfo> CheckpointStore::commit(CheckpointKey key) {
  auto it = impl_->uploads.find(key);
  if (it == impl_->uploads.end()) return fail("checkpoint upload: no upload in progress");
  Upload& u = it->second;
  const fs::path part = impl_->part(key);
  if (u.received != u.bytes) {
    const std::string why = std::to_string(u.received) + " of " + std::to_string(u.bytes) + " bytes";
    impl_->drop_upload(key);
    return fail("checkpoint upload: incomplete (" + why + "); upload dropped");
  }
  const std::string got = u.hash.hex();
  if (got != u.sha256) {
    // Said before the upload (and `u` with it) is gone.
    const std::string why = "checkpoint upload: sha256 " + got + " is not the announced " +
                            u.sha256 + "; upload dropped, the previous checkpoint kept";
    impl_->drop_upload(key);
    return fail(why);
  }
  u.out.close();
  if (!u.out) {
    impl_->drop_upload(key);
    return fail(ErrorCode::kIo, part.string() + ": write failed; upload dropped");
  }
  if (auto s = sync_path(part, false); !s) {
    impl_->drop_upload(key);
    return std::unexpected(s.error());
  }
  const auto old = impl_->packs.find(key);
  CheckpointInfo info{u.bytes, u.sha256, old == impl_->packs.end() ? 1 : old->second.seq + 1};
  const fs::path target = impl_->pack(key, info);
  if (::rename(part.c_str(), target.c_str()) != 0) {
    auto s = io_error(target, "rename failed");
    impl_->drop_upload(key);
    return std::unexpected(s.error());
  }
  impl_->uploads.erase(it);
  if (auto s = sync_path(impl_->study_dir(key.study), true); !s) return std::unexpected(s.error());
  std::error_code ec;
  if (old != impl_->packs.end()) fs::remove(impl_->pack(key, old->second), ec);
  impl_->packs[key] = info;
  return info;
}

void CheckpointStore::abort(CheckpointKey key) { impl_->drop_upload(key); }

Result<std::string> CheckpointStore::share() {
  const fs::path incoming = impl_->root / "incoming", id = impl_->root / "shared-id";
  std::error_code ec;
  fs::create_directories(incoming, ec);
  if (ec) return fail(ErrorCode::kIo, incoming.string() + ": " + ec.message());
  const auto stale = fs::file_time_type::clock::now() - std::chrono::hours(1);
  for (const auto& f : fs::directory_iterator(incoming, ec)) {
    std::error_code e;
    if (f.last_write_time(e) < stale && !e) fs::remove(f.path(), e);
  }
  std::string token;
  if (std::ifstream in(id); in) std::getline(in, token);
  if (token.size() == 32 && token.find_first_not_of("0123456789abcdef") == std::string::npos) {
    return token;
  }
  auto fresh = random_hex(16);
  if (!fresh) return std::unexpected(fresh.error());
  token = *fresh;
  const fs::path tmp = impl_->root / "shared-id.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << token << "\n";
    if (!out) return std::unexpected(io_error(tmp, "cannot write").error());
  }
  if (auto s = sync_path(tmp, false); !s) return std::unexpected(s.error());
  if (::rename(tmp.c_str(), id.c_str()) != 0) {
    return std::unexpected(io_error(id, "rename failed").error());
  }
  if (auto s = sync_path(impl_->root, true); !s) return std::unexpected(s.error());
  return token;
}

Result<CheckpointInfo> CheckpointStore::adopt(CheckpointKey key, std::uint64_t bytes,
                                              const std::string& sha256, const std::string& name) {
  const fs::path source = impl_->root / "incoming" / name;
  auto refuse = [&](ErrorCode code, const std::string& why) -> Result<CheckpointInfo> {
    std::error_code ec;
    fs::remove(source, ec);
    return fail(code, "shared checkpoint " + source.string() + ": " + why +
                          "; the previous checkpoint kept");
  };
  if (!is_sha256_hex(sha256)) {
    return refuse(ErrorCode::kInvalidInput, "sha256 is not 64 hex digits");
  }
  std::error_code ec;
  const std::uint64_t size = fs::file_size(source, ec);
  if (ec) return fail(ErrorCode::kIo, "shared checkpoint " + source.string() + ": " + ec.message());
  if (size != bytes) {
    return refuse(ErrorCode::kInvalidInput, std::to_string(size) + " bytes, the FINISH says " +
                                                std::to_string(bytes));
  }
  const auto old = impl_->packs.find(key);
  const std::uint64_t replaced = old == impl_->packs.end() ? 0 : old->second.bytes;
  if (const std::uint64_t after = impl_->usage() - replaced + bytes; after > impl_->max_bytes) {
    return refuse(ErrorCode::kBusy, "checkpoint store full: " + std::to_string(bytes) +
                                        " more bytes would make " + std::to_string(after) +
                                        ", over its " + std::to_string(impl_->max_bytes));
  }
  auto digest = sha256_file(source);
  if (!digest) return refuse(ErrorCode::kIo, digest.error().message);
  if (*digest != sha256) {
    return refuse(ErrorCode::kInvalidInput, "sha256 " + *digest + " is not the FINISH's " + sha256);
  }
  if (auto s = sync_path(source, false); !s) return refuse(ErrorCode::kIo, s.error().message);
  fs::create_directories(impl_->study_dir(key.study), ec);
  if (ec) return refuse(ErrorCode::kIo, impl_->study_dir(key.study).string() + ": " + ec.message());
  CheckpointInfo info{bytes, sha256, old == impl_->packs.end() ? 1 : old->second.seq + 1};
  const fs::path target = impl_->pack(key, info);
  if (::rename(source.c_str(), target.c_str()) != 0) {
    auto s = io_error(target, "rename failed");
    return refuse(ErrorCode::kIo, s.error().message);
  }
  if (auto s = sync_path(impl_->study_dir(key.study), true); !s) return std::unexpected(s.error());
  if (old != impl_->packs.end()) fs::remove(impl_->pack(key, old->second), ec);
  impl_->packs[key] = info;
  return info;
}

std::string CheckpointStore::relative_path_of(CheckpointKey key) const {
  auto it = impl_->packs.find(key);
  if (it == impl_->packs.end()) return "";
  return fs::path(impl_->pack(key, it->second)).lexically_relative(impl_->root).string();
}

Result<CheckpointInfo> CheckpointStore::copy(CheckpointKey from, CheckpointKey to) {
  const auto source = find(from);
  if (!source) return fail(ErrorCode::kNotFound, "no checkpoint to copy");
  if (auto b = begin(to, source->bytes, source->sha256); !b) return std::unexpected(b.error());
  constexpr std::size_t kChunk = std::size_t{1} << 20;
  for (std::uint64_t at = 0; at < source->bytes; at += kChunk) {
    auto bytes = read(from, at, kChunk);
    if (!bytes) {
      abort(to);
      return std::unexpected(bytes.error());
    }
    if (auto a = append(to, at, *bytes); !a) return std::unexpected(a.error());
  }
  return commit(to);
}

std::optional<CheckpointInfo> CheckpointStore::find(CheckpointKey key) const {
  auto it = impl_->packs.find(key);
  if (it == impl_->packs.end()) return std::nullopt;
  return it->second;
}

Result<std::string> CheckpointStore::read(CheckpointKey key, std::uint64_t offset,
                                          std::size_t max) const {
  auto it = impl_->packs.find(key);
  if (it == impl_->packs.end()) {
    return fail(ErrorCode::kNotFound, "trial " + std::to_string(key.trial) + " has no checkpoint");
  }
  if (offset >= it->second.bytes) return std::string();
  const fs::path path = impl_->pack(key, it->second);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    auto s = io_error(path, "cannot open");
    return std::unexpected(s.error());
  }
  in.seekg(static_cast<std::streamoff>(offset));
  std::string out(static_cast<std::size_t>(std::min<std::uint64_t>(max, it->second.bytes - offset)), '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  if (static_cast<std::size_t>(in.gcount()) != out.size()) {
    return fail(ErrorCode::kIo, path.string() + ": shorter than its " +
                                    std::to_string(it->second.bytes) + " bytes");
  }
  return out;
}

Status CheckpointStore::remove(CheckpointKey key) {
  impl_->drop_upload(key);
  auto it = impl_->packs.find(key);
  if (it == impl_->packs.end()) return {};
  std::error_code ec;
  fs::remove(impl_->pack(key, it->second), ec);
  if (ec) return fail(ErrorCode::kIo, impl_->pack(key, it->second).string() + ": " + ec.message());
  impl_->packs.erase(it);
  return {};
}

Status CheckpointStore::remove_study(std::int64_t study) {
  std::vector<CheckpointKey> keys;
  for (const auto& [k, p] : impl_->packs) {
    if (k.study == study) keys.push_back(k);
  }
  for (const auto& [k, u] : impl_->uploads) {
    if (k.study == study) keys.push_back(k);
  }
  for (const auto& k : keys) {
    if (auto s = remove(k); !s) return s;
  }
  std::error_code ec;
  fs::remove(impl_->study_dir(study), ec);  // only when empty
  return {};
}

std::uint64_t CheckpointStore::usage() const { return impl_->usage(); }

std::uint64_t CheckpointStore::study_bytes(std::int64_t study) const {
  std::uint64_t n = 0;
  for (const auto& [k, p] : impl_->packs) {
    if (k.study == study) n += p.bytes;
  }
  return n;
}

std::uint64_t CheckpointStore::max_bytes() const { return impl_->max_bytes; }

fs::path CheckpointStore::path_of(CheckpointKey key) const {
  auto it = impl_->packs.find(key);
  return it == impl_->packs.end() ? fs::path() : impl_->pack(key, it->second);
}

}  // namespace hpo::scheduler
