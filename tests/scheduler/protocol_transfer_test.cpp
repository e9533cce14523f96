// The wire protocol's pause and checkpoint-transfer parts (protocol.h): PAUSE, FINISH paused
// with its checkpoint, ASSIGN resume, PUT/PUT_ACK/GET/CHUNK round-trip, and their limits.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "base/sha256.h"
#include "scheduler/protocol.h"

namespace p = hpo::scheduler::protocol;
using nlohmann::json;

namespace {

hpo::Result<p::Message> decode3(std::string_view type, const std::string& body) {
  std::vector<std::string_view> frames{p::kVersion, type, body};
  return p::decode(frames);
}

hpo::Result<p::Message> roundtrip(const p::Message& m) {
  p::Frames f = p::encode(m);
  return decode3(f.type, f.body);
}

std::string error_of(std::string_view type, const json& body) {
  auto r = decode3(type, body.dump());
  REQUIRE_FALSE(r.has_value());
  return r.error().message;
}

const std::string kSha = hpo::sha256_hex("checkpoint");

}  // namespace

TEST_CASE("PAUSE, FINISH paused with its checkpoint and ASSIGN resume round-trip",
          "[protocol][transfer]") {
  p::Decision pause;
  pause.trial = 3;
  pause.attempt = 1;
  pause.lease = "L";
  pause.pause = true;
  CHECK(json::parse(p::encode(pause).body)["decision"] == "PAUSE");
  auto d = roundtrip(pause);
  REQUIRE(d);
  CHECK(std::get<p::Decision>(*d).pause);
  CHECK_FALSE(std::get<p::Decision>(*d).stop);

  p::Finish f;
  f.study = "s";
  f.lease = "L";
  f.outcome = p::Outcome::kPaused;
  f.checkpoint = p::CheckpointRef{10, kSha};
  auto fb = roundtrip(f);
  REQUIRE(fb);
  CHECK(std::get<p::Finish>(*fb).outcome == p::Outcome::kPaused);
  CHECK(std::get<p::Finish>(*fb).checkpoint == f.checkpoint);

  p::Assign a;
  a.study = "s";
  a.lease = "L2";
  a.config = json::object();
  a.spec = json{{"kind", "builtin"}};
  auto plain = json::parse(p::encode(a).body);
  CHECK_FALSE(plain.contains("resume"));  // a fresh start says nothing new
  a.resume = p::CheckpointRef{10, kSha};
  auto ab = roundtrip(a);
  REQUIRE(ab);
  CHECK(std::get<p::Assign>(*ab).resume == a.resume);
}

TEST_CASE("PUT, PUT_ACK, GET and CHUNK carry any bytes", "[protocol][transfer]") {
  std::string bytes;
  for (int i = 0; i < 1000; ++i) bytes += static_cast<char>(i * 31 % 256);
  auto put = roundtrip(p::Put{"s", 4, 2, "L", 0, 1000, hpo::sha256_hex(bytes), bytes});
  REQUIRE(put);
  CHECK(std::get<p::Put>(*put).data == bytes);
  CHECK(std::get<p::Put>(*put).total == 1000);
  auto ack = roundtrip(p::PutAck{"L", 1000, true, ""});
  REQUIRE(ack);
  CHECK(std::get<p::PutAck>(*ack).done);
  auto refused = roundtrip(p::PutAck{"L", 0, false, "checkpoint store full"});
  REQUIRE(refused);
  CHECK(std::get<p::PutAck>(*refused).error == "checkpoint store full");
  auto get = roundtrip(p::Get{"s", 4, 3, "L", 262144});
  REQUIRE(get);
  CHECK(std::get<p::Get>(*get).offset == 262144);
  auto chunk = roundtrip(p::Chunk{"L", 0, 1000, bytes, ""});
  REQUIRE(chunk);
  CHECK(std::get<p::Chunk>(*chunk).data == bytes);
  // A whole chunk of the largest size fits in a body with room to spare.
  const std::string big(p::kMaxChunkBytes, '\xff');
  const auto frames = p::encode(p::Chunk{"L", 0, static_cast<std::int64_t>(big.size()), big, ""});
  CHECK(frames.body.size() < p::kMaxBodyBytes);
  auto back = decode3(frames.type, frames.body);
  REQUIRE(back);
  CHECK(std::get<p::Chunk>(*back).data == big);
}

