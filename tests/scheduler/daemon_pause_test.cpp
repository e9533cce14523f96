// The daemon under a trial scheduler (issue 14): ASHA's PAUSE at a rung, the paused trial's
// checkpoint kept and handed to the attempt that resumes it, a run lost while pausing, a
// restart with paused trials, and the end of a study with trials still paused.
#include <filesystem>
#include <memory>

#include "base/sha256.h"
#include "tests/scheduler/daemon_harness.h"

using namespace hpo_test;

namespace {

// 3 trials at most, 3 at once, ASHA with rungs at steps 1 and 3 (η 3) up to 9.
json asha_study(const std::string& name, int max_trials = 3) {
  json j = study_json(name, max_trials, 3);
  j["scheduler"] = {{"type", "asha"},
                    {"resource", "epoch"},
                    {"min_resource", 1},
                    {"max_resource", 9},
                    {"reduction_factor", 3}};
  return j;
}

p::Report report_of(const p::Assign& a, std::int64_t step, double value) {
  return p::Report{a.study, a.trial, a.attempt, a.lease, step, {{"value", value}}};
}

// The DECISION the daemon sends to `a`'s report.
p::Decision decide(Daemon& d, FakeAgent& agent, const p::Assign& a, std::int64_t step,
                   double value) {
  agent.send(report_of(a, step, value));
  auto decision = expect<p::Decision>(d, agent);
  REQUIRE(decision.lease == a.lease);
  return decision;
}

// Uploads `bytes` as `a`'s checkpoint (one PUT) and returns its ref.
p::CheckpointRef upload(Daemon& d, FakeAgent& agent, const p::Assign& a, const std::string& bytes) {
  const std::string sha = hpo::sha256_hex(bytes);
  agent.send(p::Put{a.study, a.trial, a.attempt, a.lease, 0,
                    static_cast<std::int64_t>(bytes.size()), sha, bytes});
  auto ack = expect<p::PutAck>(d, agent);
  REQUIRE(ack.error.empty());
  REQUIRE(ack.done);
  return {static_cast<std::int64_t>(bytes.size()), sha};
}

p::Finish paused_finish(const p::Assign& a, std::optional<p::CheckpointRef> ref) {
  p::Finish f{a.study, a.trial, a.attempt, a.lease, p::Outcome::kPaused, {}, "", "", false,
              false};
  f.checkpoint = std::move(ref);
  return f;
}

std::vector<p::Assign> assigns(const std::vector<p::Message>& got) {
  std::vector<p::Assign> out;
  for (const auto& m : got) {
    if (auto* a = std::get_if<p::Assign>(&m)) out.push_back(*a);
  }
  return out;
}

std::size_t packs_in(const std::filesystem::path& dir) {
  std::size_t n = 0;
  if (!std::filesystem::exists(dir)) return 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    n += e.path().extension() == ".pack";
  }
  return n;
}

struct PauseFixture : Fixture {
  std::string checkpoints = dir / "checkpoints";
  void start_with_checkpoints() {
    DaemonOptions o;
    o.checkpoint_dir = checkpoints;
    o.checkpoint_max_bytes = 1 << 20;
    start(o);
  }
  // Starts with the ASHA study "s" and `agent` joined with `slots` free slots.
  FakeAgent& start_asha(int slots) {
    start_with_checkpoints();
    REQUIRE(daemon->add_study(spec_of(asha_study("s"))));
    agents.push_back(std::make_unique<FakeAgent>(ctx, daemon->endpoint(), "a"));
    FakeAgent& agent = *agents.back();
    agent.hello(slots);
    expect<p::Welcome>(*daemon, agent);
    agent.send(p::Ready{slots, false});
    return agent;
  }
  std::vector<std::unique_ptr<FakeAgent>> agents;
  std::int64_t checkpoint_bytes(const std::string& study) {
    auto r = reader();
    auto row = r.find_study(study);
    REQUIRE(row);
    REQUIRE(*row);
    return (*row)->checkpoint_bytes;
  }
};

}  // namespace

