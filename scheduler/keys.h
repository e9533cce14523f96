// CURVE keys as files, and the socket settings that use them (ZeroMQ's CurveZMQ: each
// connection encrypted, the server proven by its public key, the client by its own).
//
// Files (`hpo keys new NAME`):
//   NAME.key     the public key: one line "public-key = <40 Z85 characters>" (after comment
//                lines starting with '#'). Shareable: allow-lists are directories of these.
//   NAME.secret  the pair: "public-key = ..." and "secret-key = ..." lines. Mode 0600; a
//                secret file that group or others may read is refused, as ssh refuses one.
//
// Contract
// - Every reader names the file and the line in its errors ("agents/a1.key:3: ...") and
//   returns them as values (code kInvalidInput for a bad file, kNotFound for a missing one).
// - Keys are kept as Z85 text (40 characters), the form libzmq's socket options take.
// - Secret keys are never logged: nothing here prints one, and Keypair has no operator<<.
//
// Threads: plain functions; any thread.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "base/error.h"

namespace hpo::scheduler {

struct Keypair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters
};

// A fresh pair from the OS's random source (zmq_curve_keypair). Errors: libzmq built
// without CURVE.
Result<Keypair> new_keypair();

// Writes DIR/NAME.key and DIR/NAME.secret (0600), creating DIR (0700) if needed. NAME is
// letters, digits, '-', '_' and '.', 1..64 characters, not starting with '.'. Refuses to
// replace an existing file (a rotated key is a new name, or the old files removed first).
Status write_keypair(const std::string& dir, const std::string& name, const Keypair& keys);

// The public key in a .key file (or the public half of a .secret file).
Result<std::string> read_public_key(const std::string& file);

// Both keys of a .secret file. Errors also: the file is readable by group or others.
Result<Keypair> read_keypair(const std::string& file);

// Every *.key file in `dir`, as public key -> name (the file name without ".key"). Other
// files (a .secret made there by `hpo keys new NAME --dir DIR`) are ignored. Errors: `dir` missing or unreadable, a bad key file (naming it), the same key
// under two names.
Result<std::map<std::string, std::string>> read_key_dir(const std::string& dir);

// A Z85 key is 40 characters from the Z85 alphabet.
bool valid_z85_key(const std::string& key);

// Socket settings, before bind/connect. Both catch zmq::error_t and return it.
// The server side: CURVE server with `keys`, its ZAP domain "hpo" (the daemon's ZAP handler
// answers for it).
Status make_curve_server(zmq::socket_t& socket, const Keypair& keys);
// The client side: `keys` is this client's pair, `server_key` the server's public key it pins.
Status make_curve_client(zmq::socket_t& socket, const Keypair& keys, const std::string& server_key);

// Whether a bind endpoint is reachable from this machine only (tcp on 127.0.0.0/8, ::1 or
// "localhost", or ipc:// and inproc://). "tcp://*:5555" and any interface name are not.
bool loopback_only(const std::string& endpoint);

}  // namespace hpo::scheduler

namespace hpo::scheduler {

// What a client (an agent, `hpo submit`) needs to speak CURVE to the scheduler.
struct ClientKeys {
  Keypair mine;        // this client's pair (its .secret file)
  std::string server;  // the scheduler's public key it pins (its .key file)
};

// From --key FILE.secret and --scheduler-key FILE.key: both or neither ("" = not given; then
// nullopt, a plaintext client). Errors: one without the other, or a bad file.
Result<std::optional<ClientKeys>> read_client_keys(const std::string& key_file,
                                                   const std::string& scheduler_key_file);

// `hpo run` hands its local agents their ephemeral keys in this environment variable, never
// on the command line (which every user of the machine can read): "AGENT_PUBLIC AGENT_SECRET
// SCHEDULER_PUBLIC". The agent reads it and removes it at once, so its trials do not inherit it.
inline constexpr const char* kRunKeysVariable = "HPO_RUN_KEYS";
std::string encode_run_keys(const ClientKeys& keys);
Result<ClientKeys> decode_run_keys(const std::string& text);

}  // namespace hpo::scheduler
