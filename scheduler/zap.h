// Who may connect, and as what: the scheduler's allow-lists and its ZAP handler (ZeroMQ's
// authentication protocol, RFC 27). Every CURVE handshake on the scheduler's socket asks the
// handler, which answers from the lists; the key it accepts becomes the connection's User-Id,
// which every message from it then carries (protocol::Received::key), so the daemon checks
// the key's role on each message, not only at the handshake.
//
// Contract
// - Roles: an *agent* key may HELLO, READY, REPORT, FINISH, HEARTBEAT and BYE; a *submitter*
//   key may SUBMIT (and, later, control studies). A key may be on both lists. A key on
//   neither is refused at the handshake: its connection never delivers a message.
// - The lists are directories of NAME.key files (keys.h) plus keys given in memory (`hpo run`'s
//   ephemeral agent key). reload() (SIGHUP) replaces them whole, or not at all when a file is
//   bad; what a removed key may no longer do is the daemon's to enforce (daemon.h).
// - One handler per zmq::context_t: ZeroMQ looks for it at the fixed address
//   inproc://zeromq.zap.01.
//
// Threads: owned and called by the scheduler's loop thread, which polls socket().
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "base/error.h"

namespace hpo::scheduler {

enum class Role { kAgent, kSubmitter };

const char* role_name(Role role);

struct KeyLists {
  std::map<std::string, std::string> agents;      // public key (Z85) -> name
  std::map<std::string, std::string> submitters;  // public key (Z85) -> name

  bool allows(const std::string& key, Role role) const;
  // The key's name for logs ("agent-7"), or its first 8 characters when it is on no list.
  std::string name_of(const std::string& key) const;
};

struct KeySources {
  std::string agent_dir;                    // "" = none
  std::string submitter_dir;                // "" = none
  std::vector<std::string> agent_keys;      // extra keys allowed as agents, in memory
  std::vector<std::string> submitter_keys;  // extra keys allowed as submitters, in memory
};

// Reads the directories of `sources` and adds its in-memory keys. Errors: a directory or key
// file that cannot be read (keys.h read_key_dir), naming it.
Result<KeyLists> load_key_lists(const KeySources& sources);

class ZapHandler {
 public:
  // Binds the handler's REP socket in `context`. Errors: another handler holds the address.
  static Result<std::unique_ptr<ZapHandler>> create(zmq::context_t& context);

  // For zmq::poll.
  void* socket() { return socket_.handle(); }

  // Answers every request waiting, from `lists`: a CURVE client key on a list is accepted
  // with the key as its User-Id; anything else is refused (status 400). Returns the refusals
  // as log lines ("refused a connection from 10.0.0.7: key Abc12345... is on no allow-list").
  std::vector<std::string> answer(const KeyLists& lists);

  std::int64_t accepted() const { return accepted_; }
  std::int64_t refused() const { return refused_; }

 private:
  explicit ZapHandler(zmq::context_t& context);
  zmq::socket_t socket_;
  std::int64_t accepted_ = 0;
  std::int64_t refused_ = 0;
};

}  // namespace hpo::scheduler
