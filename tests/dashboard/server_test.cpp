// dashboard/server.h: the HTTP server in this process, asked by an HTTP client on 127.0.0.1.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <thread>

#include "dashboard/server.h"
#include "tests/dashboard/fixtures.h"

using namespace hpo;
using namespace hpo::dashboard;
using namespace hpo::dashboard::testing;
using nlohmann::json;

namespace {

// A database with study "s" and a dashboard serving it on a free port until the end.
struct Served {
  TempDir dir;
  results::Store writer = open_writer(dir / "hpo.db");
  std::unique_ptr<Server> server;
  std::thread thread;

  explicit Served(ServerOptions options = {}) {
    auto study = ok(writer.create_study(spaced_study()));
    run_trial(writer, study, 0, json{{"x", 0.5}}, 0.7, "a", 1, 2);
    options.db = dir / "hpo.db";
    options.port = 0;
    auto opened = Server::open(options);
    if (!opened) FAIL(opened.error().message);
    server = std::move(*opened);
    thread = std::thread([this] { CHECK(server->serve()); });
    // serve() listens at once (the socket is bound in open()); a request before it queues.
  }
  ~Served() {
    server->stop();
    thread.join();
  }
  httplib::Client client() const { return httplib::Client("127.0.0.1", server->port()); }
};

}  // namespace

TEST_CASE("a loopback dashboard serves its page, ECharts and the API, and nothing that writes") {
  Served s;
  auto c = s.client();
  auto page = c.Get("/");
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(page->body.find("<script src=\"app.js\"></script>") != std::string::npos);
  CHECK(page->get_header_value("Content-Security-Policy").find("script-src 'self'") !=
        std::string::npos);
  auto charts = c.Get("/echarts.min.js");
  REQUIRE(charts);
  CHECK(charts->status == 200);
  CHECK(charts->body.size() > 500'000);
  CHECK(charts->body.find("echarts") != std::string::npos);
  auto licence = c.Get("/LICENSE-echarts");
  REQUIRE(licence);
  CHECK(licence->body.find("Apache License") != std::string::npos);

  auto studies = c.Get("/api/studies");
  REQUIRE(studies);
  CHECK(studies->status == 200);
  CHECK(json::parse(studies->body)["studies"][0]["best"] == 0.7);
  auto missing = c.Get("/api/history?name=nope");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK(json::parse(missing->body)["error"] == "no study 'nope' (studies: s)");

  for (const char* method : {"POST", "PUT", "DELETE"}) {
    httplib::Request req;
    req.method = method;
    req.path = "/api/studies";
    auto res = c.send(req);
    REQUIRE(res);
    CHECK(res->status == 405);
  }
  CHECK(c.Get("/../../etc/passwd")->status == 404);
}

TEST_CASE("a loopback dashboard refuses a request whose Host is another site's (DNS rebinding)") {
  Served s;
  auto c = s.client();
  auto bad = c.Get("/api/studies", {{"Host", "attacker.example:8080"}});
  REQUIRE(bad);
  CHECK(bad->status == 403);
  auto good = c.Get("/api/studies", {{"Host", "localhost:8080"}});
  REQUIRE(good);
  CHECK(good->status == 200);
}

TEST_CASE("a dashboard with a token answers the API only to requests that carry it") {
  ServerOptions o;
  o.token = "0123456789abcdef0123456789abcdef";
  Served s(o);
  auto c = s.client();
  CHECK(c.Get("/api/studies")->status == 401);
  CHECK(c.Get("/api/studies?token=0123456789abcdef0123456789abcdee")->status == 401);
  CHECK(c.Get("/api/studies?token=0123456789abcdef0123456789abcdef")->status == 200);
  CHECK(c.Get("/api/studies", {{"Authorization", "Bearer 0123456789abcdef0123456789abcdef"}})
            ->status == 200);
  CHECK(c.Get("/api/studies", {{"Authorization", "Bearer wrong"}})->status == 401);
  CHECK(c.Get("/")->status == 200);  // the page holds no data
}

TEST_CASE("the dashboard's answers follow the database while a writer changes it") {
  Served s;
  auto c = s.client();
  const auto mark = json::parse(c.Get("/api/changes")->body)["mark"];
  CHECK(json::parse(c.Get("/api/history?name=s")->body)["completed"] == 1);
  CHECK(json::parse(c.Get("/api/changes")->body)["mark"] == mark);  // nothing changed
  auto study = ok(s.writer.find_study("s"));
  run_trial(s.writer, study->id, 1, json{{"x", 0.1}}, 0.9, "a", 3, 4);
  CHECK(json::parse(c.Get("/api/changes")->body)["mark"] != mark);
  CHECK(json::parse(c.Get("/api/history?name=s")->body)["completed"] == 2);  // not the cached one
}

TEST_CASE("loopback addresses are told from the others") {
  CHECK(is_loopback("127.0.0.1"));
  CHECK(is_loopback("127.8.9.1"));
  CHECK(is_loopback("localhost"));
  CHECK(is_loopback("::1"));
  CHECK_FALSE(is_loopback("0.0.0.0"));
  CHECK_FALSE(is_loopback("10.0.0.1"));
  CHECK_FALSE(is_loopback("::"));
  CHECK_FALSE(is_loopback("1270.0.0.1"));
  CHECK_FALSE(is_loopback("127.attacker.example"));
}
