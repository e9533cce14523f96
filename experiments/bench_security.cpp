// Security benchmark (issue 12): what CURVE costs, against plaintext from the same run.
//
//   bench_security --hpo build/hpo [--out experiments/results/security.txt] [--reps 5]
//                  [--trials 50000] [--quick]
//
// Each case runs plaintext and CURVE back to back, in turn (A B, then B A, ... so that a
// load that drifts over the run favours neither), --reps times; the report gives the median
// and the range (min..max) over the repetitions, and CURVE / plaintext of the medians.
// 1. Throughput: completed trials/s, instant Branin trials (random sampler, all in SQLite),
//    with 64 agent threads in this process, and with 8 `hpo agent` processes x 8 slots
//    (real processes, each its own key file and handshake). Target: CURVE >= 80% of
//    plaintext. Beside it the CPU time per trial of the scheduler and of the agents.
// 2. Agent overhead: lease -> finish of one instant trial (the store's started and finished
//    times: ASSIGN out, FINISH in), 1 agent thread, one trial at a time; and the same figure
//    at 64 agents, where it includes the queue at the scheduler.
// 3. Handshake: a scheduler with no study; 64 clients (DEALER sockets of this process
//    speaking the wire protocol, one key each) connect and say HELLO: one after another
//    (connect -> WELCOME of each), and all at once (connect -> the last WELCOME).
// 4. Where the time goes: libzmq alone (no hpo code) over TCP on 127.0.0.1, plaintext
//    against CURVE: a DEALER -> ROUTER stream for message sizes around hpo's ASSIGN and
//    FINISH and larger; and 64 DEALERs connecting at once, CURVE with and without a ZAP
//    handler (the scheduler answers ZAP on its one loop thread; here a thread of its own).
// CURVE here: keys written as `hpo keys new` writes them, the scheduler's --key and
// --agent-keys, the agents' --key and --scheduler-key (or AgentOptions::keys).
#include <dlfcn.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "bench_cluster.h"
#include "scheduler/protocol.h"
#include "zmq_probes.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace hpo::bench;
namespace p = hpo::scheduler::protocol;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// One client of the handshake test: a DEALER that connects and says HELLO.
std::unique_ptr<zmq::socket_t> hello(zmq::context_t& ctx, const std::string& endpoint,
                                     const std::string& name, const Curve* curve, int i) {
  auto s = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
  s->set(zmq::sockopt::linger, 0);
  if (curve)
    (void)hpo::scheduler::make_curve_client(*s, curve->clients[i].mine, curve->clients[i].server);
  s->connect(endpoint);
  p::Hello h;
  h.agent = name;
  h.host = "bench";
  h.pid = getpid();
  (void)p::send(*s, h);
  return s;
}

// Waits until each socket in `socks` has had a WELCOME; returns how many did by `limit_ms`.
int welcomes(std::vector<std::unique_ptr<zmq::socket_t>>& socks, double limit_ms) {
  std::vector<bool> got(socks.size(), false);
  int n = 0;
  const auto t0 = Clock::now();
  while (n < static_cast<int>(socks.size()) && ms_since(t0) < limit_ms) {
    std::vector<zmq::pollitem_t> items;
    for (auto& s : socks) items.push_back({s->handle(), 0, ZMQ_POLLIN, 0});
    zmq::poll(items, std::chrono::milliseconds(100));
    for (std::size_t i = 0; i < socks.size(); ++i) {
      while (auto r = p::receive(*socks[i], false)) {
        if (r->message && std::holds_alternative<p::Welcome>(*r->message) && !got[i]) {
          got[i] = true;
          ++n;
        }
      }
    }
  }
  return n;
}

void bye(std::vector<std::unique_ptr<zmq::socket_t>>& socks) {
  for (auto& s : socks) (void)p::send(*s, p::Bye{});
  socks.clear();
}

struct Handshakes {
  std::vector<double> serial_ms;  // connect -> WELCOME, one client at a time
  double burst_ms = 0;            // n clients at once: connect -> the last WELCOME
  int welcomed = 0;               // of the burst
};

