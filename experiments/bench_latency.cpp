// Dispatch throughput across hosts, directly and at 20 ms +- 5 ms of latency (issue 13).
//
//   sudo build/experiments/bench_latency --hpo build/hpo
//       [--out experiments/results/latency.txt] [--agents 3] [--slots 4] [--trials 2000]
//       [--repeats 3]      (as root)
//
// The network test bed of tests/netbed (root, iproute2, netns and veth): the real
// `hpo scheduler` on the bed's scheduler host (198.18.0.1), one real `hpo agent` process
// on each agent host (198.18.0.1x) with --slots slots, CURVE keys (one pair per agent),
// instant builtin Branin trials
// (random sampler; every trial, lease and metric in SQLite). Three set-ups, each run
// --repeats times, figures of every run and their median:
//   direct   each agent connects to the scheduler over the bed's bridge;
//   relay    each agent connects through its own relay (tests/netbed/relay.h) in its host,
//            which adds 20 ms +- 5 ms each way and never cuts;
//   cuts     the same relay, which also cuts each connection after 1.5-3 s (the bed's
//            "latency and cuts" scenario).
// Time = first trial started -> last trial finished, read back from the database.
// No peer: no other orchestrator is installed here to run on the same bed.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_cluster.h"
#include "tests/netbed/bed.h"
#include "tests/netbed/relay.h"

namespace fs = std::filesystem;
using nlohmann::json;

using hpo::bench::Agents;
using hpo::bench::fixed;
using hpo::bench::loadavg;

