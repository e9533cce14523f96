#include "trainer/agent/trial_spec.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

namespace hpo::agent {
namespace {

bool is_path_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

std::string value_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump();  // numbers, bools, null, and compact JSON for arrays/objects
}

// Walks `path` ("a.b.0.c") through `root`. Fails naming the first missing part.
Result<const nlohmann::json*> lookup(const nlohmann::json& root, std::string_view path) {
  const nlohmann::json* node = &root;
  std::string walked;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t dot = path.find('.', pos);
    std::string key(
        path.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos));
    if (key.empty()) return fail("empty part in the path");
    if (node->is_object()) {
      auto it = node->find(key);
      if (it == node->end()) {
        return fail("no such key '" + key + "' in the trial's config" +
                    (walked.empty() ? std::string() : " at " + walked));
      }
      node = &*it;
    } else if (node->is_array()) {
      bool digits = std::all_of(key.begin(), key.end(),
                                [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
      if (!digits) return fail("'" + walked + "' is a list; '" + key + "' is not an index");
      size_t index = std::stoul(key);
      if (index >= node->size()) {
        return fail("index " + key + " is past the end of '" + walked + "' (" +
                    std::to_string(node->size()) + " elements)");
      }
      node = &(*node)[index];
    } else {
      return fail("'" + walked + "' is a " + node->type_name() + ", not an object");
    }
    walked += walked.empty() ? key : "." + key;
    if (dot == std::string_view::npos) break;
    pos = dot + 1;
  }
  return node;
}

std::string safe_dir_name(std::string s) {
  for (char& c : s) {
    if (c == '/' || c == '\0') c = '_';
  }
  if (s.empty() || s == "." || s == "..") s = "_" + s;
  return s;
}

// Not the path /proc/self/exe points to: when the binary is replaced (a rebuild,
// a package upgrade) under a running agent, that path reads "... (deleted)" and
// cannot be executed, while /proc/self/exe still runs the agent's own version.
std::string self_exe() { return "/proc/self/exe"; }

std::string number_text(double v) {
  if (v == static_cast<double>(static_cast<long long>(v)))
    return std::to_string(static_cast<long long>(v));
  return nlohmann::json(v).dump();
}

}  // namespace

std::string command_shell() {
  // bash runs the last command of `-c` in its own process (exec), so the trial
  // itself is our child and PR_SET_PDEATHSIG reaches it; dash forks, leaving a
  // grandchild that would outlive a SIGKILLed agent.
  static const std::string shell = ::access("/bin/bash", X_OK) == 0 ? "/bin/bash" : "/bin/sh";
  return shell;
}

nlohmann::json deep_merge(nlohmann::json base, const nlohmann::json& over) {
  if (!base.is_object() || !over.is_object()) return over;
  for (auto it = over.begin(); it != over.end(); ++it) {
    auto b = base.find(it.key());
    if (b != base.end() && b->is_object() && it->is_object()) {
      *b = deep_merge(std::move(*b), *it);
    } else {
      base[it.key()] = *it;
    }
  }
  return base;
}

std::string shell_quote(std::string_view s) {
  bool safe = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("_@%+=:,./-").find(c) != std::string_view::npos;
  });
  if (safe) return std::string(s);
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += "'";
  return out;
}

