// Studies, trials, metrics, history, agents, events and transactions.
#include <sqlite3.h>

#include <catch2/catch.hpp>

#include "tests/results/fixtures.h"

using namespace hpo::results;
using namespace hpo::results::testing;
using nlohmann::json;

TEST_CASE("a study is stored with its spec and found by name and id") {
  TempDir dir;
  auto store = open_writer(dir / "hpo.db");
  auto id = ok(store.create_study(study_row("mlp", Direction::kMinimize, "val_loss")));
  auto found = ok(store.find_study("mlp"));
  REQUIRE(found);
  CHECK(found->id == id);
  CHECK(found->metric == "val_loss");
  CHECK(found->direction == Direction::kMinimize);
  CHECK(found->seed == 42);
  CHECK(found->status == "running");
  CHECK(found->spec["budget"]["max_trials"] == 20);
  CHECK(found->created == 1000.0);
  CHECK(ok(store.get_study(id))->name == "mlp");
  CHECK_FALSE(ok(store.find_study("nope")));
  CHECK_FALSE(ok(store.get_study(id + 5)));
}

TEST_CASE("a second study with the same name is refused") {
  TempDir dir;
  auto store = open_writer(dir / "hpo.db");
  ok(store.create_study(study_row("mlp")));
  auto again = store.create_study(study_row("mlp"));
  REQUIRE_FALSE(again);
  CHECK_THAT(again.error().message, Catch::Contains("already exists"));
}

TEST_CASE("study status and spec can be updated and unknown ones are refused") {
  TempDir dir;
  auto store = open_writer(dir / "hpo.db");
  auto id = ok(store.create_study(study_row("a")));
  ok(store.create_study(study_row("b")));
  ok(store.set_study_status(id, "interrupted", 2000.0));
  auto spec = ok(store.get_study(id))->spec;
  spec["budget"]["max_trials"] = 50;
  ok(store.update_study_spec(id, spec, 2001.0));
  auto s = ok(store.get_study(id));
  CHECK(s->status == "interrupted");
  CHECK(s->spec["budget"]["max_trials"] == 50);
  CHECK(s->updated == 2001.0);
  CHECK_FALSE(store.set_study_status(id, "sleeping", 1.0));
  CHECK_FALSE(store.set_study_status(id + 10, "finished", 1.0));
  CHECK_FALSE(store.update_study_spec(id + 10, spec, 1.0));
  auto all = ok(store.list_studies());
  REQUIRE(all.size() == 2);
  CHECK(all[0].name == "a");
  CHECK(all[1].name == "b");
}

TEST_CASE("a trial goes from queued to running to completed with its metrics") {
  TempDir dir;
  auto store = open_writer(dir / "hpo.db");
  auto study = ok(store.create_study(study_row("s")));
  auto id = ok(store.add_trial(study, 0, json{{"lr", 0.1}}, "abc", 5.0));
  auto t = ok(store.get_trial(id));
  CHECK(t->state == TrialState::kQueued);
  CHECK(t->attempt == 0);
  CHECK(t->hash == "abc");
  CHECK(t->queued == 5.0);
  CHECK_FALSE(t->started);

  ok(store.start_trial(id, 1, "L1", "agent-1", "", 6.0));
  t = ok(store.find_trial(study, 0));
  CHECK(t->state == TrialState::kRunning);
  CHECK(t->attempt == 1);
  CHECK(t->lease == "L1");
  CHECK(t->agent == "agent-1");
  CHECK(t->started == 6.0);

  ok(store.record_metric(id, 1, "val_accuracy", 0.5, 7.0));
  ok(store.record_metric(id, 1, "train_loss", 1.5, 7.0));
  ok(store.record_metric(id, 2, "val_accuracy", 0.7, 8.0));
  ok(store.record_metric(id, 2, "val_accuracy", 0.75, 8.5));  // a repeat replaces
  ok(store.finish_trial(id, TrialState::kCompleted, 0.75, "", "last lines", 9.0));
  t = ok(store.get_trial(id));
  CHECK(t->state == TrialState::kCompleted);
  CHECK(t->value == 0.75);
  CHECK(t->finished == 9.0);
  CHECK(t->log_tail == "last lines");

  auto m = ok(store.metrics(id));
  REQUIRE(m.size() == 3);
  CHECK(m[0].name == "train_loss");
  CHECK(m[1].name == "val_accuracy");
  CHECK(m[2].step == 2);
  CHECK(m[2].value == 0.75);
  CHECK(m[2].number == 0);
}