namespace {

struct Setup {
  std::string name;
  bool relay = false;
  bool cuts = false;
};

int usage() {
  std::cerr << "usage: bench_latency --hpo PATH [--out FILE] [--agents N] [--slots S] "
               "[--trials T] [--repeats R]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string hpo, out;
  int agents = 3, slots = 4, repeats = 3;
  std::int64_t trials = 2000;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--hpo" && has_value) {
      hpo = argv[++i];
    } else if (a == "--out" && has_value) {
      out = argv[++i];
    } else if (a == "--agents" && has_value) {
      agents = std::atoi(argv[++i]);
    } else if (a == "--slots" && has_value) {
      slots = std::atoi(argv[++i]);
    } else if (a == "--trials" && has_value) {
      trials = std::atoll(argv[++i]);
    } else if (a == "--repeats" && has_value) {
      repeats = std::atoi(argv[++i]);
    } else {
      return usage();
    }
  }
  if (hpo.empty()) {
    std::cerr << "bench_latency: --hpo PATH (the built hpo binary) is required\n";
    return 2;
  }
  if (agents < 1 || agents > 200 || slots < 1 || trials < 1 || repeats < 1) {
    std::cerr << "bench_latency: --agents 1-200, --slots, --trials and --repeats >= 1\n";
    return 2;
  }
  hpo = fs::absolute(hpo).string();
  if (auto why = hpo::netbed::Bed::missing_prerequisite(); !why.empty()) {
    std::cerr << "bench_latency: cannot build the network test bed here: " << why << "\n";
    return 1;
  }
  const fs::path dir =
      fs::temp_directory_path() / ("hpo-bench-latency-" + std::to_string(getpid()));
  fs::create_directories(dir);
  auto bed = hpo::netbed::Bed::build(agents, dir);
  if (!bed) {
    std::cerr << "bench_latency: " << bed.error().message << "\n";
    fs::remove_all(dir);
    return 1;
  }
  const auto& b = **bed;
  // With keys, as a scheduler that listens on a network must be (one pair per agent).
  auto curve = hpo::bench::make_curve(dir / "keys", agents);
  if (!curve) {
    std::cerr << "bench_latency: " << curve.error().message << "\n";
    return 1;
  }

  std::ostringstream report;
  auto line = [&](const std::string& s) {
    std::cout << s << std::endl;
    report << s << "\n";
  };
  const Agents who{0, agents, slots};
  line("# bench_latency: dispatch throughput across bed hosts, directly and through a relay");
  line("# machine: " + std::to_string(std::thread::hardware_concurrency()) +
       " cores; hosts = network namespaces on one bridge (tests/netbed/bed.h); scheduler = "
       "`hpo scheduler` on " +
       b.scheduler().address + "; agents = " + who.describe() + ", one per host (" +
       b.agent(1).address + (agents > 1 ? "..." + b.agent(agents).address : "") + ")");
  line("# trials: " + std::to_string(trials) +
       " instant builtin Branin trials per run, random sampler, max_parallel = " +
       std::to_string(who.total()) + "; each set-up run " + std::to_string(repeats) + " times");
  line("# CURVE on: the scheduler with --key and --agent-keys, one key pair per agent");
  line(
      "# relay: user-space TCP relay in each agent host, 20 ms +- 5 ms (uniform) each way, "
      "order kept; 'cuts': each connection also cut after 1.5-3 s");
  line("# load average (/proc/loadavg, 1/5/15 min) before " + loadavg());
  line("");
  line(
      "## completed trials/s (first start -> last finish, from the database); lease -> finish "
      "per trial, median and p90");

  const json instant = {{"kind", "builtin"}, {"function", "branin"}};
  const std::vector<Setup> setups = {
      {"direct", false, false}, {"relay", true, false}, {"cuts", true, true}};
  int port = 7070;
  int failed = 0;
  for (const auto& setup : setups) {
    std::vector<double> rates;
    for (int rep = 1; rep <= repeats; ++rep) {
      const int scheduler_port = port++;
      hpo::bench::Placement where;
      where.scheduler_launcher = b.launcher(b.scheduler());
      where.bind = b.endpoint(scheduler_port);
      std::vector<std::unique_ptr<hpo::netbed::Relay>> relays;
      for (int i = 1; i <= agents; ++i) {
        where.agent_launchers.push_back(b.launcher(b.agent(i)));
        if (!setup.relay) {
          where.agent_connect.push_back(b.endpoint(scheduler_port));
          continue;
        }
        hpo::netbed::RelayOptions o;
        o.delay = std::chrono::milliseconds(20);
        o.jitter = std::chrono::milliseconds(5);
        o.min_life = std::chrono::milliseconds(setup.cuts ? 1500 : 0);
        o.max_life = std::chrono::milliseconds(setup.cuts ? 3000 : 0);
        o.seed = static_cast<unsigned>(100 * rep + i);
        const int relay_port = 9000 + scheduler_port;
        auto relay = hpo::netbed::Relay::start(b.agent(i).ns, relay_port, b.scheduler().address,
                                               scheduler_port, o);
        if (!relay) {
          std::cerr << "bench_latency: " << relay.error().message << "\n";
          return 1;  // the Bed's destructor tears the hosts down
        }
        relays.push_back(std::move(*relay));
        where.agent_connect.push_back("tcp://127.0.0.1:" + std::to_string(relay_port));
      }
      const std::string name = setup.name + "-" + std::to_string(rep);
      auto r = hpo::bench::run(hpo, dir, name, who, trials, instant, &*curve, &where);
      int cuts = 0;
      for (const auto& relay : relays) cuts += relay->cuts();
      if (r.completed != trials) {
        ++failed;
        line(setup.name + " run " + std::to_string(rep) + ": FAILED, " +
             std::to_string(r.completed) + " of " + std::to_string(trials) +
             " trials completed (logs in " + dir.string() + ")");
        continue;
      }
      rates.push_back(r.trials_per_s);
      line(setup.name + " run " + std::to_string(rep) + ": " + std::to_string(r.completed) +
           " trials in " + fixed(r.seconds, 2) + " s = " + fixed(r.trials_per_s, 0) +
           " trials/s; lease -> finish median " + fixed(r.lease_to_finish_median_ms, 1) +
           " ms, p90 " + fixed(r.lease_to_finish_p90_ms, 1) + " ms" +
           (setup.relay ? "; relay cuts " + std::to_string(cuts) : ""));
    }
    if (!rates.empty()) {
      line(setup.name + " median: " + fixed(hpo::bench::median(rates), 0) + " trials/s");
    }
  }
  line("");
  line("## peer: none. No other orchestrator (Ray Tune, Optuna's distributed mode) is installed");
  line("## here to run on the same bed; the figures above compare hpo with itself.");
  line("");
  line("# load average (/proc/loadavg, 1/5/15 min) after " + loadavg());
  bed->reset();  // the hosts go before their directory
  if (failed == 0) fs::remove_all(dir);
  if (!out.empty()) {
    std::ofstream f(out);
    f << report.str();
    f << "\n# command (as root): build/experiments/bench_latency --hpo build/hpo --out " << out
      << " --agents " << agents << " --slots " << slots << " --trials " << trials << " --repeats "
      << repeats << "\n";
  }
  return failed == 0 ? 0 : 1;
}