Result<std::string> fill_placeholders(std::string_view tmpl, const nlohmann::json& config,
                                      const nlohmann::json& extra) {
  std::string out;
  out.reserve(tmpl.size() + 64);
  size_t i = 0;
  while (i < tmpl.size()) {
    char c = tmpl[i];
    if (c == '{' && i + 1 < tmpl.size() && tmpl[i + 1] == '{') {
      out += '{';
      i += 2;
      continue;
    }
    if (c == '}' && i + 1 < tmpl.size() && tmpl[i + 1] == '}') {
      out += '}';
      i += 2;
      continue;
    }
    if (c != '{' || (i > 0 && tmpl[i - 1] == '$')) {
      out += c;
      ++i;
      continue;
    }
    size_t end = i + 1;
    while (end < tmpl.size() && is_path_char(tmpl[end])) ++end;
    if (end == i + 1 || end >= tmpl.size() || tmpl[end] != '}') {
      out += c;  // not a placeholder: `{ cmd; }` in shell, a JSON literal, ...
      ++i;
      continue;
    }
    std::string_view path = tmpl.substr(i + 1, end - i - 1);
    const nlohmann::json* value = nullptr;
    auto found = lookup(config, path);
    if (found) {
      value = *found;
    } else if (path.starts_with("hpo.") && extra.is_object()) {
      auto it = extra.find(std::string(path.substr(4)));
      if (it != extra.end()) value = &*it;
    }
    if (!value) {
      return fail("command: placeholder {" + std::string(path) + "}: " + found.error().message);
    }
    out += shell_quote(value_text(*value));
    i = end + 1;
  }
  return out;
}

std::string trial_dir(const TrialContext& ctx) {
  // Absolute, because a command trial runs in its own workdir (the study's
  // directory, usually): a path relative to the agent's directory would point
  // somewhere else there.
  std::filesystem::path root = ctx.workdir.empty() ? std::string(".") : ctx.workdir;
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(root, ec);
  if (!ec) root = absolute;  // no current directory (removed): left as given
  return (root / safe_dir_name(ctx.study) /
          ("trial-" + std::to_string(ctx.number) + "-attempt-" + std::to_string(ctx.attempt)))
      .lexically_normal()
      .string();
}

