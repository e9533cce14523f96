// Base64 (RFC 4648, with padding): how a checkpoint's bytes ride in the protocol's JSON
// bodies (scheduler/protocol.h, PUT and CHUNK).
#pragma once

#include <string>
#include <string_view>

#include "base/error.h"

namespace hpo {

std::string base64_encode(std::string_view bytes);

// Strict: the standard alphabet, padded to a multiple of 4, no whitespace, zero bits after
// the last symbol. Errors name the offset of the first bad character.
Result<std::string> base64_decode(std::string_view text);

}  // namespace hpo
