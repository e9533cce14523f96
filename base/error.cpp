#include "base/error.h"

namespace hpo {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidInput:
      return "invalid input";
    case ErrorCode::kNotFound:
      return "not found";
    case ErrorCode::kBusy:
      return "busy";
    case ErrorCode::kIo:
      return "I/O error";
    case ErrorCode::kRuntime:
      return "runtime failure";
    case ErrorCode::kInternal:
      return "internal error";
  }
  return "error";
}

}  // namespace hpo