TEST_CASE("bad pause and transfer messages are refused naming the type and field",
          "[protocol][transfer]") {
  const json put = {{"study", "s"}, {"trial", 1}, {"attempt", 1}, {"lease", "L"},
                    {"offset", 0}, {"total", 4}, {"sha256", kSha}, {"data", "Zm9v"}};
  CHECK(decode3("PUT", put.dump()).has_value());
  auto with = [&](const char* field, json v) {
    json b = put;
    b[field] = std::move(v);
    return b;
  };
  CHECK(error_of("PUT", with("data", "Zm9v!")) ==
        "PUT: field 'data': base64: length 5 is not a multiple of 4");
  CHECK(error_of("PUT", with("sha256", "abc")) ==
        "PUT: field 'sha256': not 64 lowercase hex digits");
  CHECK(error_of("PUT", with("total", 2)) ==
        "PUT: field 'data': ends at byte 3, past the total of 2");
  CHECK(error_of("PUT", with("offset", -1)).find("PUT: field 'offset': out of range") == 0);
  CHECK(error_of("PUT", with("data", std::string((p::kMaxChunkBytes / 3 + 2) * 4, 'A'))) ==
        "PUT: field 'data': over 262144 bytes");
  CHECK(error_of("GET", json{{"study", "s"}, {"trial", 1}, {"attempt", 1}, {"lease", "L"}}) ==
        "GET: field 'offset': missing");
  CHECK(error_of("CHUNK", json{{"lease", "L"}, {"offset", 0}, {"total", 1}, {"data", 5}}) ==
        "CHUNK: field 'data': not a string");
  CHECK(error_of("DECISION", json{{"trial", 1}, {"attempt", 1}, {"lease", "L"},
                                  {"decision", "HOLD"}}) ==
        "DECISION: field 'decision': must be STOP, PAUSE or CONTINUE (got 'HOLD')");
  const json finish = {{"study", "s"}, {"trial", 1}, {"attempt", 1}, {"lease", "L"},
                       {"outcome", "paused"}, {"checkpoint", {{"bytes", 3}, {"sha256", "x"}}}};
  CHECK(error_of("FINISH", finish) ==
        "FINISH: field 'checkpoint.sha256': not 64 lowercase hex digits");
  json assign = {{"study", "s"}, {"trial", 1}, {"attempt", 2}, {"lease", "L"},
                 {"config", json::object()}, {"spec", json::object()},
                 {"resume", {{"sha256", kSha}}}};
  CHECK(error_of("ASSIGN", assign) == "ASSIGN: field 'resume.bytes': missing");
}

TEST_CASE("a shared checkpoint directory: WELCOME's checkpoints, FINISH's shared and ASSIGN's "
          "resume path round-trip, and a path that leaves the directory is refused",
          "[protocol][transfer][shared]") {
  p::Welcome w{"sched", 1000, 5, {}, {}, p::SharedCheckpoints{"/mnt/ckpt", std::string(32, 'a')}};
  auto wb = roundtrip(w);
  REQUIRE(wb);
  CHECK(std::get<p::Welcome>(*wb).checkpoints == w.checkpoints);
  w.checkpoints.reset();
  CHECK_FALSE(json::parse(p::encode(w).body).contains("checkpoints"));

  p::Finish f;
  f.study = "s";
  f.lease = "L";
  f.outcome = p::Outcome::kPaused;
  f.checkpoint = p::CheckpointRef{10, kSha, true, ""};
  auto fb = roundtrip(f);
  REQUIRE(fb);
  CHECK(std::get<p::Finish>(*fb).checkpoint->shared);
  p::Assign a;
  a.study = "s";
  a.lease = "L2";
  a.config = json::object();
  a.spec = json::object();
  a.resume = p::CheckpointRef{10, kSha, false, "4/7.2." + kSha + ".pack"};
  auto ab = roundtrip(a);
  REQUIRE(ab);
  CHECK(std::get<p::Assign>(*ab).resume == a.resume);

  json assign = json::parse(p::encode(a).body);
  for (const char* bad : {"../etc/passwd", "/etc/passwd", "4/../../x", "4//x", "./x", "4/."}) {
    assign["resume"]["path"] = bad;
    INFO(bad);
    CHECK(error_of("ASSIGN", assign)
              .starts_with("ASSIGN: field 'resume.path': not a relative path"));
  }
  json welcome = json::parse(p::encode(w).body);
  welcome["checkpoints"] = {{"dir", "relative/dir"}, {"token", std::string(32, 'a')}};
  CHECK(error_of("WELCOME", welcome) == "WELCOME: field 'checkpoints.dir': not an absolute path");
  welcome["checkpoints"] = {{"dir", "/d"}, {"token", "XYZ"}};
  CHECK(error_of("WELCOME", welcome) ==
        "WELCOME: field 'checkpoints.token': not 32 lowercase hex digits");
  welcome["checkpoints"] = {{"dir", "/d"}};
  CHECK(error_of("WELCOME", welcome) == "WELCOME: field 'checkpoints.token': missing");
  // The incoming name: the digest, then one of the lease; two leases never share one.
  CHECK(p::shared_pack_name(kSha, "L1").starts_with(kSha + "."));
  CHECK(p::shared_pack_name(kSha, "L1") != p::shared_pack_name(kSha, "L2"));
}
