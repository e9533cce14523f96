// Training runs: resume equals an uninterrupted run, SIGTERM checkpoints and exits 75, the
// metric lines, CLI refusals, and a short real run on Fashion-MNIST. Over 450 lines: every case
// shares the synthetic IDX data set and the small config, kept in one place.
#include <sys/wait.h>
#include <zlib.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "tests/trainer/nn/nn_test_util.h"
#include "trainer/nn/train.h"

namespace hpo::nn::test {
namespace {

using nlohmann::json;

void put_be32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(char((v >> (8 * i)) & 0xff));
}

// A small separable IDX data set: 10x10 images, class k has a bright row at 2 + 3k.
void write_synthetic_idx(const TempDir& dir, const std::string& prefix, uint32_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string img, lab;
  put_be32(img, 0x803), put_be32(img, n), put_be32(img, 10), put_be32(img, 10);
  put_be32(lab, 0x801), put_be32(lab, n);
  for (uint32_t i = 0; i < n; ++i) {
    int k = int(rng() % 3);
    lab.push_back(char(k));
    for (int r = 0; r < 10; ++r)
      for (int c = 0; c < 10; ++c)
        img.push_back(char((r == 2 + 3 * k ? 150 : 0) + int(rng() % 100)));
  }
  for (auto& [name, bytes] : {std::pair{prefix + "-images-idx3-ubyte.gz", img},
                              std::pair{prefix + "-labels-idx1-ubyte.gz", lab}}) {
    gzFile f = gzopen((dir / name).c_str(), "wb");
    REQUIRE(f);
    gzwrite(f, bytes.data(), unsigned(bytes.size()));
    gzclose(f);
  }
}

json small_config(const std::string& data_dir, int epochs) {
  return {{"data", {{"dir", data_dir}, {"validation", 40}}},
          {"net",
           {{"layers", json::array({{{"type", "conv"}, {"filters", 4}, {"kernel", 3}, {"pad", 1}},
                                    {{"type", "batch_norm"}},
                                    {{"type", "relu"}},
                                    {{"type", "pool"}, {"mode", "max"}},
                                    {{"type", "flatten"}},
                                    {{"type", "dense"}, {"units", 16}},
                                    {{"type", "tanh"}},
                                    {{"type", "dropout"}, {"rate", 0.2}},
                                    {{"type", "dense"}, {"units", 3}}})}}},
          {"solver",
           {{"optimizer", {{"type", "adamw"}}},
            {"lr", 0.01},
            {"weight_decay", 0.01},
            {"batch_size", 16},
            {"epochs", epochs},
            {"report_every_steps", 5},
            {"lr_policy", {{"type", "cosine"}, {"warmup_epochs", 0.5}}}}},
          {"seed", 5}};
}

struct Lines {
  std::vector<json> all;
  std::vector<json> of(const char* key) const {
    std::vector<json> out;
    for (const auto& j : all)
      if (j.contains(key)) out.push_back(j);
    return out;
  }
};

// The final line without the fields that depend on time.
json timeless(json j) {
  j.erase("elapsed");
  j.erase("samples_per_sec");
  return j;
}

TEST_CASE("a run stopped mid-epoch and resumed gives exactly the uninterrupted result",
          "[nn][train]") {
  TempDir dir;
  write_synthetic_idx(dir, "train", 200, 1);
  write_synthetic_idx(dir, "t10k", 60, 2);
  auto cfg = parse_train_config(small_config(dir.path.string(), 3));
  REQUIRE(cfg.has_value());

  Lines straight;
  {
    auto b = make_cpu_backend(1);
    RunOptions opt;
    opt.metric = [&](const std::string& l) { straight.all.push_back(json::parse(l)); };
    auto r = run_training(*cfg, *b, opt);
    REQUIRE(r.has_value());
    REQUIRE(*r == RunOutcome::kFinished);
  }
  REQUIRE(straight.of("final").size() == 1);
  REQUIRE(straight.of("val_accuracy").size() == 4);  // 3 epochs + final

  // Stop at step 15 (epoch 2 of 3: 10 steps per epoch), then resume.
  Lines first, second;
  std::atomic<bool> stop{false};
  {
    auto b = make_cpu_backend(1);
    RunOptions opt;
    opt.checkpoint_dir = dir / "ckpt";
    opt.stop = &stop;
    opt.metric = [&](const std::string& l) {
      first.all.push_back(json::parse(l));
      if (first.all.back().value("step", 0) == 15) stop = true;
    };
    auto r = run_training(*cfg, *b, opt);
    REQUIRE(r.has_value());
    REQUIRE(*r == RunOutcome::kStopped);
  }
  REQUIRE(std::filesystem::exists(dir / "ckpt/checkpoint.bin"));
  REQUIRE_FALSE(std::filesystem::exists(dir / "ckpt/checkpoint.bin.tmp"));
  {
    auto b = make_cpu_backend(1);
    RunOptions opt;
    opt.checkpoint_dir = dir / "ckpt";
    opt.resume = true;
    opt.metric = [&](const std::string& l) { second.all.push_back(json::parse(l)); };
    auto r = run_training(*cfg, *b, opt);
    REQUIRE(r.has_value());
    REQUIRE(*r == RunOutcome::kFinished);
  }
  REQUIRE(timeless(second.of("final").at(0)) == timeless(straight.of("final").at(0)));
  // The epoch lines after the stop match too (epoch 2's loss includes the steps before it).
  auto a = straight.of("val_loss"), c = second.of("val_loss");
  REQUIRE(timeless(c.at(0)) == timeless(a.at(1)));
  REQUIRE(timeless(c.at(1)) == timeless(a.at(2)));
  // And the intermediate lines after step 15 are the same.
  auto sa = straight.of("step"), sc = second.of("step");
  REQUIRE(sc.front()["step"] == 20);
  REQUIRE(sc.front() == std::find_if(sa.begin(), sa.end(), [](const json& j) {
            return j["step"] == 20 && !j.contains("val_loss");
          })[0]);
}

TEST_CASE("a checkpoint written for another config is refused on resume", "[nn][train]") {
  TempDir dir;
  write_synthetic_idx(dir, "train", 100, 1);
  write_synthetic_idx(dir, "t10k", 20, 2);
  auto cfg = parse_train_config(small_config(dir.path.string(), 1));
  REQUIRE(cfg.has_value());
  auto b = make_cpu_backend(1);
  RunOptions opt;
  opt.checkpoint_dir = dir / "ckpt";
  REQUIRE(run_training(*cfg, *b, opt).has_value());
  json other = small_config(dir.path.string(), 1);
  other["seed"] = 6;
  auto cfg2 = parse_train_config(other);
  opt.resume = true;
  auto r = run_training(*cfg2, *b, opt);
  REQUIRE_FALSE(r.has_value());
  REQUIRE(r.error().message.find("another config") != std::string::npos);
}

// Rewrites DIR/checkpoint.bin with `edit` applied to its JSON header; `length` replaces the
// header length field when set (the header bytes stay those of the edited JSON).
void edit_checkpoint(const std::string& path, const std::function<void(json&)>& edit,
                     std::optional<uint64_t> length = std::nullopt) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  uint64_t len = 0;
  std::memcpy(&len, bytes.data() + 8, 8);
  json header = json::parse(bytes.substr(16, len));
  edit(header);
  std::string h = header.dump();
  uint64_t new_len = length.value_or(h.size());
  std::string out = bytes.substr(0, 8);
  out.append(reinterpret_cast<const char*>(&new_len), 8);
  out += h + bytes.substr(16 + len);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << out;
}

