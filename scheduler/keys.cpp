// CURVE key files and socket settings (keys.h).
#include "scheduler/keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace hpo::scheduler {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxKeyFileBytes = 4096;
constexpr std::string_view kZ85 =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || name[0] == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.';
  });
}

// The "name = value" lines of a key file, by name; comments and blank lines skipped.
Result<std::map<std::string, std::string>> read_fields(const std::string& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return fail(ErrorCode::kNotFound, file + ": no such key file");
  if (fs::is_directory(file, ec)) return fail(file + ": is a directory, not a key file");
  const auto size = fs::file_size(file, ec);
  if (ec) return fail(ErrorCode::kIo, file + ": " + ec.message());
  if (size > kMaxKeyFileBytes) {
    return fail(file + ": " + std::to_string(size) + " bytes is too long for a key file (at most " +
                std::to_string(kMaxKeyFileBytes) + ")");
  }
  std::ifstream in(file);
  if (!in) return fail(ErrorCode::kIo, file + ": cannot read: " + std::strerror(errno));
  std::map<std::string, std::string> fields;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const auto at = [&](const std::string& why) {
      return fail(file + ":" + std::to_string(number) + ": " + why);
    };
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    const auto start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos) return at("expected 'public-key = ...' or 'secret-key = ...'");
    auto trim = [](std::string s) {
      const auto b = s.find_first_not_of(" \t\"");
      const auto e = s.find_last_not_of(" \t\"");
      return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
    };
    std::string name = trim(line.substr(0, eq));
    std::string value = trim(line.substr(eq + 1));
    if (name != "public-key" && name != "secret-key") return at("unknown field '" + name + "'");
    if (fields.count(name)) return at("'" + name + "' given twice");
    if (!valid_z85_key(value)) {
      return at("'" + name + "' is not a CURVE key (40 Z85 characters, got " +
                std::to_string(value.size()) + " characters)");
    }
    fields[name] = value;
  }
  return fields;
}

// Creates `path` with `mode` and writes `text`; refuses an existing file.
Status write_new_file(const std::string& path, const std::string& text, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST) return fail(path + ": already exists; remove it first or pick a new name");
    return fail(ErrorCode::kIo, path + ": cannot create: " + std::strerror(errno));
  }
  // The umask may have taken bits away (never added): set exactly what was asked.
  bool ok = ::fchmod(fd, mode) == 0;
  std::size_t done = 0;
  while (ok && done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ok = false;
    else done += static_cast<std::size_t>(n);
  }
  ok = ::fsync(fd) == 0 && ok;
  const int saved = errno;
  ::close(fd);
  if (!ok) return fail(ErrorCode::kIo, path + ": cannot write: " + std::strerror(saved));
  return {};
}

}  // namespace

bool valid_z85_key(const std::string& key) {
  return key.size() == 40 &&
         std::all_of(key.begin(), key.end(), [](char c) { return kZ85.find(c) != kZ85.npos; });
}

Result<Keypair> new_keypair() {
  char pub[41] = {};
  char sec[41] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    return fail(ErrorCode::kRuntime, std::string("cannot make a CURVE key pair: ") +
                                         zmq_strerror(zmq_errno()) +
                                         " (is libzmq built with CURVE?)");
  }
  return Keypair{pub, sec};
}

Status write_keypair(const std::string& dir, const std::string& name, const Keypair& keys) {
  if (!valid_name(name)) {
    return fail("key name '" + name +
                "': use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'");
  }
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) return fail(ErrorCode::kIo, dir + ": cannot create: " + ec.message());
    fs::permissions(dir, fs::perms::owner_all, ec);
  }
  const std::string base = (fs::path(dir) / name).string();
  const std::string head = "# hpo CURVE key \"" + name + "\" (made by `hpo keys new`)\n";
  // The secret first: a half-written pair leaves no public key pointing at a missing secret.
  if (auto s = write_new_file(base + ".secret",
                              head + "# SECRET: keep it mode 0600, never copy it to another host\n" +
                                  "public-key = " + keys.public_key + "\n" +
                                  "secret-key = " + keys.secret_key + "\n",
                              0600);
      !s) {
    return s;
  }
  return write_new_file(base + ".key",
                        head + "# public: copy it to the allow-list directories that trust it\n" +
                            "public-key = " + keys.public_key + "\n",
                        0644);
}

Result<std::string> read_public_key(const std::string& file) {
  auto fields = read_fields(file);
  if (!fields) return std::unexpected(fields.error());
  auto it = fields->find("public-key");
  if (it == fields->end()) return fail(file + ": no 'public-key = ...' line");
  return it->second;
}

