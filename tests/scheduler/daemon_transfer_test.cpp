// The daemon's checkpoint transfer (protocol.h PUT/GET, scheduler/transfers.h): a lease's
// holder uploads a checkpoint in chunks and reads it back; anyone else gets nothing.
#include "base/sha256.h"
#include "tests/scheduler/daemon_harness.h"

using namespace hpo_test;

namespace {

// `bytes` uploaded in chunks of `chunk` under `a`'s lease; the last PUT_ACK.
p::PutAck upload(Daemon& d, FakeAgent& agent, const p::Assign& a, const std::string& bytes,
                 std::size_t chunk, const std::string& sha) {
  p::PutAck last;
  for (std::size_t at = 0; at < bytes.size(); at += chunk) {
    agent.send(p::Put{a.study, a.trial, a.attempt, a.lease, static_cast<std::int64_t>(at),
                      static_cast<std::int64_t>(bytes.size()), sha, bytes.substr(at, chunk)});
    last = expect<p::PutAck>(d, agent);
    if (!last.error.empty()) return last;
  }
  return last;
}

}  // namespace

TEST_CASE("a lease's holder uploads a checkpoint in chunks and fetches it back; others cannot",
          "[daemon][transfer]") {
  Fixture f;
  DaemonOptions o;
  o.checkpoint_dir = f.dir / "checkpoints";
  o.checkpoint_max_bytes = 1 << 20;
  f.start(o);
  REQUIRE(f.daemon->add_study(spec_of(study_json("s", 2, 1))));
  FakeAgent agent(f.ctx, f.daemon->endpoint(), "a");
  agent.hello(1);
  expect<p::Welcome>(*f.daemon, agent);
  agent.send(p::Ready{1, false});
  const auto a = expect<p::Assign>(*f.daemon, agent);

  std::string bytes;
  for (int i = 0; i < 700000; ++i) bytes += static_cast<char>(i * 131 % 251);
  const std::string sha = hpo::sha256_hex(bytes);
  auto done = upload(*f.daemon, agent, a, bytes, p::kMaxChunkBytes, sha);
  CHECK(done.error.empty());
  CHECK(done.done);
  CHECK(done.next == static_cast<std::int64_t>(bytes.size()));

  std::string back;
  std::int64_t total = -1;
  for (;;) {
    agent.send(p::Get{a.study, a.trial, a.attempt, a.lease, static_cast<std::int64_t>(back.size())});
    auto c = expect<p::Chunk>(*f.daemon, agent);
    REQUIRE(c.error.empty());
    CHECK(c.offset == static_cast<std::int64_t>(back.size()));
    total = c.total;
    if (c.data.empty()) break;
    CHECK(c.data.size() <= p::kMaxChunkBytes);
    back += c.data;
  }
  CHECK(total == static_cast<std::int64_t>(bytes.size()));
  CHECK(back == bytes);

  // A bad digest is refused at the last chunk, and the good checkpoint stays.
  auto bad = upload(*f.daemon, agent, a, "other bytes", 4, sha);
  CHECK_FALSE(bad.done);
  CHECK(bad.error.find("is not the announced") != std::string::npos);
  agent.send(p::Get{a.study, a.trial, a.attempt, a.lease, 0});
  CHECK(expect<p::Chunk>(*f.daemon, agent).total == static_cast<std::int64_t>(bytes.size()));

  // Another agent that names the lease rightly gets nothing: the lease is fenced to its
  // holder's connection and key.
  FakeAgent other(f.ctx, f.daemon->endpoint(), "b");
  other.hello(1);
  expect<p::Welcome>(*f.daemon, other);
  other.send(p::Get{a.study, a.trial, a.attempt, a.lease, 0});
  auto refused = expect<p::Chunk>(*f.daemon, other);
  CHECK(refused.error == "no such live lease");
  CHECK(refused.data.empty());
  other.send(p::Put{a.study, a.trial, a.attempt, a.lease, 0, 3, hpo::sha256_hex("abc"), "abc"});
  CHECK(expect<p::PutAck>(*f.daemon, other).error == "no such live lease");
}

TEST_CASE("a scheduler without a checkpoint directory answers PUT and GET with an error",
          "[daemon][transfer]") {
  Fixture f;
  f.start();
  REQUIRE(f.daemon->add_study(spec_of(study_json("s", 1, 1))));
  FakeAgent agent(f.ctx, f.daemon->endpoint(), "a");
  agent.hello(1);
  expect<p::Welcome>(*f.daemon, agent);
  agent.send(p::Ready{1, false});
  const auto a = expect<p::Assign>(*f.daemon, agent);
  agent.send(p::Put{a.study, a.trial, a.attempt, a.lease, 0, 3, hpo::sha256_hex("abc"), "abc"});
  CHECK(expect<p::PutAck>(*f.daemon, agent).error == "this scheduler keeps no checkpoints");
  agent.send(p::Get{a.study, a.trial, a.attempt, a.lease, 0});
  CHECK(expect<p::Chunk>(*f.daemon, agent).error == "this scheduler keeps no checkpoints");
}