// A run of 2 epochs stopped at step 5 (epoch 2): DIR/ckpt/checkpoint.bin; returns its config.
TrainConfig stopped_run(const TempDir& dir) {
  write_synthetic_idx(dir, "train", 100, 1);
  write_synthetic_idx(dir, "t10k", 20, 2);
  auto cfg = parse_train_config(small_config(dir.path.string(), 2));
  REQUIRE(cfg.has_value());
  std::atomic<bool> stop{false};
  auto b = make_cpu_backend(1);
  RunOptions opt;
  opt.checkpoint_dir = dir / "ckpt";
  opt.stop = &stop;
  opt.metric = [&](const std::string& l) {
    if (json::parse(l).value("step", 0) == 5) stop = true;
  };
  auto r = run_training(*cfg, *b, opt);
  REQUIRE(r.has_value());
  REQUIRE(*r == RunOutcome::kStopped);
  return *cfg;
}

Result<RunOutcome> resume(const TempDir& dir, const TrainConfig& cfg) {
  auto b = make_cpu_backend(1);
  RunOptions opt;
  opt.checkpoint_dir = dir / "ckpt";
  opt.resume = true;
  return run_training(cfg, *b, opt);
}

TEST_CASE("a checkpoint header with a negative or non-integer position is refused naming the field",
          "[nn][train][checkpoint]") {
  TempDir dir;
  TrainConfig cfg = stopped_run(dir);
  const std::string path = dir / "ckpt/checkpoint.bin";
  // Before the fix, -3 indexed the epoch's permutation at -48 and the run crashed.
  edit_checkpoint(path, [](json& h) { h["step_in_epoch"] = -3; });
  auto r = resume(dir, cfg);
  REQUIRE_FALSE(r.has_value());
  REQUIRE(r.error().message ==
          path + ": header field 'step_in_epoch' must be an integer >= 0 (got -3)");
  // 1e300 converted to an integer is undefined behaviour (UBSan stops there).
  edit_checkpoint(path, [](json& h) {
    h["step_in_epoch"] = 1;
    h["epoch"] = 1e300;
  });
  r = resume(dir, cfg);
  REQUIRE_FALSE(r.has_value());
  REQUIRE(r.error().message.starts_with(path + ": header field 'epoch' must be an integer >= 0"));
  edit_checkpoint(path, [](json& h) {
    h["epoch"] = 1;
    h["params"][1].erase("count");
  });
  r = resume(dir, cfg);
  REQUIRE_FALSE(r.has_value());
  REQUIRE(r.error().message == path + ": header field 'params[1]': 'count' is missing");
}

