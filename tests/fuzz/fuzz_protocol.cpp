// Fuzzes the wire decoder (scheduler/protocol.h) with the frames of one message: the input is
// split at NUL bytes into frames ("hpo/1\0HELLO\0{...}"), at most 8. A message that decodes must
// encode and decode again to the same type: what the scheduler sends, it can read.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "scheduler/protocol.h"

namespace protocol = hpo::scheduler::protocol;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> frames;
  for (;;) {
    size_t nul = in.find('\0');
    if (nul == std::string_view::npos || frames.size() == 7) {
      frames.push_back(in);
      break;
    }
    frames.push_back(in.substr(0, nul));
    in.remove_prefix(nul + 1);
  }
  auto message = protocol::decode(frames);
  if (!message) return 0;
  protocol::Frames out = protocol::encode(*message);
  std::vector<std::string_view> again = {out.version, out.type, out.body};
  auto back = protocol::decode(again);
  if (!back || back->index() != message->index()) __builtin_trap();
  return 0;
}
