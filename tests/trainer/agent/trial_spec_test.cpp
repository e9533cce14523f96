#include "trainer/agent/trial_spec.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "tests/support/temp_dir.h"

using hpo::agent::build_launch;
using hpo::agent::deep_merge;
using hpo::agent::fill_placeholders;
using hpo::agent::shell_quote;
using hpo::agent::TrialContext;
using nlohmann::json;

namespace {

std::string env_of(const hpo::agent::TrialLaunch& l, const std::string& key) {
  for (const auto& [k, v] : l.child.env) {
    if (k == key) return v;
  }
  return "<unset>";
}

TrialContext context() {
  TrialContext ctx;
  ctx.study = "fmnist";
  ctx.number = 7;
  ctx.attempt = 2;
  ctx.workdir = "/tmp/hpo-work";
  ctx.hpo_binary = "/opt/hpo/bin/hpo";
  return ctx;
}

}  // namespace

TEST_CASE("deep merge overrides leaves and keeps the rest of the base", "[trial_spec]") {
  json base = {
      {"data", {{"dir", "/d"}, {"train_limit", 0}}},
      {"solver", {{"epochs", 3}, {"lr", 0.1}, {"optimizer", {{"type", "sgd"}, {"momentum", 0.9}}}}},
      {"seed", 1}};
  json config = {{"solver", {{"lr", 0.01}, {"optimizer", {{"type", "adam"}}}}},
                 {"net", {{"dense", json::array({{{"units", 64}}})}}}};
  json merged = deep_merge(base, config);
  CHECK(merged["data"] == base["data"]);
  CHECK(merged["solver"]["epochs"] == 3);
  CHECK(merged["solver"]["lr"] == 0.01);
  CHECK(merged["solver"]["optimizer"]["type"] == "adam");
  CHECK(merged["solver"]["optimizer"]["momentum"] == 0.9);  // objects merge key by key
  CHECK(merged["net"]["dense"][0]["units"] == 64);
  CHECK(merged["seed"] == 1);
  // Arrays replace, never merge.
  CHECK(deep_merge(json{{"a", {1, 2, 3}}}, json{{"a", {9}}})["a"] == json{9});
}

TEST_CASE("shell quoting leaves safe words alone and quotes everything else", "[trial_spec]") {
  CHECK(shell_quote("0.001") == "0.001");
  CHECK(shell_quote("relu") == "relu");
  CHECK(shell_quote("/a/b-c_d.txt") == "/a/b-c_d.txt");
  CHECK(shell_quote("") == "''");
  CHECK(shell_quote("two words") == "'two words'");
  CHECK(shell_quote("it's") == "'it'\\''s'");
  CHECK(shell_quote("$(rm -rf /)") == "'$(rm -rf /)'");
  CHECK(shell_quote("[64,32]") == "'[64,32]'");
}

TEST_CASE("placeholders are filled from the config and shell-quoted", "[trial_spec]") {
  json config = {
      {"solver", {{"lr", 0.001}, {"batch_size", 128}, {"nesterov", true}}},
      {"name", "my run"},
      {"net", {{"layers", json::array({64, 32})}, {"conv", json::array({{{"filters", 16}}})}}},
      {"opt", {{"type", "adam"}, {"beta1", 0.9}}}};
  auto line = fill_placeholders(
      "python3 train.py --lr {solver.lr} --bs {solver.batch_size} --nesterov {solver.nesterov} "
      "--name {name} --layers {net.layers} --f {net.conv.0.filters} --opt {opt}",
      config);
  REQUIRE(line.has_value());
  CHECK(*line ==
        "python3 train.py --lr 0.001 --bs 128 --nesterov true --name 'my run' --layers '[64,32]' "
        "--f 16 --opt '{\"beta1\":0.9,\"type\":\"adam\"}'");
}