TEST_CASE("a checkpoint header length beyond the file is refused before it is allocated",
          "[nn][train][checkpoint]") {
  TempDir dir;
  TrainConfig cfg = stopped_run(dir);
  const std::string path = dir / "ckpt/checkpoint.bin";
  std::filesystem::copy_file(path, path + ".good");
  // 4 MiB claimed by a file of a few kilobytes: refused on the length, nothing read.
  edit_checkpoint(
      path, [](json&) {}, uint64_t(4) << 20);
  auto r = resume(dir, cfg);
  REQUIRE_FALSE(r.has_value());
  REQUIRE(r.error().message.starts_with(path +
                                        ": header length 4194304 is more than the file holds ("));
  // 512 MiB is more than any header may be, whatever the file's size.
  std::filesystem::copy_file(path + ".good", path,
                             std::filesystem::copy_options::overwrite_existing);
  edit_checkpoint(
      path, [](json&) {}, uint64_t(1) << 29);
  r = resume(dir, cfg);
  REQUIRE_FALSE(r.has_value());
  REQUIRE(r.error().message.starts_with(
      path + ": header length 536870912 is more than a checkpoint header may be (16777216 bytes)"));
  // A header nested 200,000 deep goes through the bounded JSON reader.
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  {
    std::string out = "HPOCKPT1";
    uint64_t len = deep.size();
    out.append(reinterpret_cast<const char*>(&len), 8);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << out + deep;
  }
  r = resume(dir, cfg);
  REQUIRE_FALSE(r.has_value());
  REQUIRE(r.error().message.starts_with(path + ": header"));
  REQUIRE(r.error().message.find("deeper than 128") != std::string::npos);
}

