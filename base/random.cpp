#include "base/random.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace hpo {
namespace {

// Fills [data, data + size) from getrandom(2). False when the kernel lacks the call.
bool from_getrandom(unsigned char* data, std::size_t size, int& err) {
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::getrandom(data + done, size - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

Status from_urandom(unsigned char* data, std::size_t size) {
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(ErrorCode::kIo, std::string("/dev/urandom: ") + std::strerror(errno));
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::read(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      ::close(fd);
      return fail(ErrorCode::kIo, std::string("/dev/urandom: ") + std::strerror(err));
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return {};
}

}  // namespace

Result<std::string> random_hex(std::size_t bytes) {
  std::vector<unsigned char> data(bytes);
  int err = 0;
  if (!from_getrandom(data.data(), data.size(), err)) {
    if (err != ENOSYS) {
      return fail(ErrorCode::kIo, std::string("getrandom: ") + std::strerror(err));
    }
    if (auto s = from_urandom(data.data(), data.size()); !s) return std::unexpected(s.error());
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes);
  for (unsigned char b : data) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0x0f]);
  }
  return out;
}

}  // namespace hpo