Result<TrialLaunch> build_launch(const nlohmann::json& trial, const nlohmann::json& config,
                                 const TrialContext& ctx) {
  if (!trial.is_object()) return fail("trial: must be an object");
  std::string kind = trial.value("kind", std::string());
  TrialLaunch launch;
  launch.dir = trial_dir(ctx);
  launch.config_path = (std::filesystem::path(launch.dir) / "config.json").string();
  launch.child.log_path = (std::filesystem::path(launch.dir) / "log.txt").string();
  launch.child.kill_grace_s = ctx.kill_grace_s;

  auto number_field = [&](const char* key, double fallback) -> Result<double> {
    auto it = trial.find(key);
    if (it == trial.end() || it->is_null()) return fallback;
    if (!it->is_number() || it->get<double>() < 0) {
      return fail(std::string("trial.") + key + ": must be a number >= 0");
    }
    return it->get<double>();
  };
  auto timeout = number_field("timeout_seconds", 0);
  if (!timeout) return std::unexpected(timeout.error());
  launch.child.timeout_seconds = *timeout;
  auto threads = number_field("threads", 0);
  if (!threads) return std::unexpected(threads.error());

  nlohmann::json base = trial.value("base", nlohmann::json::object());
  launch.config = base.is_object() && !base.empty() ? deep_merge(base, config) : config;

  auto& env = launch.child.env;
  env.emplace_back("HPO_TRIAL_CONFIG", launch.config_path);
  env.emplace_back("HPO_TRIAL_NUMBER", std::to_string(ctx.number));
  env.emplace_back("HPO_TRIAL_ATTEMPT", std::to_string(ctx.attempt));
  env.emplace_back("HPO_STUDY", ctx.study);
  env.emplace_back("HPO_TRIAL_DIR", launch.dir);
  env.emplace_back("CUDA_VISIBLE_DEVICES", ctx.gpu.value_or(""));
  launch.checkpoint_dir = ctx.checkpoint_dir;
  if (!ctx.checkpoint_dir.empty()) env.emplace_back("HPO_CHECKPOINT_DIR", ctx.checkpoint_dir);
  if (ctx.pausable) env.emplace_back("HPO_PAUSE", "1");
  if (!ctx.resume_from.empty()) env.emplace_back("HPO_RESUME_FROM", ctx.resume_from);
  if (*threads >= 1) {
    // The thread pools of OpenMP, MKL and OpenBLAS (PyTorch and NumPy use them)
    // default to every core, which oversubscribes a machine shared by trials.
    for (const char* name : {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"}) {
      env.emplace_back(name, number_text(*threads));
    }
  }

  if (kind == "native") {
    std::string device = trial.value("device", std::string("auto"));
    if (device == "auto") {
      device = ctx.gpu ? "cuda:0" : "cpu";
    } else if (ctx.gpu && device.starts_with("cuda")) {
      device = "cuda:0";  // the slot's GPU is the only one the child sees
    }
    launch.child.argv = {ctx.hpo_binary.empty() ? self_exe() : ctx.hpo_binary,
                         "train",
                         "--config",
                         launch.config_path,
                         "--device",
                         device,
                         "--threads",
                         number_text(*threads >= 1 ? *threads : 1)};
    if (!ctx.checkpoint_dir.empty()) {
      launch.child.argv.insert(launch.child.argv.end(), {"--checkpoint", ctx.checkpoint_dir});
      if (!ctx.resume_from.empty()) {
        launch.child.argv.emplace_back("--resume");
        launch.seed_checkpoint_from = ctx.resume_from;
      }
    }
    launch.child.bare_json_metrics = true;
  } else if (kind == "command") {
    auto cmd = trial.find("command");
    if (cmd == trial.end() || !cmd->is_string() || cmd->get<std::string>().empty()) {
      return fail("trial.command: must be a non-empty string");
    }
    nlohmann::json extra = {{"config_file", launch.config_path},
                            {"trial", ctx.number},
                            {"attempt", ctx.attempt},
                            {"trial_dir", launch.dir},
                            {"study", ctx.study},
                            {"checkpoint_dir", ctx.checkpoint_dir},
                            {"resume_from", ctx.resume_from}};
    auto line = fill_placeholders(cmd->get<std::string>(), launch.config, extra);
    if (!line) return std::unexpected(line.error());
    launch.child.argv = {command_shell(), "-c", *line};
    launch.child.bare_json_metrics = false;
    std::string workdir = trial.value("workdir", std::string("."));
    launch.child.cwd = workdir.empty() ? "." : workdir;
  } else {
    return fail("trial.kind: '" + kind + "' does not run as a child process (native or command)");
  }

  if (auto user_env = trial.find("env"); user_env != trial.end() && user_env->is_object()) {
    for (auto it = user_env->begin(); it != user_env->end(); ++it) {
      std::string value = value_text(*it);
      std::erase_if(env, [&](const auto& p) { return p.first == it.key(); });
      env.emplace_back(it.key(), value);
    }
  }
  return launch;
}

Status write_trial_files(const TrialLaunch& launch) {
  std::error_code ec;
  std::filesystem::create_directories(launch.dir, ec);
  if (ec) return fail("trial directory " + launch.dir + ": " + ec.message());
  std::string tmp = launch.config_path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << launch.config.dump(2) << "\n";
    if (!out) return fail(launch.config_path + ": cannot write");
  }
  std::filesystem::rename(tmp, launch.config_path, ec);
  if (ec) return fail(launch.config_path + ": " + ec.message());
  if (launch.checkpoint_dir.empty()) return {};
  std::filesystem::remove_all(launch.checkpoint_dir, ec);
  if (ec) return fail(launch.checkpoint_dir + ": cannot empty: " + ec.message());
  if (!launch.seed_checkpoint_from.empty()) {
    std::filesystem::copy(launch.seed_checkpoint_from, launch.checkpoint_dir,
                          std::filesystem::copy_options::recursive, ec);
    if (ec) {
      return fail(launch.checkpoint_dir + ": cannot copy the resumed checkpoint from " +
                  launch.seed_checkpoint_from + ": " + ec.message());
    }
    return {};
  }
  std::filesystem::create_directories(launch.checkpoint_dir, ec);
  if (ec) return fail(launch.checkpoint_dir + ": cannot create: " + ec.message());
  return {};
}

}  // namespace hpo::agent
