// The wire protocol: every message round-trips, and the decoder turns every
// kind of bad frame set into an Error that names the type and the field.
#include "scheduler/protocol.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace p = hpo::scheduler::protocol;
using nlohmann::json;

namespace {

hpo::Result<p::Message> decode3(std::string_view version, std::string_view type,
                                std::string_view body) {
  std::vector<std::string_view> frames{version, type, body};
  return p::decode(frames);
}

hpo::Result<p::Message> roundtrip(const p::Message& m) {
  p::Frames f = p::encode(m);
  return decode3(f.version, f.type, f.body);
}

std::string error_of(const hpo::Result<p::Message>& r) {
  REQUIRE_FALSE(r.has_value());
  return r.error().message;
}

}  // namespace

TEST_CASE("every message type survives encode and decode") {
  p::Hello hello{"gpu-7", "node3",
                 4,       json::array({0, 1}),
                 42,      {{"mnist", 3, 2, "1.3.2", false}, {"mnist", 5, 1, "1.5.1", true}}};
  auto h = roundtrip(hello);
  REQUIRE(h);
  const auto& hb = std::get<p::Hello>(*h);
  CHECK(hb.agent == "gpu-7");
  CHECK(hb.slots == 4);
  CHECK(hb.pid == 42);
  REQUIRE(hb.running.size() == 2);
  CHECK(hb.running[1].lease == "1.5.1");
  CHECK(hb.running[1].finished);
  CHECK(hb.gpus == json::array({0, 1}));

  auto a = roundtrip(p::Assign{"s", 7, 2, "1.7.2", json{{"lr", 0.1}}, json{{"kind", "builtin"}}});
  REQUIRE(a);
  CHECK(std::get<p::Assign>(*a).config["lr"] == 0.1);
  CHECK(std::get<p::Assign>(*a).attempt == 2);

  auto r = roundtrip(p::Report{"s", 7, 2, "1.7.2", 3, {{"loss", 0.5}, {"acc", 0.9}}});
  REQUIRE(r);
  CHECK(std::get<p::Report>(*r).metrics.at("acc") == 0.9);
  CHECK(std::get<p::Report>(*r).step == 3);

  auto f = roundtrip(p::Finish{
      "s", 7, 2, "1.7.2", p::Outcome::kPruned, {{"value", 1.5}}, "err", "tail\n", false, false});
  REQUIRE(f);
  CHECK(std::get<p::Finish>(*f).outcome == p::Outcome::kPruned);
  CHECK(std::get<p::Finish>(*f).log_tail == "tail\n");

  CHECK_FALSE(std::get<p::Finish>(*f).start_failed);
  p::Finish start_failed{"s", 7,        2,  "1.7.2", p::Outcome::kInterrupted,
                         {},  "ENOSPC", "", false,   false};
  start_failed.start_failed = true;
  auto sf = roundtrip(start_failed);
  REQUIRE(sf);
  CHECK(std::get<p::Finish>(*sf).start_failed);
  CHECK_FALSE(std::get<p::Finish>(*sf).refused);
  // Absent on the wire unless true: an older agent's FINISH decodes as before.
  CHECK(p::encode(f.value()).body.find("start_failed") == std::string::npos);

  auto d = roundtrip(p::Decision{7, 2, "1.7.2", true});
  REQUIRE(d);
  CHECK(std::get<p::Decision>(*d).stop);

  auto w = roundtrip(p::Welcome{"abc", 100, 3, {"x"}, {"y"}});
  REQUIRE(w);
  CHECK(std::get<p::Welcome>(*w).stop == std::vector<std::string>{"y"});

  auto ready = roundtrip(p::Ready{2, true});
  REQUIRE(ready);
  CHECK(std::get<p::Ready>(*ready).free_slots == 2);
  CHECK(std::get<p::Ready>(*ready).draining);
  CHECK(std::holds_alternative<p::Ack>(*roundtrip(p::Ack{1, 1, "l"})));
  CHECK(std::holds_alternative<p::Heartbeat>(*roundtrip(p::Heartbeat{})));
  CHECK(std::holds_alternative<p::Bye>(*roundtrip(p::Bye{})));
  CHECK(std::get<p::Submit>(*roundtrip(p::Submit{json{{"name", "x"}}})).study["name"] == "x");
  CHECK(std::get<p::ErrorReply>(*roundtrip(p::ErrorReply{"no", true, false})).hello_required);
  CHECK(std::get<p::ErrorReply>(*roundtrip(p::ErrorReply{"no", false, true})).fatal);
  CHECK_FALSE(std::get<p::ErrorReply>(*roundtrip(p::ErrorReply{"no", true, false})).fatal);
  CHECK(std::get<p::Ok>(*roundtrip(p::Ok{json{{"id", 1}}})).body["id"] == 1);
}