TEST_CASE("trial writes name a missing trial or study and a duplicate number") {
  TempDir dir;
  auto store = open_writer(dir / "hpo.db");
  auto study = ok(store.create_study(study_row("s")));
  ok(store.add_trial(study, 0, json::object(), "h", 1.0));
  auto dup = store.add_trial(study, 0, json::object(), "h", 1.0);
  REQUIRE_FALSE(dup);
  CHECK_THAT(dup.error().message, Catch::Contains("already has trial 0"));
  auto orphan = store.add_trial(study + 9, 0, json::object(), "h", 1.0);
  REQUIRE_FALSE(orphan);
  CHECK_THAT(orphan.error().message, Catch::Contains("no study"));
  for (auto s :
       {store.start_trial(999, 1, "L", "a", "", 1.0), store.record_metric(999, 1, "x", 1, 1),
        store.finish_trial(999, TrialState::kFailed, {}, "e", "", 1.0),
        store.requeue_trial(999, 1.0)}) {
    REQUIRE_FALSE(s);
    CHECK_THAT(s.error().message, Catch::Contains("no trial with id 999"));
  }
  CHECK_FALSE(ok(store.find_trial(study, 99)));
  CHECK_FALSE(ok(store.get_trial(999)));
  auto not_final = store.finish_trial(1, TrialState::kRunning, {}, "", "", 1.0);
  REQUIRE_FALSE(not_final);
  CHECK_THAT(not_final.error().message, Catch::Contains("not a final state"));
}

TEST_CASE("a requeued trial starts its next attempt with clean metrics") {
  TempDir dir;
  auto store = open_writer(dir / "hpo.db");
  auto study = ok(store.create_study(study_row("s")));
  auto id = ok(store.add_trial(study, 0, json::object(), "h", 1.0));
  ok(store.start_trial(id, 1, "L1", "a", "", 2.0));
  ok(store.record_metric(id, 1, "val_accuracy", 0.1, 3.0));
  ok(store.record_metric(id, 2, "val_accuracy", 0.2, 3.0));
  ok(store.requeue_trial(id, 4.0));
  auto t = ok(store.get_trial(id));
  CHECK(t->state == TrialState::kQueued);
  CHECK(t->lease.empty());
  CHECK(t->agent.empty());
  CHECK(ok(store.metrics(id)).size() == 2);  // the given-up attempt's, until the next starts
  ok(store.start_trial(id, 2, "L2", "b", "", 5.0));
  CHECK(ok(store.metrics(id)).empty());
  ok(store.record_metric(id, 1, "val_accuracy", 0.3, 6.0));
  auto m = ok(store.metrics(id));
  REQUIRE(m.size() == 1);
  CHECK(m[0].value == 0.3);
  auto events = ok(store.events(study));
  REQUIRE(events.size() == 3);
  CHECK(events[0].kind == "assigned");
  CHECK(events[1].kind == "requeued");
  CHECK(events[1].detail["attempt"] == 1);
  CHECK(events[1].detail["lease"] == "L1");
  CHECK(events[2].kind == "assigned");
  CHECK(events[2].detail["attempt"] == 2);
}

TEST_CASE("recovery marks every running trial interrupted and logs each") {
  TempDir dir;
  auto store = open_writer(dir / "hpo.db");
  auto study = ok(store.create_study(study_row("s")));
  for (int n = 0; n < 4; ++n) ok(store.add_trial(study, n, json::object(), "h", 1.0));
  ok(store.start_trial(1, 1, "L1", "a", "", 2.0));
  ok(store.start_trial(2, 1, "L2", "a", "", 2.0));
  ok(store.start_trial(3, 1, "L3", "a", "", 2.0));
  ok(store.finish_trial(3, TrialState::kCompleted, 1.0, "", "", 3.0));
  CHECK(ok(store.mark_running_interrupted(10.0)) == 2);
  CHECK(ok(store.trials(study, TrialState::kInterrupted)).size() == 2);
  CHECK(ok(store.trials(study, TrialState::kQueued)).size() == 1);
  CHECK(ok(store.trials(study)).size() == 4);
  auto counts = ok(store.count_trials(study));
  CHECK(counts[TrialState::kInterrupted] == 2);
  CHECK(counts[TrialState::kCompleted] == 1);
  CHECK(counts[TrialState::kQueued] == 1);
  auto events = ok(store.events(study));
  int interrupted = 0;
  for (const auto& e : events) interrupted += e.kind == "interrupted";
  CHECK(interrupted == 2);
  CHECK(ok(store.mark_running_interrupted(11.0)) == 0);
}