Handshakes handshakes(const std::string& hpo, const fs::path& dir, const std::string& name, int n,
                      const Curve* curve) {
  Handshakes h;
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(free_port());
  fs::remove(dir / (name + ".db"));
  std::vector<std::string> args{"--db", (dir / (name + ".db")).string(), "--bind", endpoint};
  for (auto& a : curve_args(curve)) args.push_back(a);
  pid_t pid = spawn_scheduler(hpo, args, dir / (name + ".log"));
  zmq::context_t ctx(2);
  {  // Wait for the scheduler to listen: a first client, retried, is not timed.
    std::vector<std::unique_ptr<zmq::socket_t>> warm;
    for (int tries = 0; tries < 100 && warm.empty(); ++tries) {
      warm.push_back(hello(ctx, endpoint, name + "-warm", curve, 0));
      if (welcomes(warm, 200) == 0) warm.clear();
    }
    bye(warm);
  }
  std::vector<std::unique_ptr<zmq::socket_t>> socks;
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    std::vector<std::unique_ptr<zmq::socket_t>> one;
    one.push_back(hello(ctx, endpoint, name + "-serial-" + std::to_string(i), curve, i));
    if (welcomes(one, 5000) == 1) h.serial_ms.push_back(ms_since(t0));
    socks.push_back(std::move(one[0]));
  }
  bye(socks);
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    socks.push_back(hello(ctx, endpoint, name + "-burst-" + std::to_string(i), curve, i));
  }
  h.welcomed = welcomes(socks, 10000);
  h.burst_ms = ms_since(t0);
  bye(socks);
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  return h;
}

std::string libzmq_description() {
  int major = 0, minor = 0, patch = 0;
  zmq_version(&major, &minor, &patch);
  std::string d = "libzmq " + std::to_string(major) + "." + std::to_string(minor) + "." +
                  std::to_string(patch) +
                  ", zmq_has(\"curve\") = " + std::to_string(zmq_has("curve"));
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&zmq_version), &info) && info.dli_fname) {
    d += ", " + std::string(info.dli_fname);
    std::string crypto = "tweetnacl (built in: ldd shows no libsodium)";
    if (FILE* p = popen(("ldd " + std::string(info.dli_fname) + " 2>&1").c_str(), "r")) {
      char buf[512];
      while (fgets(buf, sizeof buf, p)) {
        std::string line(buf);
        const auto arrow = line.find("=> ");
        if (line.find("libsodium") != std::string::npos && arrow != std::string::npos) {
          crypto = "libsodium, " + line.substr(arrow + 3, line.find(" (") - arrow - 3);
        }
      }
      pclose(p);
    }
    d += ", crypto: " + crypto;
  }
  return d;
}

// Figures per metric, per mode ("plaintext" / "CURVE"), one entry per repetition.
using Samples = std::map<std::string, std::map<std::string, std::vector<double>>>;

std::string spread(const std::vector<double>& v, int digits) {
  if (v.empty()) return "-";
  return fixed(median(v), digits) + " (" + fixed(*std::min_element(v.begin(), v.end()), digits) +
         ".." + fixed(*std::max_element(v.begin(), v.end()), digits) + ")";
}

}  // namespace

