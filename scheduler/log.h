// The scheduler's log: one line per event on stderr, "hpo scheduler: " first.
// Loop thread only (lines from two threads could interleave).
#pragma once

#include <iostream>
#include <string>

namespace hpo::scheduler {

inline void log_line(const std::string& line) { std::cerr << "hpo scheduler: " << line << "\n"; }

// A ZeroMQ routing id (binary) as it appears in a log line: "peer 0x0080000001".
inline std::string peer_id(const std::string& routing_id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "peer 0x";
  for (unsigned char c : routing_id.substr(0, 16)) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

}  // namespace hpo::scheduler
