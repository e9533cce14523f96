// The error value used across hpo: one message that names the place
// (file, JSON path, message type) and says what is wrong.
#pragma once

#include <expected>
#include <string>
#include <utility>

namespace hpo {

struct Error {
  std::string message;
};

// A value or an Error; callers must look at it (STYLE.md habit 2).
template <class T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> fail(std::string message) {
  return std::unexpected<Error>(Error{std::move(message)});
}

// For functions that return nothing but may fail.
using Status = std::expected<void, Error>;

}  // namespace hpo
