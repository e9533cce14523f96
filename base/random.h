// Unpredictable bytes from the operating system, for names a stranger must not guess (lease
// ids). Not for simulations: samplers use their own seeded generators (STYLE.md habit 4).
//
// Contract
// - The bytes come from the kernel's CSPRNG: getrandom(2), or /dev/urandom where the system
//   call is missing. Never from a seeded generator, never from std::random_device (which a
//   library may implement as a seeded generator).
// - An error (kIo) when neither source answers; nothing is made up in that case.
//
// Threads: any thread may call.
#pragma once

#include <cstddef>
#include <string>

#include "base/error.h"

namespace hpo {

// `bytes` random bytes as 2 * bytes lower-case hex digits.
Result<std::string> random_hex(std::size_t bytes);

}  // namespace hpo
