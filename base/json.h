// Bounded JSON reading: the one way hpo reads JSON from anything it did not write itself in the
// same process (study files, wire bodies, metric lines, trainer configs, checkpoint headers).
//
// A text over `max_bytes`, nested deeper than `max_depth`, or holding a number that does not
// fit a double is refused with an Error (code kInvalidInput) that names `source`, the line and
// column, and the JSON path of the value being read ("study.json:4:12: number overflow parsing
// '1e999' (at /params/lr)"); nothing throws, and nothing recurses with the input's depth (the
// depth is checked by a flat scan before nlohmann's parser sees the text).
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/error.h"

namespace hpo {

struct JsonLimits {
  std::size_t max_bytes = 16u << 20;  // a study file, config or message larger than this is refused
  int max_depth = 128;                // arrays and objects nested deeper than this are refused
  bool allow_comments = false;        // // and /* */ comments (study files allow them)
};

// Parses `text` as exactly one JSON value. `source` names where it came from ("study.json",
// "SUBMIT from agent-3", "trial 12 line 40") and starts every error message.
Result<nlohmann::json> parse_json(std::string_view text, std::string_view source,
                                  const JsonLimits& limits = {});

// Reads the file at `path` (refusing one over max_bytes before reading it whole) and parses it;
// errors start with the path ("FILE: cannot read: No such file or directory" is kNotFound, an
// unreadable file kIo; a syntax error reads "FILE:LINE:COLUMN: invalid JSON: ... (at /json/path)").
Result<nlohmann::json> read_json_file(const std::string& path, const JsonLimits& limits = {});

}  // namespace hpo
