// `hpo train --config CONFIG.json [--data DIR] [--device auto|cpu|cuda:N] [--threads N]
//            [--checkpoint DIR] [--resume] [--metrics-fd N]`
// Metric lines (trainer/nn/train.h) go to stdout, or to --metrics-fd / $HPO_METRICS_FD; progress
// to stderr. Exit: 0 done, 1 runtime failure, 2 bad usage or config, 75 stopped by SIGTERM/SIGINT
// after a checkpoint (nn::kExitStopped).
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "base/cli.h"
#include "base/json.h"
#include "trainer/nn/backend.h"
#include "trainer/nn/cli.h"
#include "trainer/nn/spec.h"
#include "trainer/nn/train.h"

namespace hpo::nn {
namespace {

std::atomic<bool> g_train_stop{false};

extern "C" void on_train_signal(int) { g_train_stop.store(true); }

// Writes all of `s` to fd, retrying on EINTR and short writes.
bool write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += size_t(n);
  }
  return true;
}

}  // namespace

int train_command(int argc, char** argv) {
  cxxopts::Options options("hpo train", "Train one network from a config (a native trial).");
  options.add_options()("config", "trainer config JSON file", cxxopts::value<std::string>())(
      "data", "data directory (overrides data.dir)", cxxopts::value<std::string>())(
      "device", "auto, cpu, cuda or cuda:N", cxxopts::value<std::string>()->default_value("auto"))(
      "threads", "CPU threads (0 = all cores)", cxxopts::value<int>()->default_value("0"))(
      "checkpoint", "directory for checkpoints (written after every epoch and on SIGTERM)",
      cxxopts::value<std::string>())(
      "resume", "continue from the checkpoint in --checkpoint when there is one")(
      "metrics-fd", "write metric lines to this file descriptor instead of stdout",
      cxxopts::value<int>())("h,help", "show this help");
  int code = cli::kExitOk;
  auto parsed = cli::parse(options, argc, argv, code);
  if (!parsed) return code;
  if (!parsed->count("config")) {
    std::cerr << "hpo train: --config is required\n";
    return cli::kExitUsage;
  }
  const std::string path = (*parsed)["config"].as<std::string>();
  auto read = read_json_file(path);
  if (!read) {
    std::cerr << "hpo train: " << read.error().message << "\n";
    return cli::kExitUsage;
  }
  nlohmann::json json = std::move(*read);
  if (parsed->count("data") && json.is_object()) {
    if (!json.contains("data") || !json["data"].is_object())
      json["data"] = nlohmann::json::object();
    json["data"]["dir"] = (*parsed)["data"].as<std::string>();
  }
  auto config = nn::parse_train_config(json);
  if (!config) {
    std::cerr << "hpo train: " << path << ": " << config.error().message << "\n";
    return cli::kExitUsage;
  }

  int metrics_fd = 1;
  if (parsed->count("metrics-fd")) {
    metrics_fd = (*parsed)["metrics-fd"].as<int>();
  } else if (const char* env = std::getenv("HPO_METRICS_FD"); env && *env) {
    metrics_fd = std::atoi(env);
  }
  if (metrics_fd < 0) {
    std::cerr << "hpo train: the metrics descriptor must be >= 0\n";
    return cli::kExitUsage;
  }
  const int threads = (*parsed)["threads"].as<int>();
  auto backend = nn::make_backend((*parsed)["device"].as<std::string>(), threads);
  if (!backend) {
    std::cerr << "hpo train: " << backend.error().message << "\n";
    // A well-formed device that cannot be served (no GPU, built without CUDA)
    // is a runtime failure; a malformed one is bad usage.
    return nn::is_device_name((*parsed)["device"].as<std::string>()) ? cli::kExitFailure
                                                                     : cli::kExitUsage;
  }

  nn::RunOptions opt;
  if (parsed->count("checkpoint")) opt.checkpoint_dir = (*parsed)["checkpoint"].as<std::string>();
  opt.resume = parsed->count("resume") > 0;
  if (opt.resume && opt.checkpoint_dir.empty()) {
    std::cerr << "hpo train: --resume needs --checkpoint DIR\n";
    return cli::kExitUsage;
  }
  opt.stop = &g_train_stop;
  bool metrics_ok = true;
  opt.metric = [&](const std::string& line) {
    if (metrics_ok && !write_all(metrics_fd, line + "\n")) {
      metrics_ok = false;
      std::cerr << "hpo train: cannot write metrics to descriptor " << metrics_fd << "\n";
    }
  };
  opt.progress = [](const std::string& line) { std::cerr << line << "\n"; };
  std::signal(SIGTERM, on_train_signal);
  std::signal(SIGINT, on_train_signal);

  auto outcome = nn::run_training(*config, **backend, opt);
  if (!outcome) {
    std::cerr << "hpo train: " << outcome.error().message << "\n";
    return outcome.error().code == ErrorCode::kInvalidInput ? cli::kExitUsage : cli::kExitFailure;
  }
  if (*outcome == nn::RunOutcome::kStopped) return nn::kExitStopped;
  return metrics_ok ? cli::kExitOk : cli::kExitFailure;
}

}  // namespace hpo::nn