int shell(const std::string& cmd) {
  int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST_CASE(
    "a checkpoint resumes with a changed learning rate or momentum (PBT's explore) but not "
    "with another optimizer type or batch size",
    "[nn][train][pbt]") {
  TempDir dir;
  write_synthetic_idx(dir, "train", 200, 1);
  write_synthetic_idx(dir, "t10k", 60, 2);
  json base = small_config(dir.path.string(), 3);
  base["solver"]["lr_policy"] = "fixed";
  auto cfg = parse_train_config(base);
  REQUIRE(cfg.has_value());
  auto b = make_cpu_backend(1);
  // Stop after the first epoch (10 steps of 16), with a checkpoint.
  std::atomic<bool> stop{false};
  RunOptions opt;
  opt.checkpoint_dir = dir / "ckpt";
  opt.stop = &stop;
  opt.metric = [&](const std::string& l) {
    if (json::parse(l).value("step", 0) == 10) stop = true;
  };
  REQUIRE(run_training(*cfg, *b, opt).value() == RunOutcome::kStopped);
  const std::string saved = slurp(dir / "ckpt/checkpoint.bin");

  // Another lr, weight decay and beta1: accepted, the log says what changed, and the steps
  // after the resume use the new rate.
  json explored = base;
  explored["solver"]["lr"] = 0.012;
  explored["solver"]["weight_decay"] = 0.0;
  explored["solver"]["optimizer"]["beta1"] = 0.85;
  auto cfg2 = parse_train_config(explored);
  REQUIRE(cfg2.has_value());
  Lines lines;
  std::vector<std::string> said;
  RunOptions resume;
  resume.checkpoint_dir = dir / "ckpt";
  resume.resume = true;
  resume.metric = [&](const std::string& l) { lines.all.push_back(json::parse(l)); };
  resume.progress = [&](const std::string& s) { said.push_back(s); };
  auto r = run_training(*cfg2, *b, resume);
  REQUIRE(r.has_value());
  REQUIRE(*r == RunOutcome::kFinished);
  auto steps = lines.of("step");
  REQUIRE_FALSE(steps.empty());
  for (const json& j : steps) {
    REQUIRE(j["step"].get<int>() >= 10);  // resumed, not restarted
    if (j.contains("lr")) REQUIRE(j["lr"].get<double>() == Approx(0.012));
  }
  REQUIRE(steps.back()["step"].get<int>() == 30);
  std::string resumed;
  for (const auto& s : said)
    if (s.find("resumed at epoch") != std::string::npos) resumed = s;
  INFO(resumed);
  REQUIRE(resumed.find("solver/lr 0.01 -> 0.012") != std::string::npos);
  REQUIRE(resumed.find("solver/optimizer/beta1 unset -> 0.85") != std::string::npos);
  REQUIRE(resumed.find("solver/weight_decay 0.01 -> 0.0") != std::string::npos);

  // Another optimizer type or batch size: refused, the checkpoint untouched.
  for (auto edit : {std::function<void(json&)>([](json& c) { c["solver"]["optimizer"] = "sgd"; }),
                    std::function<void(json&)>([](json& c) { c["solver"]["batch_size"] = 8; })}) {
    std::ofstream(dir / "ckpt/checkpoint.bin", std::ios::binary) << saved;
    json other = base;
    edit(other);
    auto cfg3 = parse_train_config(other);
    REQUIRE(cfg3.has_value());
    auto refused = run_training(*cfg3, *b, resume);
    REQUIRE_FALSE(refused.has_value());
    REQUIRE(refused.error().message.find("another config") != std::string::npos);
    REQUIRE(slurp(dir / "ckpt/checkpoint.bin") == saved);
  }
}

TEST_CASE("hpo train on SIGTERM finishes the step, checkpoints and exits 75, and --resume finishes",
          "[nn][train][cli]") {
  TempDir dir;
  write_synthetic_idx(dir, "train", 200, 1);
  write_synthetic_idx(dir, "t10k", 60, 2);
  json cfg = small_config(dir.path.string(), 400);  // long enough to be stopped
  cfg["solver"]["report_every_steps"] = 1;
  std::ofstream(dir / "c.json") << cfg.dump();
  // Start, wait for the first step line, send SIGTERM, record the exit code.
  std::string cmd = std::string("cd ") + dir.path.string() + " && (" + HPO_BINARY +
                    " train --config c.json --device cpu --threads 1 --checkpoint ck "
                    "--metrics-fd 3 3>metrics.txt 2>err.txt & pid=$!; "
                    "for i in $(seq 1 600); do grep -q step metrics.txt 2>/dev/null && break; "
                    "sleep 0.05; done; kill -TERM $pid; wait $pid; echo $? > rc.txt)";
  REQUIRE(shell(cmd) == 0);
  INFO(slurp(dir / "err.txt"));
  REQUIRE(slurp(dir / "rc.txt") == "75\n");
  REQUIRE(std::filesystem::exists(dir / "ck/checkpoint.bin"));
  REQUIRE(slurp(dir / "metrics.txt").find("\"step\":1,") != std::string::npos);

  // Resume with fewer epochs is another config: refused (exit 2) with a message.
  cfg["solver"]["epochs"] = 2;
  std::ofstream(dir / "c2.json") << cfg.dump();
  REQUIRE(shell("cd " + dir.path.string() + " && " + HPO_BINARY +
                " train --config c2.json --device cpu --threads 1 --checkpoint ck --resume "
                ">out2.txt 2>err2.txt") == 2);
  REQUIRE(slurp(dir / "err2.txt").find("another config") != std::string::npos);
}

TEST_CASE(
    "hpo train writes epoch lines and a final line to stdout and refuses a bad config "
    "with exit 2",
    "[nn][train][cli]") {
  TempDir dir;
  write_synthetic_idx(dir, "train", 120, 1);
  write_synthetic_idx(dir, "t10k", 30, 2);
  json cfg = small_config(dir.path.string(), 2);
  std::ofstream(dir / "c.json") << cfg.dump();
  REQUIRE(shell("cd " + dir.path.string() + " && HPO_METRICS_FD= " + HPO_BINARY +
                " train --config c.json --device cpu --threads 1 >out.txt 2>err.txt") == 0);
  std::istringstream lines(slurp(dir / "out.txt"));
  std::vector<json> epochs;
  json final_line;
  for (std::string l; std::getline(lines, l);) {
    json j = json::parse(l);
    if (j.contains("final"))
      final_line = j;
    else if (j.contains("val_accuracy"))
      epochs.push_back(j);
  }
  REQUIRE(epochs.size() == 2);
  for (const char* k :
       {"epoch", "train_loss", "val_loss", "val_accuracy", "samples_per_sec", "elapsed"})
    REQUIRE(epochs[1].contains(k));
  REQUIRE(final_line["final"] == true);
  REQUIRE(final_line.contains("test_accuracy"));
  REQUIRE(final_line["test_accuracy"].get<double>() > 0.6);  // the classes are separable
  REQUIRE(slurp(dir / "err.txt").find("epoch 2/2") != std::string::npos);

  // The agent's descriptor, named by the environment: the lines go there, not to stdout.
  REQUIRE(shell("cd " + dir.path.string() + " && HPO_METRICS_FD=3 " + HPO_BINARY +
                " train --config c.json --device cpu --threads 1 3>fd.txt >out3.txt "
                "2>/dev/null") == 0);
  REQUIRE(slurp(dir / "out3.txt").empty());
  REQUIRE(slurp(dir / "fd.txt").find("\"final\":true") != std::string::npos);

  cfg["net"]["layers"][3] = {{"type", "pool"}, {"size", 20}};
  std::ofstream(dir / "bad.json") << cfg.dump();
  REQUIRE(shell("cd " + dir.path.string() + " && " + HPO_BINARY +
                " train --config bad.json --device cpu 2>bad.txt") == 2);
  REQUIRE(slurp(dir / "bad.txt").find("net.layers[3].size: 20 is larger than the input 10x10") !=
          std::string::npos);
  REQUIRE(shell(std::string(HPO_BINARY) + " train --config " + dir / "c.json" +
                " --device tpu 2>/dev/null") == 2);
}

TEST_CASE("an MLP trained one epoch on 6000 Fashion-MNIST images beats 75% test accuracy",
          "[nn][train][fmnist]") {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  REQUIRE(std::filesystem::exists(dir + "/train-images-idx3-ubyte.gz"));
  json cfg = {
      {"data", {{"dir", dir}, {"train_limit", 6000}, {"validation", 1000}, {"test_limit", 2000}}},
      {"net", {{"dense", json::array({{{"units", 128}}})}, {"activation", "relu"}}},
      {"solver",
       {{"optimizer", {{"type", "sgd"}, {"momentum", 0.9}}},
        {"lr", 0.05},
        {"batch_size", 64},
        {"epochs", 1}}},
      {"seed", 1}};
  auto parsed = parse_train_config(cfg);
  REQUIRE(parsed.has_value());
  auto b = make_cpu_backend(1);
  json final_line;
  RunOptions opt;
  opt.metric = [&](const std::string& l) {
    json j = json::parse(l);
    if (j.contains("final")) final_line = j;
  };
  REQUIRE(run_training(*parsed, *b, opt).has_value());
  INFO(final_line.dump());
  REQUIRE(final_line["test_accuracy"].get<double>() > 0.75);
  REQUIRE(final_line["val_accuracy"].get<double>() > 0.75);
}

}  // namespace
}  // namespace hpo::nn::test