Result<Keypair> read_keypair(const std::string& file) {
  struct stat st{};
  if (::stat(file.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail(file + ": secret key file is readable by others (mode " + mode +
                "); run: chmod 600 " + file);
  }
  auto fields = read_fields(file);
  if (!fields) return std::unexpected(fields.error());
  auto pub = fields->find("public-key");
  auto sec = fields->find("secret-key");
  if (sec == fields->end()) {
    return fail(file + ": no 'secret-key = ...' line (a .key file holds only the public key; "
                       "give the .secret file)");
  }
  if (pub == fields->end()) return fail(file + ": no 'public-key = ...' line");
  // The public key must be the secret's own: a pair edited by hand would fail every
  // handshake with an unhelpful message.
  char derived[41] = {};
  if (zmq_curve_public(derived, sec->second.c_str()) != 0 || pub->second != derived) {
    return fail(file + ": its public-key does not belong to its secret-key");
  }
  return Keypair{pub->second, sec->second};
}

Result<std::map<std::string, std::string>> read_key_dir(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return fail(ErrorCode::kNotFound, dir + ": no such key directory");
  }
  std::vector<fs::path> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    files.push_back(it->path());
  }
  if (ec) return fail(ErrorCode::kIo, dir + ": cannot list: " + ec.message());
  std::sort(files.begin(), files.end());
  std::map<std::string, std::string> keys;
  for (const auto& path : files) {
    if (path.extension() != ".key") continue;
    auto key = read_public_key(path.string());
    if (!key) return std::unexpected(key.error());
    const std::string name = path.stem().string();
    if (auto [it, added] = keys.emplace(*key, name); !added) {
      return fail(path.string() + ": the same key as " + it->second + ".key");
    }
  }
  return keys;
}

Status make_curve_server(zmq::socket_t& socket, const Keypair& keys) {
  try {
    socket.set(zmq::sockopt::curve_server, 1);
    socket.set(zmq::sockopt::curve_secretkey, keys.secret_key);
    socket.set(zmq::sockopt::zap_domain, "hpo");
  } catch (const zmq::error_t& e) {
    return fail(ErrorCode::kRuntime, std::string("cannot make a CURVE server: ") + e.what());
  }
  return {};
}

Status make_curve_client(zmq::socket_t& socket, const Keypair& keys,
                         const std::string& server_key) {
  try {
    socket.set(zmq::sockopt::curve_serverkey, server_key);
    socket.set(zmq::sockopt::curve_publickey, keys.public_key);
    socket.set(zmq::sockopt::curve_secretkey, keys.secret_key);
  } catch (const zmq::error_t& e) {
    return fail(ErrorCode::kRuntime, std::string("cannot make a CURVE client: ") + e.what());
  }
  return {};
}

bool loopback_only(const std::string& endpoint) {
  if (endpoint.rfind("ipc://", 0) == 0 || endpoint.rfind("inproc://", 0) == 0) return true;
  if (endpoint.rfind("tcp://", 0) != 0) return false;
  std::string host = endpoint.substr(6);
  // "tcp://iface;host:port" binds a source interface: look at the address part only.
  if (const auto semi = host.find(';'); semi != std::string::npos) host = host.substr(semi + 1);
  if (host.rfind("[", 0) == 0) {
    const auto close = host.find(']');
    return close != std::string::npos && host.substr(1, close - 1) == "::1";
  }
  host = host.substr(0, host.rfind(':'));
  if (host == "localhost") return true;
  if (host.rfind("127.", 0) != 0) return false;
  // 127.x.y.z with digits only: an interface named "127.foo" is not the loopback net.
  return std::all_of(host.begin(), host.end(),
                     [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

}  // namespace hpo::scheduler

namespace hpo::scheduler {

Result<std::optional<ClientKeys>> read_client_keys(const std::string& key_file,
                                                   const std::string& scheduler_key_file) {
  if (key_file.empty() && scheduler_key_file.empty()) return std::optional<ClientKeys>();
  if (key_file.empty() || scheduler_key_file.empty()) {
    return fail(std::string("--key and --scheduler-key go together: give ") +
                (key_file.empty() ? "--key (this client's .secret file)"
                                  : "--scheduler-key (the scheduler's .key file)") +
                " too");
  }
  auto mine = read_keypair(key_file);
  if (!mine) return std::unexpected(mine.error());
  auto server = read_public_key(scheduler_key_file);
  if (!server) return std::unexpected(server.error());
  return std::optional<ClientKeys>(ClientKeys{*mine, *server});
}

std::string encode_run_keys(const ClientKeys& keys) {
  return keys.mine.public_key + " " + keys.mine.secret_key + " " + keys.server;
}

Result<ClientKeys> decode_run_keys(const std::string& text) {
  std::istringstream in(text);
  ClientKeys k;
  in >> k.mine.public_key >> k.mine.secret_key >> k.server;
  if (!valid_z85_key(k.mine.public_key) || !valid_z85_key(k.mine.secret_key) ||
      !valid_z85_key(k.server)) {
    return fail(std::string(kRunKeysVariable) + ": expected three CURVE keys");
  }
  return k;
}

}  // namespace hpo::scheduler