TEST_CASE("ASHA pauses trials at a rung, keeps their checkpoints and resumes the best from its "
          "checkpoint as a new attempt; the study ends with the rest PRUNED",
          "[daemon][pause]") {
  PauseFixture f;
  FakeAgent& agent = f.start_asha(3);
  auto first = assigns(settle(*f.daemon, agent));
  REQUIRE(first.size() == 3);
  for (const auto& a : first) {
    CHECK(a.pausable);
    CHECK_FALSE(a.resume);
  }
  const p::Assign t0 = first[0], t1 = first[1], t2 = first[2];

  // The first two results at rung 0 cannot be in its top (⌊n/3⌋ = 0): both pause.
  auto d0 = decide(*f.daemon, agent, t0, 1, 1.0);
  CHECK(d0.pause);
  CHECK_FALSE(d0.stop);
  const auto ref = upload(*f.daemon, agent, t0, "the checkpoint of trial 0 after epoch 1");
  agent.send(paused_finish(t0, ref));
  expect<p::Ack>(*f.daemon, agent);
  auto row0 = f.trial("s", t0.trial);
  CHECK(row0.state == TrialState::kPaused);
  CHECK(row0.value == 1.0);
  CHECK(f.checkpoint_bytes("s") > 0);
  CHECK(packs_in(f.checkpoints) == 1);

  CHECK(decide(*f.daemon, agent, t1, 1, 3.0).pause);
  agent.send(paused_finish(t1, std::nullopt));  // nothing saved: it would resume afresh
  expect<p::Ack>(*f.daemon, agent);
  CHECK(f.trial("s", t1.trial).state == TrialState::kPaused);

  // A third, worse result: trial 0 is now rung 0's top, and is promoted into the free slot
  // before anything new (the trial budget is spent anyway).
  CHECK(decide(*f.daemon, agent, t2, 1, 5.0).pause);
  agent.send(paused_finish(t2, std::nullopt));
  auto resumed = expect<p::Assign>(*f.daemon, agent);
  CHECK(resumed.trial == t0.trial);
  CHECK(resumed.attempt == t0.attempt + 1);
  REQUIRE(resumed.resume);
  CHECK(resumed.resume->bytes == ref.bytes);
  CHECK(resumed.resume->sha256 == ref.sha256);
  CHECK(resumed.resume->path.ends_with(ref.sha256 + ".pack"));  // for a shared directory
  auto running = f.trial("s", t0.trial);
  CHECK(running.state == TrialState::kRunning);
  {
    // Its new attempt starts with the curve of the one it resumes.
    auto r = f.reader();
    auto metrics = r.metrics(running.id);
    REQUIRE(metrics);
    REQUIRE(metrics->size() == 1);
    CHECK((*metrics)[0].step == 1);
    CHECK((*metrics)[0].value == 1.0);
  }
  // The resumed attempt may fetch the checkpoint.
  agent.send(p::Get{resumed.study, resumed.trial, resumed.attempt, resumed.lease, 0});
  auto chunk = expect<p::Chunk>(*f.daemon, agent);
  CHECK(chunk.error.empty());
  CHECK(chunk.data == "the checkpoint of trial 0 after epoch 1");

  // Reporting epoch 1 again (it redoes nothing new) goes on; epoch 3 is rung 1's first result.
  CHECK_FALSE(decide(*f.daemon, agent, resumed, 2, 0.8).pause);
  CHECK(decide(*f.daemon, agent, resumed, 3, 0.5).pause);
  const auto ref2 = upload(*f.daemon, agent, resumed, "trial 0 after epoch 3");
  agent.send(paused_finish(resumed, ref2));
  // Nothing runs and nothing is promotable: the study is over, the paused trials PRUNED with
  // their last values, and their checkpoints deleted.
  settle(*f.daemon, agent, 30);
  auto r = f.reader();
  auto study = r.find_study("s");
  REQUIRE(study);
  REQUIRE(*study);
  CHECK((*study)->status == "finished");
  auto rows = r.trials((*study)->id);
  REQUIRE(rows);
  REQUIRE(rows->size() == 3);
  for (const auto& t : *rows) {
    INFO("trial " << t.number);
    CHECK(t.state == TrialState::kPruned);
    CHECK(t.error.find("not promoted") != std::string::npos);
  }
  CHECK((*rows)[0].value == 0.5);
  CHECK((*rows)[1].value == 3.0);
  CHECK(packs_in(f.checkpoints) == 0);
  settle(*f.daemon, agent, 5);
  CHECK(f.checkpoint_bytes("s") == 0);
}