int main(int argc, char** argv) {
  std::string hpo, out;
  int reps = 5;
  std::int64_t trials = 50000;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--hpo" && i + 1 < argc)
      hpo = argv[++i];
    else if (a == "--out" && i + 1 < argc)
      out = argv[++i];
    else if (a == "--reps" && i + 1 < argc)
      reps = std::max(1, std::stoi(argv[++i]));
    else if (a == "--trials" && i + 1 < argc)
      trials = std::max(100, std::stoi(argv[++i]));
    else if (a == "--quick")
      quick = true;
    else {
      std::cerr << "usage: bench_security --hpo PATH [--out FILE] [--reps N] [--trials N] "
                   "[--quick]\n";
      return 2;
    }
  }
  if (hpo.empty()) {
    std::cerr << "bench_security: --hpo PATH (the built hpo binary) is required\n";
    return 2;
  }
  if (quick) {
    reps = 1;
    trials = 5000;
  }
  const int agents = 64;
  const std::int64_t serial_trials = std::max<std::int64_t>(200, trials / 25);
  fs::path dir = fs::temp_directory_path() / ("hpo-bench-security-" + std::to_string(getpid()));
  fs::create_directories(dir);
  auto curve = make_curve(dir / "keys", agents);
  if (!curve) {
    std::cerr << "bench_security: keys: " << curve.error().message << "\n";
    return 1;
  }
  std::ostringstream report;
  auto line = [&](const std::string& s) {
    std::cout << s << std::endl;
    report << s << "\n";
  };
  line("# bench_security: CURVE against plaintext, same run, interleaved");
  line("# machine: " + std::to_string(std::thread::hardware_concurrency()) + " cores; " +
       libzmq_description());
  line("# load average (/proc/loadavg, 1/5/15 min) before " + loadavg());
  line("# " + std::to_string(reps) + " repetition(s); " + std::to_string(trials) +
       " trials per throughput run; " + std::to_string(serial_trials) +
       " trials one at a time for the overhead");
  line("");

  const json instant = {{"kind", "builtin"}, {"function", "branin"}};
  Samples samples;
  std::set<std::string> targeted;  // the throughput figures the 80% target is about
  const std::vector<std::string> modes{"plaintext", "CURVE"};
  for (int rep = 0; rep < reps; ++rep) {
    line("## repetition " + std::to_string(rep + 1) + " (load " + loadavg() + ")");
    std::vector<const Curve*> order{nullptr, &*curve};
    if (rep % 2 == 1) std::swap(order[0], order[1]);
    auto mode = [&](const Curve* c) { return c ? std::string("CURVE") : std::string("plaintext"); };
    struct Case {
      std::string tag;    // file names
      std::string label;  // the report's, numbered for its order
      Agents who;
      std::int64_t trials;
    };
    const std::vector<Case> cases{
        {"t64", "1. 64 agent threads", Agents{agents}, trials},
        {"p8x8", "2. 8 hpo agent processes x 8 slots", Agents{0, 8, 8}, trials},
        {"t1", "3. 1 agent thread, one trial at a time", Agents{1}, serial_trials}};
    for (const auto& c : cases) {
      for (const Curve* k : order) {
        const std::string m = mode(k);
        auto r = run(hpo, dir, c.tag + "-" + (k ? "curve" : "plain") + "-" + std::to_string(rep),
                     c.who, c.trials, instant, k);
        line(m + " " + c.who.describe() + ": " + std::to_string(r.completed) + " trials in " +
             fixed(r.seconds, 2) + " s = " + fixed(r.trials_per_s, 0) +
             " trials/s; lease->finish median " + fixed(r.lease_to_finish_median_ms, 3) +
             " ms, p90 " + fixed(r.lease_to_finish_p90_ms, 3) + " ms; CPU/trial scheduler " +
             fixed(1e6 * r.scheduler_cpu_s / std::max<std::int64_t>(1, r.completed), 1) +
             " us, agents " +
             fixed(1e6 * r.agents_cpu_s / std::max<std::int64_t>(1, r.completed), 1) + " us");
        if (r.completed != c.trials) line("  !! incomplete run: " + std::to_string(r.completed));
        auto& s = samples;
        if (c.tag != "t1") targeted.insert(c.label + ": trials/s");
        s[c.label + ": trials/s"][m].push_back(r.trials_per_s);
        s[c.label + ": lease->finish median ms"][m].push_back(r.lease_to_finish_median_ms);
        s[c.label + ": scheduler CPU us/trial"][m].push_back(
            1e6 * r.scheduler_cpu_s / std::max<std::int64_t>(1, r.completed));
        s[c.label + ": agents CPU us/trial"][m].push_back(1e6 * r.agents_cpu_s /
                                                          std::max<std::int64_t>(1, r.completed));
      }
    }
    for (const Curve* k : order) {
      const std::string m = mode(k);
      auto h = handshakes(hpo, dir,
                          std::string("hs-") + (k ? "curve" : "plain") + "-" + std::to_string(rep),
                          agents, k);
      line(m + " handshakes: " + std::to_string(h.serial_ms.size()) +
           " clients one at a time, connect->WELCOME median " + fixed(median(h.serial_ms), 2) +
           " ms (p90 " + fixed(quantile(h.serial_ms, 0.9), 2) + "); " + std::to_string(h.welcomed) +
           " at once: all welcomed in " + fixed(h.burst_ms, 1) + " ms");
      samples["4. handshake, 64 clients one at a time: median ms"][m].push_back(
          median(h.serial_ms));
      samples["5. handshake, 64 clients at once: ms to the last WELCOME"][m].push_back(h.burst_ms);
    }
    line("");
  }

  line("## summary: median (min..max) over " + std::to_string(reps) +
       " repetition(s); ratio = CURVE / plaintext of the medians,");
  line("## and its median (min..max) over the repetitions, each pair run side by side");
  for (const auto& [metric, by_mode] : samples) {
    const auto& a = by_mode.at("plaintext");
    const auto& b = by_mode.at("CURVE");
    const int digits = metric.find("trials/s") != std::string::npos ? 0 : 3;
    const double ratio = median(a) > 0 ? median(b) / median(a) : 0;
    std::vector<double> paired;  // CURVE / plaintext within each repetition (run side by side)
    for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
      if (a[i] > 0) paired.push_back(b[i] / a[i]);
    }
    std::string verdict;
    if (targeted.count(metric)) {
      verdict = ratio >= 0.8 ? "; meets the 80% target" : "; BELOW the 80% target";
    }
    line(metric + ": plaintext " + spread(a, digits) + ", CURVE " + spread(b, digits) + ", ratio " +
         fixed(ratio, 3) + " (per repetition " + spread(paired, 3) + ")" + verdict);
  }
  line("");

  line("## libzmq alone: DEALER -> ROUTER stream over TCP on 127.0.0.1, messages/s");
  {
    p::Assign assign{"study",
                     12345,
                     1,
                     "0123456789abcdef0123456789abcdef",
                     {{"x1", 3.14159265358979}, {"x2", 2.71828182845905}},
                     instant};
    p::Finish finish{"study",
                     12345,
                     1,
                     "0123456789abcdef0123456789abcdef",
                     p::Outcome::kOk,
                     {{"value", 0.397887357729738}},
                     "",
                     "",
                     false,
                     false};
    auto size = [](const p::Message& m) {
      auto f = p::encode(m);
      return f.version.size() + f.type.size() + f.body.size();
    };
    line("(for scale: an ASSIGN of these trials is about " + std::to_string(size(assign)) +
         " bytes, a FINISH about " + std::to_string(size(finish)) + ")");
    const int count = quick ? 20000 : 200000;
    for (int bytes : {256, 4096, 65536}) {
      const int n = bytes >= 65536 ? count / 10 : count;
      std::vector<double> plain, cur;
      for (int rep = 0; rep < std::min(reps, 3); ++rep) {
        plain.push_back(zmq_stream(bytes, n, false));
        cur.push_back(zmq_stream(bytes, n, true));
      }
      line(std::to_string(bytes) + " B: plaintext " + spread(plain, 0) + ", CURVE " +
           spread(cur, 0) + ", ratio " + fixed(median(cur) / median(plain), 3) + "; CURVE adds " +
           fixed(1e6 / median(cur) - 1e6 / median(plain), 2) + " us/message");
    }
  }
  line("");
  line(
      "## libzmq alone: 64 DEALERs connect at once to a ROUTER, ms until it has a message from "
      "each");
  {
    std::vector<Burst> plain, bare, zapped;
    auto wall = [](const std::vector<Burst>& v) {
      std::vector<double> out;
      for (const auto& b : v) out.push_back(b.wall_ms);
      return out;
    };
    auto cpu = [](const std::vector<Burst>& v) {
      std::vector<double> out;
      for (const auto& b : v) out.push_back(b.cpu_ms);
      return out;
    };
    for (int rep = 0; rep < std::max(3, reps); ++rep) {
      plain.push_back(zmq_handshakes(agents, false, false));
      bare.push_back(zmq_handshakes(agents, true, false));
      zapped.push_back(zmq_handshakes(agents, true, true));
    }
    line("wall ms: plaintext " + spread(wall(plain), 1) + "; CURVE without ZAP " +
         spread(wall(bare), 1) + "; CURVE with a ZAP handler thread " + spread(wall(zapped), 1));
    line("CPU ms (this process, both ends): plaintext " + spread(cpu(plain), 1) +
         "; CURVE without ZAP " + spread(cpu(bare), 1) + "; CURVE with ZAP " +
         spread(cpu(zapped), 1));
  }
  line("");
  line("# load average (/proc/loadavg, 1/5/15 min) after " + loadavg());
  fs::remove_all(dir);
  if (!out.empty()) {
    std::ofstream f(out);
    f << report.str();
    f << "\n# command: bench_security --hpo " << hpo << " --out " << out << " --reps " << reps
      << " --trials " << trials << (quick ? " --quick" : "") << "\n";
  }
  return 0;
}