TEST_CASE("a non-finite metric is left out instead of breaking the message") {
  auto r = roundtrip(p::Report{"s", 1, 1, "l", 1, {{"loss", std::nan("")}, {"acc", 0.5}}});
  REQUIRE(r);
  CHECK(std::get<p::Report>(*r).metrics.count("loss") == 0);
  CHECK(std::get<p::Report>(*r).metrics.at("acc") == 0.5);
}

TEST_CASE("the decoder rejects a wrong number of frames") {
  std::vector<std::string_view> none;
  CHECK_THAT(p::decode(none).error().message,
             Catch::Contains("expected 3 frames") && Catch::Contains("got 0"));
  std::vector<std::string_view> two{"hpo/1", "HEARTBEAT"};
  CHECK_THAT(p::decode(two).error().message, Catch::Contains("got 2"));
  std::vector<std::string_view> four{"hpo/1", "HEARTBEAT", "{}", "{}"};
  CHECK_THAT(p::decode(four).error().message, Catch::Contains("got 4"));
}

TEST_CASE("the decoder rejects an unknown version, naming the type") {
  auto e = error_of(decode3("hpo/2", "HEARTBEAT", "{}"));
  CHECK_THAT(e,
             Catch::Contains("HEARTBEAT") && Catch::Contains("unknown protocol version 'hpo/2'"));
}

TEST_CASE("the decoder rejects an unknown message type") {
  CHECK_THAT(error_of(decode3("hpo/1", "DANCE", "{}")),
             Catch::Contains("unknown message type 'DANCE'"));
}

TEST_CASE("the decoder rejects a body that is not JSON or not an object") {
  CHECK_THAT(error_of(decode3("hpo/1", "REPORT", "{\"trial\": ")),
             Catch::Contains("REPORT: body is not valid JSON"));
  CHECK_THAT(error_of(decode3("hpo/1", "REPORT", "[1,2]")),
             Catch::Contains("REPORT: body is not a JSON object"));
  CHECK_THAT(error_of(decode3("hpo/1", "READY", std::string("\xff\xfe", 2))),
             Catch::Contains("READY: body is not valid JSON"));
}

TEST_CASE("the decoder rejects an oversized body before parsing it") {
  std::string big(p::kMaxBodyBytes + 1, ' ');
  CHECK_THAT(error_of(decode3("hpo/1", "REPORT", big)),
             Catch::Contains("REPORT: body of 1048577 bytes is over the limit"));
}

TEST_CASE("the decoder names a missing field and its message type") {
  CHECK(error_of(decode3("hpo/1", "REPORT",
                         R"({"study":"s","trial":1,"attempt":1,"lease":"l","metrics":{}})")) ==
        "REPORT: field 'step': missing");
  CHECK(
      error_of(decode3("hpo/1", "ASSIGN", R"({"study":"s","trial":1,"attempt":1,"lease":"l"})")) ==
      "ASSIGN: field 'config': missing");
  CHECK(error_of(decode3("hpo/1", "HELLO", R"({"host":"h","slots":1})")) ==
        "HELLO: field 'agent': missing");
}

