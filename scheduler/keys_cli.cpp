// `hpo keys new NAME [--dir DIR]`: a CURVE key pair as two files (scheduler/keys.h).
#include <iostream>
#include <string>

#include "base/cli.h"
#include "scheduler/cli.h"
#include "scheduler/keys.h"

namespace hpo::scheduler {

int keys_command(int argc, char** argv) {
  cxxopts::Options options(
      "hpo keys",
      "Make CURVE keys: `hpo keys new NAME` writes NAME.key (public: copy it to the allow-list "
      "directories that trust it) and NAME.secret (mode 0600: it stays on its host).");
  // clang-format off
  options.add_options()
      ("action", "new", cxxopts::value<std::string>())
      ("name", "key name (letters, digits, '-', '_', '.')", cxxopts::value<std::string>())
      ("dir", "where to write the files", cxxopts::value<std::string>()->default_value("."))
      ("h,help", "show this help");
  // clang-format on
  options.parse_positional({"action", "name"});
  options.positional_help("new NAME");
  int code = cli::kExitOk;
  auto parsed = cli::parse(options, argc, argv, code);
  if (!parsed) return code;
  if (!parsed->count("action") || (*parsed)["action"].as<std::string>() != "new") {
    std::cerr << "hpo keys: expected `hpo keys new NAME [--dir DIR]`\n";
    return cli::kExitUsage;
  }
  if (!cli::require(*parsed, "name", "keys")) return cli::kExitUsage;
  const std::string name = (*parsed)["name"].as<std::string>();
  const std::string dir = (*parsed)["dir"].as<std::string>();
  auto pair = new_keypair();
  if (!pair) {
    std::cerr << "hpo keys: " << pair.error().message << "\n";
    return cli::kExitFailure;
  }
  if (auto w = write_keypair(dir, name, *pair); !w) {
    std::cerr << "hpo keys: " << w.error().message << "\n";
    return w.error().code == ErrorCode::kIo ? cli::kExitFailure : cli::kExitUsage;
  }
  const std::string base = dir + "/" + name;
  std::cout << "wrote " << base << ".key (public: " << pair->public_key << ")\n"
            << "wrote " << base << ".secret (mode 0600; keep it on this host)\n";
  return cli::kExitOk;
}

}  // namespace hpo::scheduler
