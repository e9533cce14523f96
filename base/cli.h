// Conventions every `hpo` subcommand follows (README "Command line").
//   exit 0: success; 1: runtime failure; 2: bad usage or bad input.
//   Messages go to stderr, results to stdout.
#pragma once

#include <algorithm>
#include <cxxopts.hpp>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

namespace hpo::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// The option group --help leaves out. A renamed option keeps its old spelling here for one
// release, with a description that says what to use instead ("use --kill-grace-seconds"): it is
// accepted, parse() says on stderr that it is deprecated, and the caller maps its value onto
// the new option (renamed() below).
inline constexpr const char* kHiddenGroup = "hidden";

// Parses argv with `options`. On a usage error prints it to stderr and returns
// nullopt (the caller exits kExitUsage); an argument no option or positional
// takes is such an error, never ignored. On --help prints the help of every
// group but kHiddenGroup to stdout and sets `exit_code` to kExitOk, also
// returning nullopt. Each deprecated spelling given gets one line on stderr:
// "hpo agent: --grace-ms is deprecated; use --shutdown-grace-seconds (in seconds)".
inline std::optional<cxxopts::ParseResult> parse(cxxopts::Options& options, int argc, char** argv,
                                                 int& exit_code) {
  try {
    auto result = options.parse(argc, argv);
    const auto groups = options.groups();
    const bool has_hidden = std::find(groups.begin(), groups.end(), kHiddenGroup) != groups.end();
    if (result.count("help")) {
      std::vector<std::string> shown;
      for (const auto& g : groups) {
        if (g != kHiddenGroup) shown.push_back(g);
      }
      std::cout << options.help(shown) << "\n";
      exit_code = kExitOk;
      return std::nullopt;
    }
    if (has_hidden) {
      for (const auto& o : options.group_help(kHiddenGroup).options) {
        if (!o.l.empty() && result.count(o.l.front())) {
          std::cerr << options.program() << ": --" << o.l.front() << " is deprecated; " << o.desc
                    << "\n";
        }
      }
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

// The value of an option that was renamed: `name`'s (or its default), unless only the old
// spelling `old_name` (in kHiddenGroup, of type Old) was given; then `convert` of its value
// (e.g. milliseconds to seconds). When both are given the new spelling wins.
template <class T, class Old, class Convert>
T renamed(const cxxopts::ParseResult& parsed, const std::string& name, const std::string& old_name,
          Convert convert) {
  if (parsed.count(old_name) && !parsed.count(name)) return convert(parsed[old_name].as<Old>());
  return parsed[name].as<T>();
}

// True when `option` was given; otherwise says "hpo COMMAND: --OPTION is required" on stderr
// (the caller exits kExitUsage).
inline bool require(const cxxopts::ParseResult& parsed, const char* option, const char* command) {
  if (parsed.count(option)) return true;
  std::cerr << "hpo " << command << ": --" << option << " is required\n";
  return false;
}

}  // namespace hpo::cli