TEST_CASE("the decoder names a field of the wrong type") {
  CHECK(error_of(decode3(
            "hpo/1", "REPORT",
            R"({"study":"s","trial":"one","attempt":1,"lease":"l","step":1,"metrics":{}})")) ==
        "REPORT: field 'trial': not an integer");
  CHECK(error_of(decode3(
            "hpo/1", "REPORT",
            R"({"study":"s","trial":1,"attempt":1,"lease":"l","step":1,"metrics":{"a":"x"}})")) ==
        "REPORT: field 'metrics': value of 'a' is not a number");
  CHECK(error_of(decode3("hpo/1", "READY", R"({"free_slots":1.5})")) ==
        "READY: field 'free_slots': not an integer");
  CHECK(error_of(decode3(
            "hpo/1", "HELLO",
            R"({"agent":"a","slots":1,"running":[{"study":"s","trial":1,"attempt":1}]})")) ==
        "HELLO: field 'running[0].lease': missing");
  CHECK_THAT(error_of(decode3("hpo/1", "HELLO", R"({"agent":"a","slots":-3})")),
             Catch::Contains("HELLO: field 'slots': out of range"));
}

TEST_CASE("the decoder rejects an unknown outcome or decision") {
  CHECK_THAT(
      error_of(decode3("hpo/1", "FINISH",
                       R"({"study":"s","trial":1,"attempt":1,"lease":"l","outcome":"great"})")),
      Catch::Contains("FINISH: field 'outcome'") && Catch::Contains("'great'"));
  CHECK_THAT(error_of(decode3("hpo/1", "DECISION",
                              R"({"trial":1,"attempt":1,"lease":"l","decision":"MAYBE"})")),
             Catch::Contains("DECISION: field 'decision'"));
}

TEST_CASE("receive on a real socket turns garbage into errors and keeps going") {
  zmq::context_t ctx(1);
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind("inproc://protocol-test");
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect("inproc://protocol-test");

  dealer.send(zmq::str_buffer("just one frame"), zmq::send_flags::none);
  std::vector<zmq::const_buffer> many(20, zmq::str_buffer("x"));
  for (std::size_t i = 0; i + 1 < many.size(); ++i) dealer.send(many[i], zmq::send_flags::sndmore);
  dealer.send(many.back(), zmq::send_flags::none);
  REQUIRE(p::send(dealer, p::Heartbeat{}));

  std::vector<p::Received> got;
  for (int i = 0; i < 200 && got.size() < 3; ++i) {
    zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(10));
    while (auto r = p::receive(router, true)) got.push_back(std::move(*r));
  }
  REQUIRE(got.size() == 3);
  CHECK_FALSE(got[0].message.has_value());
  CHECK_FALSE(got[1].message.has_value());
  REQUIRE(got[2].message.has_value());
  CHECK(std::holds_alternative<p::Heartbeat>(*got[2].message));
  CHECK(got[2].routing_id == got[0].routing_id);
}

TEST_CASE("a well-framed body nested past the depth limit is refused, naming the type") {
  // 200,000 levels inside a 1 MiB body: a reader that recursed with the input would overflow.
  for (std::string opener : {"[", "{\"a\":"}) {
    std::string deep;
    for (int i = 0; i < 200000 && deep.size() + opener.size() < 900000; ++i) deep += opener;
    std::string body = "{\"agent\": \"x\", \"gpus\": " + deep;
    CHECK_THAT(error_of(decode3("hpo/1", "HELLO", body)),
               Catch::Contains("HELLO") && Catch::Contains("nested deeper than 128 levels"));
  }
}

TEST_CASE("a body with a number that overflows a double is refused, naming the type") {
  CHECK_THAT(error_of(decode3("hpo/1", "REPORT", R"({"trial": 1e99999})")),
             Catch::Contains("REPORT") && Catch::Contains("overflow"));
}

