// The scheduler's checkpoint store (issue 14): the packed checkpoint directories (base/pack.h)
// of paused trials, uploaded by the agent that paused a trial and read back by the agent that
// resumes it, perhaps on another machine. Not thread-safe: the daemon's poll loop owns it.
//
// Layout: <root>/<study id>/<trial number>.<seq>.<sha256>.pack for a complete checkpoint, and
// <root>/<study id>/<trial number>.part for an upload in progress.
//
// Crash safety: an upload is written to its .part; commit() checks its size and SHA-256,
// fsyncs it, renames it to the next <seq> and fsyncs the directory, and only then removes the
// trial's older pack. So a trial's last complete checkpoint stays readable until a newer one is
// complete, whatever is killed when. open() removes .part files (uploads a crash cut short;
// the agent uploads again) and, for a trial with two packs (a crash between rename and
// removal), keeps the higher <seq>.
//
// Disk use is bounded: begin() refuses an upload that would take the store over max_bytes
// (counting what uploads in progress have reserved, and not the pack the upload replaces).
//
// Shared (share()): agents that see the root write packs to <root>/incoming/ themselves, and
// adopt() checks and moves them in; <root>/shared-id holds the token that proves the view.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"

namespace hpo::scheduler {

struct CheckpointKey {
  std::int64_t study = 0;  // the store's study id
  std::int64_t trial = 0;  // the trial's number in its study
  auto operator<=>(const CheckpointKey&) const = default;
};

struct CheckpointInfo {
  std::uint64_t bytes = 0;
  std::string sha256;  // hex, of the packed file
  std::int64_t seq = 0;
};

class CheckpointStore {
 public:
  // Opens (creating) `root`, removes unfinished uploads and reads what is there.
  static Result<CheckpointStore> open(const std::filesystem::path& root, std::uint64_t max_bytes);

  CheckpointStore(CheckpointStore&&) noexcept;
  CheckpointStore& operator=(CheckpointStore&&) noexcept;
  ~CheckpointStore();

  // Starts an upload of `bytes` bytes whose SHA-256 is `sha256`, dropping any earlier
  // unfinished upload for the trial. kBusy (naming the sizes) when it would not fit.
  Status begin(CheckpointKey key, std::uint64_t bytes, const std::string& sha256);
  // The next chunk of the trial's upload. `offset` must equal the bytes received so far, and
  // the total may not pass what begin() announced: anything else is refused and the upload
  // dropped (the agent starts it again).
  Status append(CheckpointKey key, std::uint64_t offset, std::string_view bytes);
  // Checks the size and digest of the finished upload and makes it the trial's checkpoint.
  // On a mismatch the upload is dropped and the previous checkpoint kept.
  Result<CheckpointInfo> commit(CheckpointKey key);
  // Drops the trial's unfinished upload, if any.
  void abort(CheckpointKey key);
  // Makes `from`'s complete checkpoint `to`'s too (PBT's exploit), as an upload of its bytes
  // would. kNotFound when `from` has none; the bounds of begin() apply.
  Result<CheckpointInfo> copy(CheckpointKey from, CheckpointKey to);

  // Sharing (`hpo serve --checkpoint-shared`: the root is the same directory on every agent's
  // machine). Makes <root>/incoming, removes what is there from more than an hour ago (packs
  // whose FINISH never came), and returns the store's token: <root>/shared-id, written once
  // (32 random hex digits), so an agent can tell it sees this very directory.
  Result<std::string> share();
  // An agent wrote the trial's pack to incoming/`name` (protocol::shared_pack_name): checks
  // its size and SHA-256 against what its FINISH says and the bounds of begin(), then moves it
  // into place as commit() does. On any refusal the file is removed and the trial's previous
  // checkpoint kept.
  Result<CheckpointInfo> adopt(CheckpointKey key, std::uint64_t bytes, const std::string& sha256,
                               const std::string& name);
  // The trial's complete pack, relative to the root ("" without one): an ASSIGN's resume.path.
  std::string relative_path_of(CheckpointKey key) const;

  // The trial's complete checkpoint, if it has one.
  std::optional<CheckpointInfo> find(CheckpointKey key) const;
  // Up to `max` bytes of it from `offset` ("" at or past its end). kNotFound without one.
  Result<std::string> read(CheckpointKey key, std::uint64_t offset, std::size_t max) const;
  // Deletes the trial's checkpoint and unfinished upload (its trial ended). No-op without.
  Status remove(CheckpointKey key);
  // Deletes every checkpoint of a study.
  Status remove_study(std::int64_t study);

  // Bytes on disk and reserved by uploads in progress; of one study's complete checkpoints.
  std::uint64_t usage() const;
  std::uint64_t study_bytes(std::int64_t study) const;
  std::uint64_t max_bytes() const;
  std::filesystem::path path_of(CheckpointKey key) const;  // the complete pack's file, or ""

 private:
  struct Impl;
  explicit CheckpointStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hpo::scheduler
