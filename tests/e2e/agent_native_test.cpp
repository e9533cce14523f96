// End to end with the native engine: `hpo train` as the trial of real agents.
#include <poll.h>

#include <set>

#include "tests/e2e/harness.h"
#include "tests/support/skip.h"
#include "base/pack.h"
#include "trainer/agent/process_runner.h"

using namespace hpo::e2e;
using hpo::search::TrialState;
using nlohmann::json;

namespace {

// A small Fashion-MNIST subset: ~2 s per trial on one core, most of it reading the data.
json small_data() {
  return {{"dir", "/usr/share/datasets/fashion-mnist"},
          {"format", "idx"},
          {"train_limit", 3000},
          {"validation", 1000},
          {"test_limit", 1000},
          {"normalize", true}};
}

bool have_fashion_mnist() { return fs::exists("/usr/share/datasets/fashion-mnist"); }

// One slot running the hpo binary under test, trial directories in `dir`/work.
hpo::agent::ProcessRunnerOptions one_slot(const TempDir& dir) {
  hpo::agent::ProcessRunnerOptions options;
  options.slots.resize(1);
  options.workdir = (dir.path / "work").string();
  options.hpo_binary = HPO_BINARY;
  return options;
}

}  // namespace

TEST_CASE("a native Fashion-MNIST search with 2 CPU agents reaches 78% validation accuracy",
          "[e2e][agent][native]") {
  if (!have_fashion_mnist()) {
    HPO_SKIP("/usr/share/datasets/fashion-mnist missing (Debian package dataset-fashion-mnist)");
  }
  TempDir dir("native-search");
  json s = {
      {"name", "native-small"},
      {"objective", {{"metric", "val_accuracy"}, {"direction", "maximize"}}},
      {"sampler", {{"type", "random"}}},
      {"seed", 7},
      {"budget", {{"max_trials", 6}, {"max_parallel", 2}}},
      {"trial",
       {{"kind", "native"},
        {"base",
         {{"data", small_data()}, {"solver", {{"epochs", 3}, {"batch_size", 64}}}, {"seed", 1}}},
        {"threads", 1},
        {"timeout_seconds", 120}}},
      {"space",
       {{"net",
         {{"dense",
           {{"type", "blocks"},
            {"min", 1},
            {"max", 1},
            {"block", {{"units", {{"type", "int"}, {"low", 32}, {"high", 256}, {"log", true}}}}}}},
          {"activation", "relu"}}},
        {"solver",
         {{"lr", {{"type", "float"}, {"low", 0.02}, {"high", 0.2}, {"log", true}}},
          {"optimizer", {{"type", "const"}, {"value", {{"type", "sgd"}, {"momentum", 0.9}}}}}}}}}};
  fs::path file = dir.path / "study.json";
  write_text(file, s.dump());
  int port = free_port();
  fs::path db = dir.path / "hpo.db";
  Process scheduler(scheduler_args(db, port, file), dir.path / "scheduler.out");
  Process a1(agent_args(port, dir.path / "work", 1, "cpu-1"), dir.path / "a1.out");
  Process a2(agent_args(port, dir.path / "work", 1, "cpu-2"), dir.path / "a2.out");
  auto code = scheduler.wait(90s);
  INFO(scheduler.output() << a1.output() << a2.output());
  REQUIRE(code == 0);
  auto trials = trials_of(db, "native-small");
  REQUIRE(trials.size() == 6);
  CHECK(count_state(trials, TrialState::kCompleted) == 6);
  double best = 0;
  std::set<std::string> agents;
  for (const auto& t : trials) {
    if (t.value) best = std::max(best, *t.value);
    agents.insert(t.agent);
    // Every epoch was reported (step = epoch) and the final line's test accuracy kept:
    // one value, measured on the held-out test set by a network that learnt something.
    std::set<std::int64_t> epochs;
    std::vector<double> test_accuracy;
    for (const auto& m : metrics_of(db, t.id)) {
      if (m.name == "val_accuracy") epochs.insert(m.step);
      if (m.name == "test_accuracy") test_accuracy.push_back(m.value);
    }
    INFO("trial " << t.number);
    CHECK(epochs == std::set<std::int64_t>{1, 2, 3});
    REQUIRE(test_accuracy.size() == 1);
    CHECK(test_accuracy[0] > 0.5);
    CHECK(test_accuracy[0] <= 1.0);
  }
  CHECK(agents.size() == 2);  // both agents trained
  CHECK(best >= 0.78);
}

