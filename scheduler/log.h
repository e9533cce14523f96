// The scheduler's log: one line per event on stderr, "hpo scheduler: " first.
// Loop thread only (lines from two threads could interleave).
#pragma once

#include <iostream>
#include <string>

namespace hpo::scheduler {

inline void log_line(const std::string& line) { std::cerr << "hpo scheduler: " << line << "\n"; }

}  // namespace hpo::scheduler