TEST_CASE("a trial whose run is lost while it pauses stays PAUSED, uncharged, with its last "
          "complete checkpoint",
          "[daemon][pause]") {
  PauseFixture f;
  FakeAgent& agent = f.start_asha(1);
  auto a = expect<p::Assign>(*f.daemon, agent);
  CHECK(decide(*f.daemon, agent, a, 1, 2.0).pause);
  // The agent dies mid-upload: the liveness window passes without a word.
  agent.send(p::Put{a.study, a.trial, a.attempt, a.lease, 0, 100, hpo::sha256_hex("x"), "half"});
  expect<p::PutAck>(*f.daemon, agent);
  f.clock.advance(10);
  settle(*f.daemon, agent, 10);
  auto t = f.trial("s", a.trial);
  CHECK(t.state == TrialState::kPaused);
  CHECK(t.interruptions == 0);
  CHECK(packs_in(f.checkpoints) == 0);  // the half upload is no checkpoint

  // Without a pause, a lost run is an interruption as before.
  FakeAgent b(f.ctx, f.daemon->endpoint(), "b");
  b.hello(1);
  expect<p::Welcome>(*f.daemon, b);
  b.send(p::Ready{1, false});
  auto next = expect<p::Assign>(*f.daemon, b);
  CHECK(next.trial != a.trial);
  f.clock.advance(10);
  settle(*f.daemon, b, 10);
  auto lost = f.trial("s", next.trial);
  CHECK(lost.interruptions == 1);
  CHECK(lost.state == TrialState::kQueued);
}

TEST_CASE("a restarted scheduler rebuilds ASHA from the store and resumes a paused trial from "
          "the checkpoint it kept",
          "[daemon][pause]") {
  PauseFixture f;
  f.start_with_checkpoints();
  REQUIRE(f.daemon->add_study(spec_of(asha_study("s"))));
  p::CheckpointRef ref;
  std::int64_t best = -1;
  std::int64_t third = -1;
  {
    FakeAgent agent(f.ctx, f.daemon->endpoint(), "a");
    agent.hello(1);
    expect<p::Welcome>(*f.daemon, agent);
    agent.send(p::Ready{1, false});
    auto t0 = expect<p::Assign>(*f.daemon, agent);
    CHECK(decide(*f.daemon, agent, t0, 1, 1.0).pause);
    ref = upload(*f.daemon, agent, t0, "kept across the restart");
    agent.send(paused_finish(t0, ref));
    auto t1 = expect<p::Assign>(*f.daemon, agent);
    CHECK(decide(*f.daemon, agent, t1, 1, 4.0).pause);
    agent.send(paused_finish(t1, std::nullopt));
    // Two results at rung 0: nothing promotable, so the last new trial starts; the scheduler
    // dies while it runs.
    auto t2 = expect<p::Assign>(*f.daemon, agent);
    CHECK_FALSE(t2.resume);
    best = t0.trial;
    third = t2.trial;
  }
  f.crash();
  f.start_with_checkpoints();
  FakeAgent agent(f.ctx, f.daemon->endpoint(), "c");
  agent.hello(1);
  expect<p::Welcome>(*f.daemon, agent);
  agent.send(p::Ready{1, false});
  CHECK(f.trial("s", best).state == TrialState::kPaused);
  // The running trial's agent never comes back: after the recovery window it runs again here.
  settle(*f.daemon, agent, 5);
  std::vector<p::Assign> got;
  for (int i = 0; i < 4 && got.empty(); ++i) {  // the agent stays alive through the window
    f.clock.advance(3);
    agent.send(p::Heartbeat{});
    got = assigns(settle(*f.daemon, agent, 10));
  }
  REQUIRE(got.size() == 1);
  const p::Assign again = got[0];
  CHECK(again.trial == third);
  CHECK_FALSE(again.resume);
  CHECK(decide(*f.daemon, agent, again, 1, 9.0).pause);
  agent.send(paused_finish(again, std::nullopt));
  // Its result makes rung 0's top: trial 0, resumed from the checkpoint the store kept.
  auto resumed = expect<p::Assign>(*f.daemon, agent);
  CHECK(resumed.trial == best);
  REQUIRE(resumed.resume);
  CHECK(resumed.resume->bytes == ref.bytes);
  CHECK(resumed.resume->sha256 == ref.sha256);
  CHECK(resumed.resume->path.ends_with(ref.sha256 + ".pack"));  // for a shared directory
}

TEST_CASE("a study file may not have both a pruner and a trial scheduler", "[daemon][pause]") {
  json j = asha_study("s");
  j["pruner"] = {{"type", "median"}};
  auto s = hpo::search::parse_study(j, "s.json");
  REQUIRE_FALSE(s);
  CHECK(s.error().message.find("s.json: pruner: cannot be combined with the asha scheduler") !=
        std::string::npos);
}
