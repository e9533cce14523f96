#include "tests/netbed/relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <list>
#include <random>

namespace hpo::netbed {
namespace {

using Clock = std::chrono::steady_clock;

struct Chunk {
  Clock::time_point due;
  std::string bytes;
};

// One direction of a connection: what was read from `from`, waiting to be written to `to`.
struct Flow {
  int from = -1;
  int to = -1;
  std::deque<Chunk> queue;
  Clock::time_point last_due{};
};

struct Pair {
  Flow up, down;  // client -> upstream, upstream -> client
  Clock::time_point cut_at;
  bool closed = false;
  void close_both() {
    if (up.from >= 0) ::close(up.from);
    if (up.to >= 0) ::close(up.to);
    closed = true;
  }
};

sockaddr_in address(const std::string& host, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  return a;
}

void nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Reads what `f.from` has, queued with its delay. False at EOF or on an error.
bool pull(Flow& f, Clock::duration delay) {
  char buf[65536];
  const ssize_t n = ::read(f.from, buf, sizeof buf);
  if (n == 0) return false;
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  const auto due = std::max(f.last_due, Clock::now() + delay);
  f.last_due = due;
  f.queue.push_back({due, std::string(buf, static_cast<std::size_t>(n))});
  return true;
}

// Writes what is due. False on an error.
bool push(Flow& f) {
  const auto now = Clock::now();
  while (!f.queue.empty() && f.queue.front().due <= now) {
    auto& c = f.queue.front();
    const ssize_t n = ::write(f.to, c.bytes.data(), c.bytes.size());
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    c.bytes.erase(0, static_cast<std::size_t>(n));
    if (!c.bytes.empty()) return true;
    f.queue.pop_front();
  }
  return true;
}

}  // namespace

Relay::Relay(const std::string& to_address, int to_port, RelayOptions options)
    : to_address_(to_address), to_port_(to_port), options_(options) {}

Result<std::unique_ptr<Relay>> Relay::start(const std::string& ns, int listen_port,
                                            const std::string& to_address, int to_port,
                                            RelayOptions options) {
  std::unique_ptr<Relay> relay(new Relay(to_address, to_port, options));
  // -1: starting; 0: listening; > 0: errno of what failed.
  std::atomic<int> state{-1};
  relay->thread_ = std::thread([r = relay.get(), ns, listen_port, &state] {
    const int nsfd = ::open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || ::setns(nsfd, CLONE_NEWNET) != 0) {
      state = errno ? errno : EINVAL;
      if (nsfd >= 0) ::close(nsfd);
      return;
    }
    ::close(nsfd);
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const auto at = address("127.0.0.1", listen_port);
    if (::bind(listener, reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0 ||
        ::listen(listener, 16) != 0) {
      state = errno;
      ::close(listener);
      return;
    }
    nonblocking(listener);
    state = 0;
    r->run(listener);
    ::close(listener);
  });
  const auto until = Clock::now() + std::chrono::seconds(10);
  while (state == -1 && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const int outcome = state;
  if (outcome != 0) {
    relay->stop_ = true;
    relay->thread_.join();
    return fail("relay in namespace " + ns + " on 127.0.0.1:" + std::to_string(listen_port) + ": " +
                (outcome == -1 ? "not listening after 10 s" : std::strerror(outcome)));
  }
  return relay;
}

Relay::~Relay() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Relay::run(int listener) {
  std::mt19937 rng(options_.seed);
  std::uniform_int_distribution<long> jitter(-options_.jitter.count(), options_.jitter.count());
  const long max_life = options_.max_life.count();
  std::uniform_int_distribution<long> life(std::min(options_.min_life.count(), max_life), max_life);
  auto delay = [&] { return std::chrono::milliseconds(options_.delay.count() + jitter(rng)); };
  std::list<Pair> pairs;
  while (!stop_) {
    std::vector<pollfd> fds = {{listener, POLLIN, 0}};
    for (auto& p : pairs) {
      fds.push_back({p.up.from, POLLIN, 0});
      fds.push_back({p.down.from, POLLIN, 0});
    }
    ::poll(fds.data(), fds.size(), 2);  // 2 ms: the resolution of the delays
    if (fds[0].revents & POLLIN) {
      const int client = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        const int upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const auto to = address(to_address_, to_port_);
        if (::connect(upstream, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
          ::close(upstream);
          ::close(client);
        } else {
          nonblocking(client);
          nonblocking(upstream);
          Pair p;
          p.up.from = p.down.to = client;
          p.up.to = p.down.from = upstream;
          p.cut_at = Clock::now() + std::chrono::milliseconds(life(rng));
          pairs.push_back(std::move(p));
          ++connections_;
        }
      }
    }
    std::size_t i = 1;
    for (auto& p : pairs) {
      const bool up_readable = fds.size() > i && (fds[i].revents & (POLLIN | POLLHUP | POLLERR));
      const bool down_readable =
          fds.size() > i + 1 && (fds[i + 1].revents & (POLLIN | POLLHUP | POLLERR));
      i += 2;
      bool ok = (!up_readable || pull(p.up, delay())) && (!down_readable || pull(p.down, delay()));
      ok = ok && push(p.up) && push(p.down);
      if (ok && options_.max_life.count() > 0 && Clock::now() >= p.cut_at) {
        ++cuts_;
        ok = false;
      }
      if (!ok) p.close_both();
    }
    pairs.remove_if([](const Pair& p) { return p.closed; });
  }
  for (auto& p : pairs) p.close_both();
}

}  // namespace hpo::netbed
