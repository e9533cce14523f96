// The allow-lists and the ZAP handler (zap.h).
#include "scheduler/zap.h"

#include <array>

#include "scheduler/keys.h"

namespace hpo::scheduler {

const char* role_name(Role role) { return role == Role::kAgent ? "agent" : "submitter"; }

bool KeyLists::allows(const std::string& key, Role role) const {
  return role == Role::kAgent ? agents.count(key) != 0 : submitters.count(key) != 0;
}

std::string KeyLists::name_of(const std::string& key) const {
  if (auto it = agents.find(key); it != agents.end()) return it->second;
  if (auto it = submitters.find(key); it != submitters.end()) return it->second;
  return key.substr(0, 8) + "...";
}

Result<KeyLists> load_key_lists(const KeySources& sources) {
  KeyLists lists;
  auto read = [](const std::string& dir, std::map<std::string, std::string>& into) -> Status {
    if (dir.empty()) return {};
    auto keys = read_key_dir(dir);
    if (!keys) return std::unexpected(keys.error());
    into = std::move(*keys);
    return {};
  };
  if (auto r = read(sources.agent_dir, lists.agents); !r) return std::unexpected(r.error());
  if (auto r = read(sources.submitter_dir, lists.submitters); !r) {
    return std::unexpected(r.error());
  }
  for (const auto& k : sources.agent_keys) lists.agents.emplace(k, "local-agent");
  for (const auto& k : sources.submitter_keys) lists.submitters.emplace(k, "local-submitter");
  return lists;
}

ZapHandler::ZapHandler(zmq::context_t& context) : socket_(context, zmq::socket_type::rep) {}

Result<std::unique_ptr<ZapHandler>> ZapHandler::create(zmq::context_t& context) {
  try {
    std::unique_ptr<ZapHandler> h(new ZapHandler(context));
    h->socket_.set(zmq::sockopt::linger, 0);
    h->socket_.bind("inproc://zeromq.zap.01");
    return h;
  } catch (const zmq::error_t& e) {
    return fail(ErrorCode::kRuntime,
                std::string("scheduler: cannot start the ZAP handler: ") + e.what());
  }
}

std::vector<std::string> ZapHandler::answer(const KeyLists& lists) {
  std::vector<std::string> refusals;
  // A bounded batch per call: a handshake flood cannot hold the loop.
  for (int n = 0; n < 1000; ++n) {
    // RFC 27 request: version, request id, domain, address, identity, mechanism, credentials.
    std::vector<zmq::message_t> frames;
    try {
      zmq::message_t part;
      if (!socket_.recv(part, zmq::recv_flags::dontwait)) break;
      while (true) {
        const bool more = part.more();
        if (frames.size() < 8) frames.push_back(std::move(part));
        if (!more) break;
        part = zmq::message_t();
        if (!socket_.recv(part, zmq::recv_flags::none)) break;
      }
    } catch (const zmq::error_t& e) {
      refusals.push_back(std::string("ZAP handler: receive: ") + e.what());
      break;
    }
    std::string status = "400", text = "not allowed", user;
    const std::string address = frames.size() > 3 ? frames[3].to_string() : "?";
    if (frames.size() >= 7 && frames[5].to_string_view() == "CURVE" && frames[6].size() == 32) {
      std::array<char, 41> z85{};
      zmq_z85_encode(z85.data(), static_cast<const uint8_t*>(frames[6].data()), 32);
      const std::string key(z85.data());
      if (lists.allows(key, Role::kAgent) || lists.allows(key, Role::kSubmitter)) {
        status = "200";
        text = "OK";
        user = key;
        ++accepted_;
      } else {
        ++refused_;
        text = "key is on no allow-list";
        refusals.push_back("refused a connection from " + address + ": key " + key.substr(0, 8) +
                           "... is on no allow-list");
      }
    } else {
      ++refused_;
      const std::string mechanism = frames.size() > 5 ? frames[5].to_string() : "?";
      refusals.push_back("refused a connection from " + address + ": mechanism " + mechanism +
                         " (only CURVE clients with a listed key may connect)");
    }
    const std::string version = "1.0";
    const std::string id = frames.size() > 1 ? frames[1].to_string() : "";
    try {
      socket_.send(zmq::buffer(version), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(id), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(status), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(text), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(user), zmq::send_flags::sndmore);
      socket_.send(zmq::str_buffer(""), zmq::send_flags::none);
    } catch (const zmq::error_t& e) {
      refusals.push_back(std::string("ZAP handler: send: ") + e.what());
      break;
    }
  }
  return refusals;
}

}  // namespace hpo::scheduler
