// Canonical form and stable hash of a sampled config, to find duplicates.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace hpo::search {

// Compact JSON with keys sorted (recursively) and one number format: a number
// with an integral value below 2^53 in magnitude prints as an integer whether
// it was stored as an int or a float (so 3 and 3.0 are the same config), any
// other number prints in the shortest form that reads back exactly, -0 prints
// as 0 and a non-finite number as null. Arrays keep their order.
std::string canonical(const nlohmann::json& config);

// 16 lower-case hex digits: FNV-1a 64 of canonical(config). Equal configs give
// equal hashes whatever their key order or number types.
std::string config_hash(const nlohmann::json& config);

}  // namespace hpo::search
