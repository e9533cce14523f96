// libzmq alone, no hpo code: what CURVE costs per message and per handshake (zmq_probes.h).
#include "zmq_probes.h"

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "scheduler/keys.h"

namespace hpo::bench {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

double cpu_seconds(const rusage& u) {
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

double zmq_stream(int bytes, int count, bool curve) {
  zmq::context_t ctx(1);
  zmq::socket_t server(ctx, zmq::socket_type::router), client(ctx, zmq::socket_type::dealer);
  for (auto* s : {&server, &client}) {
    s->set(zmq::sockopt::linger, 0);
    s->set(zmq::sockopt::sndhwm, 0);
    s->set(zmq::sockopt::rcvhwm, 0);
  }
  if (curve) {
    auto sk = hpo::scheduler::new_keypair();
    auto ck = hpo::scheduler::new_keypair();
    if (!sk || !ck) return 0;
    server.set(zmq::sockopt::curve_server, 1);
    server.set(zmq::sockopt::curve_secretkey, sk->secret_key);
    client.set(zmq::sockopt::curve_serverkey, sk->public_key);
    client.set(zmq::sockopt::curve_publickey, ck->public_key);
    client.set(zmq::sockopt::curve_secretkey, ck->secret_key);
  }
  server.bind("tcp://127.0.0.1:*");
  client.connect(server.get(zmq::sockopt::last_endpoint));
  const std::string payload(static_cast<std::size_t>(bytes), 'x');
  (void)client.send(zmq::buffer(payload), zmq::send_flags::none);  // the handshake, untimed
  zmq::message_t id, m;
  (void)server.recv(id);
  (void)server.recv(m);
  const auto t0 = Clock::now();
  std::thread sender([&] {
    for (int i = 0; i < count; ++i) (void)client.send(zmq::buffer(payload), zmq::send_flags::none);
  });
  for (int i = 0; i < count; ++i) {
    (void)server.recv(id);
    (void)server.recv(m);
  }
  const double s = ms_since(t0) / 1000;
  sender.join();
  return count / s;
}

Burst zmq_handshakes(int n, bool curve, bool zap) {
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  zmq::context_t ctx(2);
  std::atomic<bool> stop{false};
  std::thread handler;
  zmq::socket_t rep(ctx, zmq::socket_type::rep);
  if (zap) {
    rep.bind("inproc://zeromq.zap.01");
    handler = std::thread([&] {
      while (!stop) {
        zmq::pollitem_t item{rep.handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, std::chrono::milliseconds(20));
        if (!(item.revents & ZMQ_POLLIN)) continue;
        std::vector<zmq::message_t> req;
        do {
          req.emplace_back();
          (void)rep.recv(req.back());
        } while (req.back().more());
        const std::string id = req.size() > 1 ? req[1].to_string() : "";
        const std::vector<std::string> reply{"1.0", id, "200", "OK", "bench", ""};
        for (std::size_t i = 0; i < reply.size(); ++i) {
          (void)rep.send(zmq::buffer(reply[i]),
                         i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
        }
      }
    });
  }
  zmq::socket_t server(ctx, zmq::socket_type::router);
  server.set(zmq::sockopt::linger, 0);
  auto sk = hpo::scheduler::new_keypair();
  auto ck = hpo::scheduler::new_keypair();
  if (!sk || !ck) return {};
  if (curve) {
    server.set(zmq::sockopt::curve_server, 1);
    server.set(zmq::sockopt::curve_secretkey, sk->secret_key);
    server.set(zmq::sockopt::zap_domain, "bench");
  }
  server.bind("tcp://127.0.0.1:*");
  const std::string endpoint = server.get(zmq::sockopt::last_endpoint);
  std::vector<std::unique_ptr<zmq::socket_t>> clients;
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    auto c = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
    c->set(zmq::sockopt::linger, 0);
    if (curve) {
      c->set(zmq::sockopt::curve_serverkey, sk->public_key);
      c->set(zmq::sockopt::curve_publickey, ck->public_key);
      c->set(zmq::sockopt::curve_secretkey, ck->secret_key);
    }
    c->connect(endpoint);
    (void)c->send(zmq::str_buffer("hello"), zmq::send_flags::none);
    clients.push_back(std::move(c));
  }
  for (int i = 0; i < n; ++i) {
    zmq::message_t id, m;
    (void)server.recv(id);
    (void)server.recv(m);
  }
  Burst b;
  b.wall_ms = ms_since(t0);
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  b.cpu_ms = 1000 * (cpu_seconds(after) - cpu_seconds(before));
  stop = true;
  if (handler.joinable()) handler.join();
  return b;
}

}  // namespace hpo::bench
