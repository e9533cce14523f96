// The client-side handshake watch (handshake.h).
#include "scheduler/handshake.h"

#include <atomic>
#include <cstdint>
#include <cstring>

namespace hpo::scheduler {
namespace {

std::atomic<std::uint64_t> g_next_monitor{0};

}  // namespace

HandshakeWatch::HandshakeWatch(zmq::context_t& context, zmq::socket_t& socket, bool curve)
    : watched_(socket), monitor_(context, zmq::socket_type::pair), curve_(curve) {}

HandshakeWatch::~HandshakeWatch() {
  // Stop the monitor before its PAIR goes away.
  zmq_socket_monitor(watched_.handle(), nullptr, 0);
}

Result<std::unique_ptr<HandshakeWatch>> HandshakeWatch::attach(zmq::context_t& context,
                                                               zmq::socket_t& socket,
                                                               bool curve) {
  const std::string address = "inproc://hpo-handshake-" + std::to_string(++g_next_monitor);
  const int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED |
                     ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
  if (zmq_socket_monitor(socket.handle(), address.c_str(), events) != 0) {
    return fail(ErrorCode::kRuntime,
                std::string("cannot watch the connection: ") + zmq_strerror(zmq_errno()));
  }
  std::unique_ptr<HandshakeWatch> w(new HandshakeWatch(context, socket, curve));
  try {
    w->monitor_.set(zmq::sockopt::linger, 0);
    w->monitor_.connect(address);
  } catch (const zmq::error_t& e) {
    return fail(ErrorCode::kRuntime, std::string("cannot watch the connection: ") + e.what());
  }
  return w;
}

std::vector<std::string> HandshakeWatch::read() {
  std::vector<std::string> out;
  for (int n = 0; n < 100; ++n) {
    zmq::message_t event, address;
    try {
      if (!monitor_.recv(event, zmq::recv_flags::dontwait)) break;
      if (event.more()) (void)monitor_.recv(address, zmq::recv_flags::none);
    } catch (const zmq::error_t&) {
      break;
    }
    if (event.size() < 6) continue;
    std::uint16_t id = 0;
    std::uint32_t value = 0;
    std::memcpy(&id, event.data(), 2);
    std::memcpy(&value, static_cast<const char*>(event.data()) + 2, 4);
    const std::string where = address.to_string();
    switch (id) {
      case ZMQ_EVENT_CONNECTED:
        connected_ = true;
        break;
      case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        connected_ = false;
        failures_ = 0;
        succeeded_ = true;
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        connected_ = false;
        ++failures_;
        out.push_back("the scheduler at " + where + " refused this client's key (status " +
                      std::to_string(value) +
                      "): its public key is not on the scheduler's allow-lists");
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        connected_ = true;  // the peer closed mid-handshake: the DISCONNECTED case says why
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        connected_ = false;
        ++failures_;
        if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
          out.push_back(curve_ ? "the scheduler at " + where +
                                     " does not use keys, but this client was given "
                                     "--key/--scheduler-key"
                               : "the scheduler at " + where +
                                     " requires keys: give --key (this client's .secret file) "
                                     "and --scheduler-key (the scheduler's .key file)");
        } else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) {
          out.push_back("the CURVE handshake with the scheduler at " + where +
                        " failed: the scheduler's key is not the one given in --scheduler-key");
        } else {
          out.push_back("the handshake with the scheduler at " + where + " failed (ZMTP error " +
                        std::to_string(value) + ")");
        }
        break;
      case ZMQ_EVENT_DISCONNECTED:
        if (connected_) {
          // Closed before the handshake finished: a CURVE server that cannot open our HELLO
          // (we pinned another key) closes without a word.
          ++failures_;
          out.push_back(curve_ ? "the scheduler at " + where +
                                     " closed the connection during the CURVE handshake: its "
                                     "key is not the one given in --scheduler-key (or it does "
                                     "not use keys)"
                               : "the scheduler at " + where +
                                     " closed the connection during the handshake: it probably "
                                     "requires keys (--key and --scheduler-key)");
        }
        connected_ = false;
        break;
      default:
        break;
    }
  }
  return out;
}

std::vector<std::string> HandshakeHistory::update(HandshakeWatch& watch) {
  const auto failed = watch.read();
  if (watch.succeeded()) failures_ = 0;
  else failures_ += static_cast<int>(failed.size());
  std::vector<std::string> news;
  for (const auto& why : failed) {
    const auto now = std::chrono::steady_clock::now();
    if (why != last_ || now - logged_ > std::chrono::seconds(30)) {
      news.push_back(why);
      logged_ = now;
    }
    last_ = why;
  }
  return news;
}

}  // namespace hpo::scheduler