TEST_CASE("the history lists every trial in number order with its objective steps") {
  TempDir dir;
  auto store = open_writer(dir / "hpo.db");
  auto study = ok(store.create_study(study_row("s")));
  auto other = ok(store.create_study(study_row("other")));
  // Added out of order: the history follows numbers, not ids.
  auto t2 = ok(store.add_trial(study, 2, json{{"x", 2}}, "h2", 1.0));
  auto t0 = ok(store.add_trial(study, 0, json{{"x", 0}}, "h0", 1.0));
  auto t1 = ok(store.add_trial(study, 1, json{{"x", 1}}, "h1", 1.0));
  ok(store.add_trial(other, 0, json{{"x", 9}}, "h9", 1.0));
  ok(store.start_trial(t0, 1, "L", "a", "", 2.0));
  ok(store.record_metric(t0, 2, "val_accuracy", 0.4, 3.0));
  ok(store.record_metric(t0, 1, "val_accuracy", 0.3, 3.0));
  ok(store.record_metric(t0, 1, "train_loss", 9.0, 3.0));  // not the objective
  ok(store.finish_trial(t0, TrialState::kPruned, 0.4, "", "", 4.0));
  ok(store.start_trial(t2, 1, "L", "a", "", 2.0));
  ok(store.record_metric(t2, 1, "val_accuracy", 0.9, 3.0));
  ok(store.finish_trial(t2, TrialState::kCompleted, 0.9, "", "", 4.0));
  (void)t1;
  auto h = ok(store.history(study));
  REQUIRE(h.size() == 3);
  CHECK(h[0].number == 0);
  CHECK(h[0].state == TrialState::kPruned);
  REQUIRE(h[0].intermediates.size() == 2);
  CHECK(h[0].intermediates[0].step == 1);
  CHECK(h[0].intermediates[0].value == 0.3);
  CHECK(h[0].intermediates[1].value == 0.4);
  CHECK(h[1].state == TrialState::kQueued);
  CHECK_FALSE(h[1].value);
  CHECK(h[1].intermediates.empty());
  CHECK(h[2].config["x"] == 2);
  CHECK(h[2].value == 0.9);
  CHECK_FALSE(store.history(other + 100));
}

TEST_CASE("study metrics come in trial number order for export") {
  TempDir dir;
  auto store = open_writer(dir / "hpo.db");
  auto study = ok(store.create_study(study_row("s")));
  completed_trial(store, study, 1, json{{"x", 1}}, 0.5);
  completed_trial(store, study, 0, json{{"x", 0}}, 0.6);
  auto m = ok(store.study_metrics(study));
  REQUIRE(m.size() == 4);
  CHECK(m[0].number == 0);
  CHECK(m[3].number == 1);
  CHECK(m[3].value == 0.5);
}

TEST_CASE("an agent is recorded once and its last sighting is updated") {
  TempDir dir;
  auto store = open_writer(dir / "hpo.db");
  ok(store.upsert_agent("a1", "gpu-01", json::array({"0", "1"}), 2, 100.0));
  ok(store.upsert_agent("a1", "gpu-01", json::array({"0", "1"}), 2, 150.0));
  ok(store.upsert_agent("a2", "cpu-01", json::array(), 4, 120.0));
  auto agents = ok(store.agents());
  REQUIRE(agents.size() == 2);
  CHECK(agents[0].id == "a1");
  CHECK(agents[0].first_seen == 100.0);
  CHECK(agents[0].last_seen == 150.0);
  CHECK(agents[0].gpus.size() == 2);
  CHECK(agents[1].slots == 4);
}

TEST_CASE("a trial's failure and interruption counts and a drained agent survive reopening") {
  TempDir dir;
  std::int64_t trial = 0;
  {
    auto store = open_writer(dir / "hpo.db");
    auto study = ok(store.create_study(study_row("s")));
    trial = ok(store.add_trial(study, 0, json{{"x", 1}}, "h0", 1.0));
    CHECK(ok(store.count_failure(trial)) == 1);
    CHECK(ok(store.count_failure(trial)) == 2);
    CHECK(ok(store.count_interruption(trial)) == 1);
    CHECK_FALSE(store.count_failure(trial + 7));  // no such trial
    ok(store.upsert_agent("a1", "host", json::array(), 1, 100.0));
    ok(store.set_agent_drained("a1", "3 trials failed to start: ENOSPC", 110.0));
    CHECK_FALSE(store.set_agent_drained("nobody", "x", 110.0));
  }
  auto store = open_reader(dir / "hpo.db");
  auto t = ok(store.get_trial(trial));
  REQUIRE(t);
  CHECK(t->failures == 2);
  CHECK(t->interruptions == 1);
  auto agents = ok(store.agents());
  REQUIRE(agents.size() == 1);
  CHECK(agents[0].drained == "3 trials failed to start: ENOSPC");
}