TEST_CASE("literal braces and shell variables survive placeholder filling", "[trial_spec]") {
  json config = {{"x", 1}};
  auto line = fill_placeholders("echo ${HOME} {{x}} { echo a; } {x} '{}'", config);
  REQUIRE(line.has_value());
  CHECK(*line == "echo ${HOME} {x} { echo a; } 1 '{}'");
}

TEST_CASE("an unknown placeholder is an error that names it", "[trial_spec]") {
  json config = {{"solver", {{"lr", 0.1}}}, {"layers", json::array({1})}};
  auto missing = fill_placeholders("train --m {solver.momentum}", config);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().message ==
        "command: placeholder {solver.momentum}: no such key 'momentum' in the trial's config at "
        "solver");
  auto past_end = fill_placeholders("train {layers.3}", config);
  REQUIRE_FALSE(past_end.has_value());
  CHECK(past_end.error().message.find("index 3 is past the end of 'layers'") != std::string::npos);
  // The same failure surfaces from build_launch: the agent reports the trial FAILED with it.
  auto launch = build_launch(json{{"kind", "command"}, {"command", "x {nope}"}}, config, context());
  REQUIRE_FALSE(launch.has_value());
  CHECK(launch.error().message.find("{nope}") != std::string::npos);
}

TEST_CASE("agent placeholders give the config file and the trial number", "[trial_spec]") {
  auto launch = build_launch(
      json{{"kind", "command"}, {"command", "run --config {hpo.config_file} --trial {hpo.trial}"}},
      json{{"lr", 0.1}}, context());
  REQUIRE(launch.has_value());
  CHECK(launch->child.argv ==
        std::vector<std::string>{
            hpo::agent::command_shell(), "-c",
            "run --config /tmp/hpo-work/fmnist/trial-7-attempt-2/config.json --trial 7"});
}

TEST_CASE("a native trial runs hpo train on the merged config", "[trial_spec]") {
  json trial = {{"kind", "native"},
                {"base", {{"solver", {{"epochs", 2}, {"lr", 0.1}}}}},
                {"device", "auto"},
                {"threads", 2},
                {"timeout_seconds", 60}};
  auto ctx = context();
  auto launch = build_launch(trial, json{{"solver", {{"lr", 0.02}}}}, ctx);
  REQUIRE(launch.has_value());
  CHECK(launch->dir == "/tmp/hpo-work/fmnist/trial-7-attempt-2");
  CHECK(launch->config_path == "/tmp/hpo-work/fmnist/trial-7-attempt-2/config.json");
  CHECK(launch->child.log_path == "/tmp/hpo-work/fmnist/trial-7-attempt-2/log.txt");
  CHECK(launch->child.argv == std::vector<std::string>{"/opt/hpo/bin/hpo", "train", "--config",
                                                       launch->config_path, "--device", "cpu",
                                                       "--threads", "2"});
  CHECK(launch->config == json{{"solver", {{"epochs", 2}, {"lr", 0.02}}}});
  CHECK(launch->child.timeout_seconds == 60);
  CHECK(launch->child.bare_json_metrics);
  CHECK(env_of(*launch, "CUDA_VISIBLE_DEVICES") == "");
  CHECK(env_of(*launch, "HPO_TRIAL_CONFIG") == launch->config_path);
  CHECK(env_of(*launch, "HPO_TRIAL_NUMBER") == "7");
  CHECK(env_of(*launch, "HPO_STUDY") == "fmnist");
  CHECK(env_of(*launch, "OMP_NUM_THREADS") == "2");

  ctx.gpu = "3";
  launch = build_launch(trial, json::object(), ctx);
  REQUIRE(launch.has_value());
  CHECK(launch->child.argv[5] == "cuda:0");  // the child sees only its slot's GPU
  CHECK(env_of(*launch, "CUDA_VISIBLE_DEVICES") == "3");
}