TEST_CASE("STOP reaches a native trial within a second", "[e2e][agent][native]") {
  if (!have_fashion_mnist()) {
    HPO_SKIP("/usr/share/datasets/fashion-mnist missing");
  }
  TempDir dir("native-stop");
  auto options = one_slot(dir);
  options.kill_grace_s = 5;  // SIGKILL would also end it: the test wants SIGTERM to
  hpo::agent::ProcessRunner runner(options);
  hpo::scheduler::protocol::Assign assign;
  assign.study = "native-stop";
  assign.trial = 0;
  assign.attempt = 1;
  assign.lease = "l0";
  assign.config = json::parse(
      R"({"net": {"dense": [{"units": 64}], "activation": "relu"}, "solver": {"lr": 0.05}})");
  assign.spec = {{"kind", "native"},
                 {"base", {{"data", small_data()}, {"solver", {{"epochs", 200}}}}},
                 {"threads", 1}};
  REQUIRE(runner.start(assign, {}));
  auto poll_once = [&] {
    std::vector<pollfd> fds;
    for (int fd : runner.wait_fds()) fds.push_back(pollfd{fd, POLLIN, 0});
    ::poll(fds.data(), fds.size(), static_cast<int>(runner.wait_hint().count()));
    return runner.poll();
  };
  bool reported = false;
  auto until = std::chrono::steady_clock::now() + 30s;
  while (!reported && std::chrono::steady_clock::now() < until) {
    for (auto& e : poll_once()) {
      reported = reported || std::holds_alternative<hpo::scheduler::protocol::Report>(e);
      REQUIRE_FALSE(std::holds_alternative<hpo::scheduler::protocol::Finish>(e));
    }
  }
  REQUIRE(reported);  // it is training (epoch 1 done)
  auto stop_at = std::chrono::steady_clock::now();
  runner.stop("l0", hpo::agent::StopReason::kPruned);
  std::optional<hpo::scheduler::protocol::Finish> finish;
  while (!finish && std::chrono::steady_clock::now() < stop_at + 10s) {
    for (auto& e : poll_once()) {
      if (auto* f = std::get_if<hpo::scheduler::protocol::Finish>(&e)) finish = *f;
    }
  }
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - stop_at).count();
  REQUIRE(finish);
  CHECK(finish->outcome == hpo::scheduler::protocol::Outcome::kPruned);
  CHECK(finish->metrics.count("val_accuracy") == 1);
  CHECK(took < 1.0);
}

namespace {

namespace p = hpo::scheduler::protocol;

// Runs `assign` on `runner` until its FINISH; with `pause_after` > 0, pauses it once it has
// reported that many epochs. Returns its reports' val_accuracy by epoch, and the FINISH.
std::pair<std::map<std::int64_t, double>, p::Finish> drive(hpo::agent::ProcessRunner& runner,
                                                           const p::Assign& assign,
                                                           const hpo::agent::TrialFiles& files,
                                                           int pause_after = 0) {
  REQUIRE(runner.start(assign, files));
  std::map<std::int64_t, double> reports;
  auto until = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < until) {
    std::vector<pollfd> fds;
    for (int fd : runner.wait_fds()) fds.push_back(pollfd{fd, POLLIN, 0});
    ::poll(fds.data(), fds.size(), static_cast<int>(runner.wait_hint().count()));
    for (auto& e : runner.poll()) {
      if (auto* f = std::get_if<p::Finish>(&e)) return {reports, *f};
      auto& r = std::get<p::Report>(e);
      reports[r.step] = r.metrics.at("val_accuracy");
      if (pause_after > 0 && static_cast<int>(reports.size()) == pause_after) {
        runner.stop(assign.lease, hpo::agent::StopReason::kPaused);
      }
    }
  }
  FAIL("trial " << assign.lease << " did not finish in 60 s");
  return {};
}

}  // namespace

TEST_CASE("a paused native trial resumes from its checkpoint as if never paused",
          "[e2e][agent][native][pause]") {
  if (!have_fashion_mnist()) {
    HPO_SKIP("/usr/share/datasets/fashion-mnist missing");
  }
  TempDir dir("native-pause");
  hpo::agent::ProcessRunner runner(one_slot(dir));
  p::Assign assign{"native-pause", 0, 1, "whole", json::parse(R"({"net": {"dense":
      [{"units": 32}], "activation": "relu"}, "solver": {"lr": 0.05}})"),
                   {{"kind", "native"},
                    {"base", {{"data", small_data()}, {"solver", {{"epochs", 4}}}, {"seed", 3}}},
                    {"threads", 1}}};
  auto files = [&](int attempt) {
    auto trial = dir.path / ("trial-" + std::to_string(attempt));
    return hpo::agent::TrialFiles{(trial / "checkpoint").string(), "", true};
  };
  auto [whole, whole_finish] = drive(runner, assign, files(0));
  REQUIRE(whole_finish.outcome == p::Outcome::kOk);
  REQUIRE(whole.size() == 4);

  assign.lease = "paused";
  auto [first, paused] = drive(runner, assign, files(1), 1);
  REQUIRE(paused.outcome == p::Outcome::kPaused);
  REQUIRE_FALSE(fs::is_empty(files(1).checkpoint_dir));

  // The checkpoint travels packed, as between two agents.
  auto packed = hpo::pack_directory(files(1).checkpoint_dir, dir.path / "ckpt.pack");
  REQUIRE(packed);
  auto resume = files(2);
  resume.resume_from = (dir.path / "trial-2" / "resume").string();
  REQUIRE(hpo::unpack_directory(dir.path / "ckpt.pack", resume.resume_from));
  assign.attempt = 2;
  assign.lease = "resumed";
  auto [second, done] = drive(runner, assign, resume);
  REQUIRE(done.outcome == p::Outcome::kOk);
  // The epochs after the pause are those of the run that was never paused.
  REQUIRE(!second.empty());
  for (const auto& [epoch, accuracy] : second) {
    INFO("epoch " << epoch);
    CHECK(epoch > first.rbegin()->first);
    CHECK(accuracy == whole.at(epoch));
  }
  CHECK(second.rbegin()->first == 4);
}