TEST_CASE("events are appended in order and the newest can be limited") {
  TempDir dir;
  auto store = open_writer(dir / "hpo.db");
  auto study = ok(store.create_study(study_row("s")));
  ok(store.append_event(std::nullopt, std::nullopt, "agent_joined", json{{"agent", "a1"}}, 1.0));
  ok(store.append_event(study, std::nullopt, "study_started", json::object(), 2.0));
  ok(store.append_event(study, std::nullopt, "agent_lost", json{{"agent", "a1"}}, 3.0));
  auto all = ok(store.events(std::nullopt));
  REQUIRE(all.size() == 3);
  CHECK(all[0].kind == "agent_joined");
  CHECK_FALSE(all[0].study);
  auto mine = ok(store.events(study));
  REQUIRE(mine.size() == 2);
  auto last = ok(store.events(std::nullopt, 1));
  REQUIRE(last.size() == 1);
  CHECK(last[0].kind == "agent_lost");
  CHECK(last[0].detail["agent"] == "a1");
}

TEST_CASE("a transaction that is not committed leaves nothing behind") {
  TempDir dir;
  const auto path = dir / "hpo.db";
  auto store = open_writer(path);
  auto study = ok(store.create_study(study_row("s")));
  {
    auto tx = ok(store.begin());
    ok(store.add_trial(study, 0, json::object(), "h", 1.0));
    ok(store.add_trial(study, 1, json::object(), "h", 1.0));
  }
  CHECK(ok(store.trials(study)).empty());
  {
    auto tx = ok(store.begin());
    CHECK_FALSE(store.begin());  // one at a time
    ok(store.add_trial(study, 0, json::object(), "h", 1.0));
    ok(store.start_trial(1, 1, "L", "a", "", 2.0));
    // Invisible to a reader until committed.
    auto reader = open_reader(path);
    CHECK(ok(reader.trials(study)).empty());
    ok(tx.commit());
    CHECK(ok(reader.trials(study)).size() == 1);
    CHECK_FALSE(tx.commit());
  }
  CHECK(ok(store.trials(study)).size() == 1);
  CHECK(ok(store.events(study)).size() == 1);
}

TEST_CASE("a failed write inside a transaction keeps the transaction usable") {
  TempDir dir;
  auto store = open_writer(dir / "hpo.db");
  auto study = ok(store.create_study(study_row("s")));
  auto tx = ok(store.begin());
  ok(store.add_trial(study, 0, json::object(), "h", 1.0));
  CHECK_FALSE(store.start_trial(42, 1, "L", "a", "", 1.0));
  CHECK_FALSE(store.add_trial(study, 0, json::object(), "h", 1.0));
  ok(store.add_trial(study, 1, json::object(), "h", 1.0));
  ok(tx.commit());
  CHECK(ok(store.trials(study)).size() == 2);
}

TEST_CASE("a transaction stays valid when its store is moved") {
  TempDir dir;
  auto store = open_writer(dir / "hpo.db");
  auto study = ok(store.create_study(study_row("s")));
  auto tx = ok(store.begin());
  Store moved = std::move(store);
  ok(moved.add_trial(study, 0, json::object(), "h", 1.0));
  ok(tx.commit());
  CHECK(ok(moved.trials(study)).size() == 1);
}

TEST_CASE("a damaged config in the file is an error that names the trial, not a crash") {
  TempDir dir;
  const auto path = dir / "hpo.db";
  std::int64_t study = 0;
  {
    auto store = open_writer(path);
    study = ok(store.create_study(study_row("s")));
    ok(store.add_trial(study, 3, json{{"x", 1}}, "h", 1.0));
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "UPDATE trials SET config = '{\"x\":'", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  sqlite3_close(db);
  auto store = open_reader(path);
  auto listed = store.trials(study);
  REQUIRE_FALSE(listed);
  CHECK_THAT(listed.error().message, Catch::Contains("trial 3 config"));
  CHECK_FALSE(store.find_trial(study, 3));
  CHECK_FALSE(store.history(study));
}
