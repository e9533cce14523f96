// A CURVE-secured hpo cluster on the test bed (bed.h): the scheduler on the
// bed's scheduler host, bound to its 198.18.0.1 address, agents "agent<i>"
// on agent host i, each with its own key, workdir and hostname. Heartbeats
// every 200 ms and a liveness of 5: the scheduler declares an agent lost
// after about 1 s of silence (unless told otherwise), and an agent does the
// same of the scheduler (the scheduler's WELCOME tells it both).
//
// Member order is teardown order in reverse: processes go first, then the
// bed (which kills anything left in its namespaces), then the directory.
#pragma once

#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "tests/cluster/bed.h"
#include "tests/e2e/harness.h"

namespace hpo::cluster {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class Cluster {
 public:
  static constexpr int kPort = 7070;  // any port: each scheduler host is a fresh namespace

  // `liveness`: heartbeats missed before the scheduler declares an agent lost. The last
  // `unlisted` agent hosts get key pairs that are valid but on no allow-list of the
  // scheduler's (in keys/unlisted/, not keys/agents/): strangers.
  explicit Cluster(int agents, int liveness = 5, int unlisted = 0)
      : liveness_(liveness),
        listed_(agents - unlisted),
        dir_("cluster"),
        bed_(agents, dir_.path),
        keys_(e2e::make_keys(dir_.path, agent_names(listed_), {})) {
    for (int i = listed_ + 1; i <= agents; ++i) {
      auto r = test::run_hpo("keys new " + agent_name(i) + " --dir " +
                             (keys_.dir / "unlisted").string());
      INFO(r.err);
      REQUIRE(r.code == 0);
    }
  }

  // HPO_CLUSTER_LOGS=DIR keeps the logs and the database (in DIR/<temp dir's name>/).
  ~Cluster() {
    scheduler_.reset();
    agents_.clear();
    const char* keep = std::getenv("HPO_CLUSTER_LOGS");
    if (!keep || !*keep) return;
    const fs::path to = fs::path(keep) / dir_.path.filename();
    std::error_code ec;
    fs::create_directories(to, ec);
    for (const auto& name : log_names()) fs::copy(path(name), to / name, ec);
    fs::copy(db(), to / "hpo.db", ec);
  }
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  const Bed& bed() const { return bed_; }
  fs::path db() const { return bed_.scheduler().workdir / "hpo.db"; }
  fs::path path(const std::string& name) const { return dir_.path / name; }
  static std::string agent_name(int i) { return "agent" + std::to_string(i); }

  // Starts (or restarts) the scheduler on the scheduler host with `study` (a JSON file);
  // it exits when the study is done. Its log: scheduler.log, appended to.
  test::Process& start_scheduler(const fs::path& study) {
    scheduler_.reset();
    std::vector<std::string> args = {
        "scheduler",          "--db",    db().string(),  "--bind",
        bed_.endpoint(kPort), "--study", study.string(), "--exit-when-done",
        "--heartbeat-ms",     "200",     "--liveness",   std::to_string(liveness_)};
    args = e2e::plus_args(args, keys_.scheduler_args());
    scheduler_ = std::make_unique<test::Process>(bed_.launcher(bed_.scheduler()), args,
                                                 path("scheduler.log"));
    return *scheduler_;
  }
  test::Process& scheduler() { return *scheduler_; }

  // Starts agent `i` on agent host i with `slots` CPU slots, connecting to the scheduler (or
  // to `endpoint`, a relay's, say). Its log: agent<i>.log.
  test::Process& start_agent(int i, int slots, const std::string& endpoint = "") {
    const Host& host = bed_.agent(i);
    auto args = e2e::agent_args(kPort, host.workdir, slots, agent_name(i));
    args.at(2) = endpoint.empty() ? bed_.endpoint(kPort) : endpoint;  // "--connect" <endpoint>
    const std::string key = (i <= listed_ ? "agents/" : "unlisted/") + agent_name(i);
    args = e2e::plus_args(args, keys_.client_args(key));
    auto& p = agents_[i];
    p.reset();
    p = std::make_unique<test::Process>(bed_.launcher(host), args, path(agent_name(i) + ".log"));
    return *p;
  }
  test::Process& agent(int i) { return *agents_.at(i); }

  // Everything the processes logged, for a failing test's message.
  std::string logs() const {
    std::string all;
    for (const auto& name : log_names()) {
      all += "--- " + name + "\n" + test::read_text(path(name));
    }
    return all;
  }

 private:
  static std::vector<std::string> agent_names(int agents) {
    std::vector<std::string> names;
    for (int i = 1; i <= agents; ++i) names.push_back(agent_name(i));
    return names;
  }
  std::vector<std::string> log_names() const {
    std::vector<std::string> names = {"scheduler.log"};
    for (int i = 1; i <= bed_.agents(); ++i) names.push_back(agent_name(i) + ".log");
    return names;
  }

  int liveness_;
  int listed_;  // agents 1..listed_ have keys on the scheduler's --agent-keys list
  test::TempDir dir_;
  Bed bed_;
  e2e::ClusterKeys keys_;
  std::unique_ptr<test::Process> scheduler_;
  std::map<int, std::unique_ptr<test::Process>> agents_;
};

// Each agent's host as the scheduler recorded it from its HELLO (the agents rows of `db`).
inline std::map<std::string, std::string> recorded_hosts(const fs::path& db) {
  auto store = results::Store::open(db.string(), results::OpenMode::kReadOnly);
  REQUIRE(store);
  auto agents = store->agents();
  REQUIRE(agents);
  std::map<std::string, std::string> hosts;
  for (const auto& a : *agents) hosts[a.id] = a.host;
  return hosts;
}

// How many times `needle` occurs in `haystack`.
inline std::size_t occurrences(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

}  // namespace hpo::cluster
