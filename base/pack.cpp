#include "base/pack.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <vector>

#include "base/sha256.h"

namespace hpo {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[8] = {'H', 'P', 'O', 'P', 'A', 'C', 'K', '1'};
constexpr std::uint8_t kEnd = 0, kDirectory = 1, kFile = 2;
constexpr std::size_t kMaxPath = 4096;

template <class T>
void put(std::string& out, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

// Writes to the file and to the running hash at once.
class Writer {
 public:
  explicit Writer(const fs::path& path) : path_(path), out_(path, std::ios::binary | std::ios::trunc) {}
  bool open() const { return static_cast<bool>(out_); }
  void write(std::string_view bytes) {
    out_.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    hash_.update(bytes);
    size_ += bytes.size();
  }
  Result<PackInfo> finish(std::int64_t files) {
    out_.flush();
    if (!out_) return fail(ErrorCode::kIo, path_.string() + ": write failed");
    return PackInfo{size_, hash_.hex(), files};
  }

 private:
  fs::path path_;
  std::ofstream out_;
  Sha256 hash_;
  std::uint64_t size_ = 0;
};

// A relative path that stays inside its directory.
bool safe_relative(const std::string& path) {
  if (path.empty() || path.size() > kMaxPath || path.front() == '/') return false;
  if (path.find('\0') != std::string::npos) return false;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

class Reader {
 public:
  explicit Reader(const fs::path& path) : path_(path), in_(path, std::ios::binary) {}
  bool open() const { return static_cast<bool>(in_); }
  bool read(char* into, std::size_t n) {
    in_.read(into, static_cast<std::streamsize>(n));
    offset_ += static_cast<std::uint64_t>(in_.gcount());
    return static_cast<std::size_t>(in_.gcount()) == n;
  }
  template <class T>
  bool get(T& v) {
    std::array<unsigned char, sizeof(T)> b{};
    if (!read(reinterpret_cast<char*>(b.data()), b.size())) return false;
    v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>(v | (static_cast<T>(b[i]) << (8 * i)));
    return true;
  }
  bool at_end() { return in_.peek() == std::char_traits<char>::eof(); }
  std::uint64_t offset() const { return offset_; }
  std::string where() const { return path_.string() + " (byte " + std::to_string(offset_) + ")"; }

 private:
  fs::path path_;
  std::ifstream in_;
  std::uint64_t offset_ = 0;
};

Status unpack_into(Reader& in, const fs::path& packed, const fs::path& dir) {
  char magic[sizeof kMagic];
  if (!in.read(magic, sizeof magic) || !std::equal(magic, magic + sizeof magic, kMagic)) {
    return fail(packed.string() + ": not a checkpoint pack (no HPOPACK1 header)");
  }
  std::set<std::string> seen;
  std::vector<char> buf(1 << 16);
  for (;;) {
    std::uint8_t kind = 0;
    if (!in.get(kind)) return fail(in.where() + ": ends before its end marker");
    if (kind == kEnd) break;
    if (kind != kDirectory && kind != kFile) {
      return fail(in.where() + ": unknown entry kind " + std::to_string(kind));
    }
    std::uint16_t length = 0;
    if (!in.get(length)) return fail(in.where() + ": ends inside an entry");
    std::string path(length, '\0');
    if (!in.read(path.data(), length)) return fail(in.where() + ": ends inside an entry's path");
    if (!safe_relative(path)) {
      return fail(in.where() + ": entry path '" + path + "' would leave the directory");
    }
    if (!seen.insert(path).second) return fail(in.where() + ": entry '" + path + "' twice");
    const fs::path target = dir / path;
    std::error_code ec;
    if (kind == kDirectory) {
      fs::create_directories(target, ec);
      if (ec) return fail(ErrorCode::kIo, target.string() + ": " + ec.message());
      continue;
    }
    std::uint32_t mode = 0;
    std::uint64_t size = 0;
    if (!in.get(mode) || !in.get(size)) return fail(in.where() + ": ends inside '" + path + "'");
    fs::create_directories(target.parent_path(), ec);
    if (ec) return fail(ErrorCode::kIo, target.parent_path().string() + ": " + ec.message());
    std::ofstream out(target, std::ios::binary | std::ios::trunc);
    if (!out) return fail(ErrorCode::kIo, target.string() + ": cannot create: " + std::strerror(errno));
    for (std::uint64_t left = size; left > 0;) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
      if (!in.read(buf.data(), n)) {
        return fail(in.where() + ": '" + path + "' ends early (" + std::to_string(size) +
                    " bytes announced)");
      }
      out.write(buf.data(), static_cast<std::streamsize>(n));
      left -= n;
    }
    out.close();
    if (!out) return fail(ErrorCode::kIo, target.string() + ": write failed");
    fs::permissions(target, static_cast<fs::perms>(mode & 0700) | fs::perms::owner_read,
                    fs::perm_options::replace, ec);
  }
  if (!in.at_end()) return fail(in.where() + ": bytes after the end marker");
  return {};
}

}  // namespace

Result<PackInfo> pack_directory(const fs::path& dir, const fs::path& out) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return fail(ErrorCode::kNotFound, dir.string() + ": not a directory");
  std::vector<fs::directory_entry> entries;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    entries.push_back(*it);
  }
  if (ec) return fail(ErrorCode::kIo, dir.string() + ": " + ec.message());
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.path() < b.path(); });
  Writer w(out);
  if (!w.open()) return fail(ErrorCode::kIo, out.string() + ": cannot create: " + std::strerror(errno));
  w.write(std::string_view(kMagic, sizeof kMagic));
  std::int64_t files = 0;
  std::vector<char> buf(1 << 16);
  for (const auto& e : entries) {
    const std::string rel = e.path().lexically_relative(dir).generic_string();
    const auto status = e.symlink_status(ec);
    std::string head;
    if (fs::is_directory(status)) {
      put<std::uint8_t>(head, kDirectory);
    } else if (fs::is_regular_file(status)) {
      put<std::uint8_t>(head, kFile);
    } else {
      return fail(e.path().string() +
                  ": a checkpoint holds regular files and directories only (this is a " +
                  (fs::is_symlink(status) ? "symbolic link" : "special file") + ")");
    }
    if (rel.size() > kMaxPath) return fail(e.path().string() + ": path over 4096 bytes");
    put<std::uint16_t>(head, static_cast<std::uint16_t>(rel.size()));
    head += rel;
    if (fs::is_directory(status)) {
      w.write(head);
      continue;
    }
    std::ifstream in(e.path(), std::ios::binary);
    if (!in) return fail(ErrorCode::kIo, e.path().string() + ": cannot open: " + std::strerror(errno));
    const std::uint64_t size = fs::file_size(e.path(), ec);
    if (ec) return fail(ErrorCode::kIo, e.path().string() + ": " + ec.message());
    put<std::uint32_t>(head, static_cast<std::uint32_t>(status.permissions()) & 07777);
    put<std::uint64_t>(head, size);
    w.write(head);
    for (std::uint64_t left = size; left > 0;) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
      if (!in.read(buf.data(), static_cast<std::streamsize>(n))) {
        return fail(ErrorCode::kIo, e.path().string() + ": changed while being packed");
      }
      w.write(std::string_view(buf.data(), n));
      left -= n;
    }
    ++files;
  }
  w.write(std::string_view("\0", 1));
  return w.finish(files);
}

Status unpack_directory(const fs::path& packed, const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) return fail(dir.string() + ": exists already (unpack needs a new directory)");
  Reader in(packed);
  if (!in.open()) {
    return fail(ErrorCode::kIo, packed.string() + ": cannot open: " + std::strerror(errno));
  }
  fs::create_directories(dir, ec);
  if (ec) return fail(ErrorCode::kIo, dir.string() + ": " + ec.message());
  auto done = unpack_into(in, packed, dir);
  if (!done) fs::remove_all(dir, ec);
  return done;
}

}  // namespace hpo