TEST_CASE("the decoder refuses absurd values, naming the type and the field") {
  struct Case {
    const char* type;
    const char* body;
    const char* expected;
  };
  const std::vector<Case> cases{
      {"HELLO", R"({"agent":"a","slots":-1})", "HELLO: field 'slots': out of range [0, 4096]"},
      {"HELLO", R"({"agent":"a","slots":1000000000})", "HELLO: field 'slots': out of range"},
      {"HELLO", R"({"agent":"a","slots":1e9})", "HELLO: field 'slots': not an integer"},
      {"HELLO", R"({"agent":"a","slots":"4"})", "HELLO: field 'slots': not an integer"},
      {"HELLO", R"({"agent":"","slots":1})", "HELLO: field 'agent': empty"},
      {"HELLO", R"({"agent":"a","slots":1,"gpus":{"a":1}})", "HELLO: field 'gpus': not an array"},
      {"HELLO",
       R"({"agent":"a","slots":1,"running":[{"study":"s","trial":1,"attempt":-2,"lease":"l"}]})",
       "HELLO: field 'running[0].attempt': out of range"},
      {"READY", R"({"free_slots":-3})", "READY: field 'free_slots': out of range"},
      {"REPORT", R"({"study":"s","trial":0,"attempt":-1,"lease":"l","step":0,"metrics":{}})",
       "REPORT: field 'attempt': out of range"},
      {"REPORT",
       R"({"study":"s","trial":18446744073709551615,"attempt":1,"lease":"l","step":0,"metrics":{}})",
       "REPORT: field 'trial': out of range"},
      {"FINISH", R"({"study":"s","trial":0,"attempt":1,"lease":"","outcome":"ok"})",
       "FINISH: field 'lease': empty"},
      {"ACK", R"({"trial":0,"attempt":1,"lease":""})", "ACK: field 'lease': empty"},
      {"ASSIGN", R"({"study":"s","trial":-5,"attempt":1,"lease":"l","config":{},"spec":{}})",
       "ASSIGN: field 'trial': out of range"},
      {"WELCOME", R"({"scheduler":"x","heartbeat_ms":0,"liveness":5})",
       "WELCOME: field 'heartbeat_ms': out of range"},
  };
  for (const auto& c : cases) {
    INFO(c.type << " " << c.body);
    CHECK_THAT(error_of(decode3("hpo/1", c.type, c.body)), Catch::StartsWith(c.expected));
  }
  const std::string long_name(p::kMaxNameBytes + 1, 'n');
  CHECK_THAT(error_of(decode3("hpo/1", "HELLO", json{{"agent", long_name}, {"slots", 1}}.dump())),
             Catch::Contains("HELLO: field 'agent': longer than 256 bytes"));
  CHECK_THAT(
      error_of(decode3(
          "hpo/1", "HELLO",
          json{{"agent", "a"}, {"slots", 1}, {"gpus", json(std::vector<int>(p::kMaxGpus + 1, 0))}}
              .dump())),
      Catch::Contains("HELLO: field 'gpus': more than 256 entries"));
}

TEST_CASE("a FINISH too big for a message is cut to fit, with a note, keeping the last lines") {
  p::Finish f{"s", 3, 1, "1.3.1", p::Outcome::kOk, {{"value", 0.5}}, "", ""};
  std::string tail;
  for (int i = 0; tail.size() < 3 * p::kMaxBodyBytes; ++i)
    tail += "line " + std::to_string(i) + "\n";
  f.log_tail = tail;
  const std::string note = p::fit_to_limit(f);
  CHECK_THAT(note, Catch::Contains("log tail cut"));
  CHECK(p::encode(f).body.size() <= p::kMaxBodyBytes);
  CHECK_THAT(f.log_tail, Catch::StartsWith("[hpo] FINISH of") && Catch::Contains("1048576"));
  CHECK_THAT(f.log_tail, Catch::EndsWith(tail.substr(tail.size() - 100)));
  CHECK(f.outcome == p::Outcome::kOk);
  CHECK(f.metrics.at("value") == 0.5);

  p::Finish many{"s", 3, 1, "1.3.1", p::Outcome::kOk, {}, "", "short tail\n"};
  for (int i = 0; i < 100000; ++i) many.metrics["metric_with_a_long_name_" + std::to_string(i)] = i;
  CHECK_THAT(p::fit_to_limit(many), Catch::Contains("final metrics dropped"));
  CHECK(p::encode(many).body.size() <= p::kMaxBodyBytes);
  CHECK_FALSE(many.metrics.empty());

  p::Finish small{"s", 3, 1, "1.3.1", p::Outcome::kOk, {{"value", 1}}, "", "tail\n"};
  CHECK(p::fit_to_limit(small).empty());
  CHECK(small.log_tail == "tail\n");
}
