// The daemon's dispatch: max_parallel, studies sharing slots, and studies
// added while it runs (SUBMIT).
#include <map>

#include "tests/scheduler/daemon_harness.h"

using namespace hpo_test;

TEST_CASE("max_parallel holds even when agents have more free slots", "[daemon]") {
  Fixture f;
  f.start();
  REQUIRE(f.daemon->add_study(spec_of(study_json("s", 10, 2))));
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(8);
  expect<p::Welcome>(*f.daemon, a);
  a.send(p::Ready{8});
  auto got = settle(*f.daemon, a, 20);
  REQUIRE(got.size() == 2);
  auto first = std::get<p::Assign>(got[0]);
  a.send(finish_of(first, 3.0));
  got = settle(*f.daemon, a, 20);
  int assigns = 0;
  for (const auto& m : got) assigns += std::holds_alternative<p::Assign>(m);
  CHECK(assigns == 1);
  CHECK(f.daemon->stats().leases == 2);
}

TEST_CASE("two studies share one agent's slots round-robin", "[daemon]") {
  Fixture f;
  f.start();
  REQUIRE(f.daemon->add_study(spec_of(study_json("s1", 10, 10))));
  REQUIRE(f.daemon->add_study(spec_of(study_json("s2", 10, 10))));
  FakeAgent a(f.ctx, f.daemon->endpoint(), "a");
  a.hello(4);
  expect<p::Welcome>(*f.daemon, a);
  a.send(p::Ready{4});
  std::map<std::string, int> per_study;
  for (const auto& m : settle(*f.daemon, a, 20)) {
    if (auto* as = std::get_if<p::Assign>(&m)) ++per_study[as->study];
  }
  CHECK(per_study["s1"] == 2);
  CHECK(per_study["s2"] == 2);
}

TEST_CASE("SUBMIT adds a study to a running scheduler and a bad one is refused", "[daemon]") {
  Fixture f;
  f.start();
  FakeAgent client(f.ctx, f.daemon->endpoint(), "client");
  client.send(p::Submit{study_json("late", 1, 1)});
  auto ok = expect<p::Ok>(*f.daemon, client);
  CHECK(ok.body["study"] == "late");
  json bad = study_json("bad", 1, 1);
  bad["budget"]["max_parallel"] = 0;
  client.send(p::Submit{bad});
  auto refused = expect<p::ErrorReply>(*f.daemon, client);
  CHECK_THAT(refused.message, Catch::Contains("max_parallel"));
  CHECK_FALSE(refused.hello_required);
  CHECK_FALSE(f.daemon->all_done());
}