TEST_CASE("a command trial runs through the shell with its env and workdir", "[trial_spec]") {
  json trial = {{"kind", "command"},
                {"command", "python3 train.py --lr {lr}"},
                {"workdir", "/srv/exp"},
                {"env", {{"PYTHONUNBUFFERED", "1"}, {"CUDA_VISIBLE_DEVICES", "7"}}}};
  auto launch = build_launch(trial, json{{"lr", 0.5}}, context());
  REQUIRE(launch.has_value());
  CHECK(launch->child.argv ==
        std::vector<std::string>{hpo::agent::command_shell(), "-c", "python3 train.py --lr 0.5"});
  CHECK(launch->child.cwd == "/srv/exp");
  CHECK_FALSE(launch->child.bare_json_metrics);
  CHECK(env_of(*launch, "PYTHONUNBUFFERED") == "1");
  CHECK(env_of(*launch, "CUDA_VISIBLE_DEVICES") == "7");  // the study's env wins
  CHECK(env_of(*launch, "OMP_NUM_THREADS") == "<unset>");
}

TEST_CASE("a command trial's threads set OMP, MKL and OpenBLAS thread counts unless its env does",
          "[trial_spec]") {
  json trial = {{"kind", "command"}, {"command", "python3 train.py"}, {"threads", 3}};
  auto launch = build_launch(trial, json::object(), context());
  REQUIRE(launch.has_value());
  for (const char* name : {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"}) {
    INFO(name);
    CHECK(env_of(*launch, name) == "3");
  }
  trial["env"] = {{"MKL_NUM_THREADS", "1"}};
  launch = build_launch(trial, json::object(), context());
  REQUIRE(launch.has_value());
  CHECK(env_of(*launch, "OMP_NUM_THREADS") == "3");
  CHECK(env_of(*launch, "MKL_NUM_THREADS") == "1");  // the study's env wins
  CHECK(env_of(*launch, "OPENBLAS_NUM_THREADS") == "3");
  std::size_t mkl = 0;
  for (const auto& [k, v] : launch->child.env) mkl += k == "MKL_NUM_THREADS";
  CHECK(mkl == 1);
}

TEST_CASE("every path handed to a trial is absolute, even under a relative workdir",
          "[trial_spec]") {
  auto ctx = context();
  ctx.workdir = "hpo-work";  // `hpo agent --workdir hpo-work`, relative to the agent's directory
  json trial = {{"kind", "command"},
                {"command", "run {hpo.config_file} {hpo.trial_dir}"},
                {"workdir", "/srv/exp"}};
  auto launch = build_launch(trial, json::object(), ctx);
  REQUIRE(launch.has_value());
  const auto expected = std::filesystem::current_path() / "hpo-work/fmnist/trial-7-attempt-2";
  CHECK(launch->dir == expected.string());
  CHECK(launch->config_path == (expected / "config.json").string());
  CHECK(launch->child.log_path == (expected / "log.txt").string());
  CHECK(env_of(*launch, "HPO_TRIAL_CONFIG") == launch->config_path);
  CHECK(env_of(*launch, "HPO_TRIAL_DIR") == launch->dir);
  CHECK(launch->child.argv[2] ==
        "run " + shell_quote(launch->config_path) + " " + shell_quote(launch->dir));
  ctx.workdir = "./a/../hpo-work/";
  auto again = build_launch(trial, json::object(), ctx);
  REQUIRE(again.has_value());
  CHECK(again->dir == expected.string());  // normalized: no "." or ".." parts
}

TEST_CASE("builtin trials are not run as child processes", "[trial_spec]") {
  auto launch =
      build_launch(json{{"kind", "builtin"}, {"function", "branin"}}, json::object(), context());
  REQUIRE_FALSE(launch.has_value());
  CHECK(launch.error().message.find("trial.kind") != std::string::npos);
}

TEST_CASE("the trial directory gets the config file", "[trial_spec]") {
  auto ctx = context();
  const hpo::test::TempDir dir("spec-test");
  ctx.workdir = dir.path.string();
  ctx.study = "a/b";  // a slash cannot escape the study's directory
  auto launch = build_launch(json{{"kind", "native"}}, json{{"lr", 0.1}}, ctx);
  REQUIRE(launch.has_value());
  CHECK(launch->dir == ctx.workdir + "/a_b/trial-7-attempt-2");
  REQUIRE(hpo::agent::write_trial_files(*launch).has_value());
  std::ifstream in(launch->config_path);
  CHECK(json::parse(in) == json{{"lr", 0.1}});
}

TEST_CASE("the shell execs a command trial so that the trial dies with the agent", "[trial_spec]") {
  // A shell that forks would leave the trial as a grandchild that PR_SET_PDEATHSIG
  // does not reach: the trial must be the process the agent started.
  hpo::agent::ChildSpec spec;
  spec.argv = {hpo::agent::command_shell(), "-c",
               "cd / && /bin/sh -c 'echo \"HPO_METRIC {\\\"pid\\\": $$}\"'"};
  auto child = hpo::agent::ChildProcess::start(spec);
  REQUIRE(child.has_value());
  while (!(*child)->finished()) {
    (*child)->pump();
    ::usleep(1000);
  }
  auto metrics = (*child)->take_metrics();
  REQUIRE(metrics.size() == 1);
  CHECK(metrics[0].values["pid"] == (*child)->pid());
}

TEST_CASE("a native trial runs the agent's own binary even after it was replaced on disk",
          "[trial_spec]") {
  auto ctx = context();
  ctx.hpo_binary.clear();
  auto launch = build_launch(json{{"kind", "native"}}, json::object(), ctx);
  REQUIRE(launch.has_value());
  // Not readlink(/proc/self/exe): that reads "<path> (deleted)" after a rebuild.
  CHECK(launch->child.argv[0] == "/proc/self/exe");
}

TEST_CASE("a resumed native trial continues from a copy of its checkpoint", "[trial_spec]") {
  auto ctx = context();
  const hpo::test::TempDir dir("spec-resume");
  ctx.workdir = dir.path.string();
  const std::string trial = ctx.workdir + "/fmnist/trial-7-attempt-2";
  ctx.checkpoint_dir = trial + "/checkpoint";
  ctx.resume_from = trial + "/resume";
  std::filesystem::create_directories(ctx.resume_from + "/sub");
  std::ofstream(ctx.resume_from + "/sub/state.bin") << "weights";
  auto launch = build_launch(json{{"kind", "native"}}, json::object(), ctx);
  REQUIRE(launch.has_value());
  const auto& argv = launch->child.argv;
  REQUIRE(argv.size() >= 3);
  CHECK(std::vector<std::string>(argv.end() - 3, argv.end()) ==
        std::vector<std::string>{"--checkpoint", ctx.checkpoint_dir, "--resume"});
  CHECK(env_of(*launch, "HPO_CHECKPOINT_DIR") == ctx.checkpoint_dir);
  CHECK(env_of(*launch, "HPO_RESUME_FROM") == ctx.resume_from);
  CHECK(env_of(*launch, "HPO_PAUSE") == "<unset>");
  REQUIRE(hpo::agent::write_trial_files(*launch).has_value());
  CHECK(hpo::test::read_text(ctx.checkpoint_dir + "/sub/state.bin") == "weights");

  // A fresh start gets an empty checkpoint directory, whatever an earlier run left there.
  ctx.resume_from.clear();
  ctx.pausable = true;
  auto fresh = build_launch(json{{"kind", "native"}}, json::object(), ctx);
  REQUIRE(fresh.has_value());
  CHECK(fresh->child.argv.back() == ctx.checkpoint_dir);
  CHECK(env_of(*fresh, "HPO_PAUSE") == "1");
  REQUIRE(hpo::agent::write_trial_files(*fresh).has_value());
  CHECK(std::filesystem::is_empty(ctx.checkpoint_dir));
}
