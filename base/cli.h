// Conventions every `hpo` subcommand follows (README "Command line").
//   exit 0: success; 1: runtime failure; 2: bad usage or bad input.
//   Messages go to stderr, results to stdout.
#pragma once

#include <cxxopts.hpp>
#include <iostream>
#include <optional>
#include <string>

namespace hpo::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Parses argv with `options`. On a usage error prints it to stderr and returns
// nullopt (the caller exits kExitUsage); an argument no option or positional
// takes is such an error, never ignored. On --help prints the help to stdout
// and sets `exit_code` to kExitOk, also returning nullopt.
inline std::optional<cxxopts::ParseResult> parse(cxxopts::Options& options, int argc, char** argv,
                                                 int& exit_code) {
  try {
    auto result = options.parse(argc, argv);
    if (result.count("help")) {
      std::cout << options.help() << "\n";
      exit_code = kExitOk;
      return std::nullopt;
    }
    if (!result.unmatched().empty()) {
      std::cerr << options.program() << ": unexpected argument '" << result.unmatched().front()
                << "'\n"
                << "Try '" << options.program() << " --help'.\n";
      exit_code = kExitUsage;
      return std::nullopt;
    }
    return result;
  } catch (const cxxopts::exceptions::exception& e) {
    std::cerr << options.program() << ": " << e.what() << "\n"
              << "Try '" << options.program() << " --help'.\n";
    exit_code = kExitUsage;
    return std::nullopt;
  }
}

// True when `option` was given; otherwise says "hpo COMMAND: --OPTION is required" on stderr
// (the caller exits kExitUsage).
inline bool require(const cxxopts::ParseResult& parsed, const char* option, const char* command) {
  if (parsed.count(option)) return true;
  std::cerr << "hpo " << command << ": --" << option << " is required\n";
  return false;
}

}  // namespace hpo::cli
