// A directory packed into one file, and back: how a trial's checkpoint directory travels
// between machines (issue 14: an agent uploads a paused trial's checkpoint, another agent
// fetches it to resume the trial).
//
// The format (all integers little-endian):
//   "HPOPACK1"                                  magic, 8 bytes
//   entries, in sorted path order:
//     u8 kind (1 = directory, 2 = file), u16 path length, the path (relative, '/'-separated),
//     for a file: u32 permission bits, u64 size, then the bytes
//   u8 0                                        the end; nothing may follow it
//
// Only regular files and directories are packed: a symlink, socket or device in a checkpoint
// directory is refused, naming it (a link could point anywhere on the fetching machine).
// Unpacking refuses what could escape its directory: an absolute path, an empty, "." or ".."
// component, a path met twice, and a file that ends early.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "base/error.h"

namespace hpo {

struct PackInfo {
  std::uint64_t bytes = 0;  // size of the packed file
  std::string sha256;       // of the packed file, hex
  std::int64_t files = 0;   // regular files in it
};

// Packs `dir` into `out` (created or truncated). kInvalidInput naming the entry for what
// cannot be packed, kIo for a read or write failure.
Result<PackInfo> pack_directory(const std::filesystem::path& dir,
                                const std::filesystem::path& out);

// Unpacks `packed` into `dir`, which must not exist yet (it is created). On any failure what
// was written is removed; kInvalidInput names the packed file and the offending entry.
Status unpack_directory(const std::filesystem::path& packed, const std::filesystem::path& dir);

}  // namespace hpo
