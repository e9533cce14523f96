// SHA-256 of bytes and files (libsodium, which ZeroMQ's CURVE already brings): how a checkpoint
// that crossed the network is known to be the one that was sent.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "base/error.h"

namespace hpo {

// A running hash: update() any number of times, then hex() once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::string_view bytes);
  // The digest as 64 lowercase hex digits. The hash is finished: update() after it is a bug.
  std::string hex();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string sha256_hex(std::string_view bytes);

// The file's digest; kIo naming the file when it cannot be read.
Result<std::string> sha256_file(const std::filesystem::path& file);

// 64 lowercase hex digits.
bool is_sha256_hex(std::string_view text);

}  // namespace hpo
