// The wire protocol's socket side (protocol.h): send, receive with its limits, and making a
// FINISH fit the body limit before it is sent.
#include <algorithm>
#include <iterator>

#include "scheduler/protocol.h"

namespace hpo::scheduler::protocol {

Status send(zmq::socket_t& socket, const Message& message,
            std::optional<std::string_view> routing_id) {
  Frames f = encode(message);
  try {
    if (routing_id) {
      if (!socket.send(zmq::buffer(*routing_id),
                       zmq::send_flags::sndmore | zmq::send_flags::dontwait))
        return fail(ErrorCode::kBusy, "send " + f.type + ": peer pipe full");
    }
    if (!socket.send(zmq::buffer(f.version),
                     zmq::send_flags::sndmore | zmq::send_flags::dontwait) ||
        !socket.send(zmq::buffer(f.type), zmq::send_flags::sndmore | zmq::send_flags::dontwait) ||
        !socket.send(zmq::buffer(f.body), zmq::send_flags::dontwait)) {
      return fail(ErrorCode::kBusy, "send " + f.type + ": pipe full");
    }
  } catch (const zmq::error_t& e) {
    return fail("send " + f.type + ": " + e.what());
  }
  return {};
}

std::optional<Received> receive(zmq::socket_t& socket, bool router) {
  // Only the frames a message may have are kept; the rest of a longer message is read and
  // dropped frame by frame, so that the next message starts at a frame boundary and this one
  // is never held whole by this code.
  const std::size_t keep = kFrameCount + (router ? 1 : 0);
  std::vector<zmq::message_t> parts;
  std::size_t count = 0;
  std::size_t bytes = 0;  // of the frames after the routing id
  std::string key;
  try {
    zmq::message_t part;
    if (!socket.recv(part, zmq::recv_flags::dontwait)) return std::nullopt;
    while (true) {
      // Set by the ZAP handler at the handshake, on every frame that came over the wire (not
      // on the ROUTER's own routing id frame); NULL on a plaintext connection.
      if (key.empty()) {
        if (const char* user = zmq_msg_gets(part.handle(), "User-Id")) key = user;
      }
      ++count;
      if (!(router && count == 1)) bytes += part.size();
      const bool more = part.more();
      if (parts.size() < keep) parts.push_back(std::move(part));
      if (!more) break;
      // The rest of a multipart message is already there once the first frame is.
      part = zmq::message_t();
      if (!socket.recv(part, zmq::recv_flags::none)) break;
    }
  } catch (const zmq::error_t& e) {
    return Received{{}, {}, fail(ErrorCode::kIo, std::string("receive: ") + e.what()), true};
  }
  Received out{{}, key, fail("bad message: no frames"), false};
  std::size_t first = 0;
  if (router) {
    out.routing_id = parts[0].to_string();
    first = 1;
  }
  std::vector<std::string_view> frames;
  for (std::size_t i = first; i < parts.size(); ++i) frames.push_back(parts[i].to_string_view());
  const std::size_t frame_count = count - first;
  const std::string type = frames.size() >= 2 ? shown_frame(frames[1]) + ": " : "";
  if (frame_count > kFrameCount) {
    out.message =
        fail(type + "message of " + std::to_string(frame_count) + " frames is over the limit of " +
             std::to_string(kFrameCount) + " frames (version, type, body)");
  } else if (bytes > kMaxMessageBytes) {
    out.message = fail(type + "message of " + std::to_string(bytes) +
                       " bytes is over the limit of " + std::to_string(kMaxMessageBytes) +
                       " bytes (a body of at most " + std::to_string(kMaxBodyBytes) + ")");
  } else {
    out.message = decode(frames);
  }
  return out;
}

std::string fit_to_limit(Finish& finish) {
  auto size = [&] { return encode(finish).body.size(); };
  std::size_t bytes = size();
  if (bytes <= kMaxBodyBytes) return "";
  const std::size_t original = bytes;
  // Room for the note at the head of the log tail.
  const std::size_t budget = kMaxBodyBytes - 1024;
  std::string what;
  if (!finish.log_tail.empty()) {
    // Escaping may make a byte of the tail take up to six in the body: cut, measure, repeat.
    const std::size_t had = finish.log_tail.size();
    while (bytes > budget && !finish.log_tail.empty()) {
      std::size_t cut =
          std::min(finish.log_tail.size(), std::max<std::size_t>(bytes - budget, 4096));
      finish.log_tail.erase(0, cut);
      bytes = size();
    }
    what = "log tail cut from " + std::to_string(had) + " to " +
           std::to_string(finish.log_tail.size()) + " bytes";
  }
  if (bytes > budget && !finish.metrics.empty()) {
    const std::size_t had = finish.metrics.size();
    while (bytes > budget && !finish.metrics.empty()) {
      // Dropping names one by one measures the body each time: drop a batch per measure.
      std::size_t drop = std::max<std::size_t>(1, finish.metrics.size() / 8);
      while (drop-- > 0 && !finish.metrics.empty())
        finish.metrics.erase(std::prev(finish.metrics.end()));
      bytes = size();
    }
    what += std::string(what.empty() ? "" : ", ") + std::to_string(had - finish.metrics.size()) +
            " of " + std::to_string(had) + " final metrics dropped";
  }
  if (bytes > budget) {
    // Only the error (or names) are left to blame: end the trial FAILED with a size error.
    finish.outcome = Outcome::kFailed;
    finish.error = "FINISH of " + std::to_string(original) +
                   " bytes does not fit the message limit of " + std::to_string(kMaxBodyBytes) +
                   " bytes";
    finish.log_tail.clear();
    finish.metrics.clear();
    return finish.error;
  }
  std::string note = "FINISH of " + std::to_string(original) + " bytes over the message limit of " +
                     std::to_string(kMaxBodyBytes) + " bytes: " + what;
  finish.log_tail = "[hpo] " + note + "\n" + finish.log_tail;
  return note;
}

}  // namespace hpo::scheduler::protocol
