// The error value used across hpo: a code that says what kind of failure it is, and one message
// that names the place (file, JSON path, message type) and says what is wrong.
//
// The code decides what a caller does with it: a command-line tool exits 2 for kInvalidInput
// (bad usage or bad input, the user's to fix) and 1 for everything else (a runtime failure).
#pragma once

#include <version>
#if defined(__cpp_lib_expected)
#include <expected>
#else
#include "base/expected_compat.h"  // clang 14 (the sanitizer build): see that header
#endif
#include <string>
#include <string_view>
#include <utility>

namespace hpo {

enum class ErrorCode {
  kInvalidInput,  // a file, argument or message is malformed or refused: fix the input
  kNotFound,      // a named thing (study, trial, file) does not exist
  kBusy,          // a resource is held by someone else (the store's writer lock)
  kIo,            // the operating system or a library failed (disk, socket, process)
  kRuntime,       // the work itself failed: a training that diverged, a device that broke
  kInternal,      // a bug or a state that should not happen; the message says which
};

struct Error {
  std::string message;
  ErrorCode code = ErrorCode::kInvalidInput;
};

std::string_view to_string(ErrorCode code);

// A value or an Error; callers must look at it (STYLE.md habit 2).
template <class T>
using Result = std::expected<T, Error>;

// Most failures in hpo are about its input (spaces, study files, configs, messages), so that is
// the code `fail` gives unless told otherwise.
inline std::unexpected<Error> fail(std::string message) {
  return std::unexpected<Error>(Error{std::move(message), ErrorCode::kInvalidInput});
}

inline std::unexpected<Error> fail(ErrorCode code, std::string message) {
  return std::unexpected<Error>(Error{std::move(message), code});
}

// The same error with another code: for a layer that knows better what a callee's failure means
// to its own caller (the trainer marks a backend failure as a runtime failure, say).
inline std::unexpected<Error> fail(ErrorCode code, Error error) {
  error.code = code;
  return std::unexpected<Error>(std::move(error));
}

// For functions that return nothing but may fail.
using Status = std::expected<void, Error>;

}  // namespace hpo
