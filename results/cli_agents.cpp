// `hpo agents`: the agents a scheduler knows, from its database: read-only, safe while a
// search runs (the scheduler keeps the rows true: scheduler/agent_records.h).
#include <chrono>
#include <iostream>
#include <map>

#include "base/cli.h"
#include "results/cli.h"
#include "results/cli_common.h"

namespace hpo::results {
namespace {

using cli_detail::Exit;
using cli_detail::report;

const std::vector<std::string> kTableFormats = {"table", "json", "csv"};
// Agents gone longer than this are left out unless --all.
constexpr double kRecentSeconds = 3600;

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The GPUs of a HELLO (objects with a "name", as `hpo agent` sends them) as "2x NVIDIA H200"
// or "A100, 2x V100"; empty when none has a name.
std::string gpu_models(const nlohmann::json& gpus) {
  std::map<std::string, int> count;
  std::vector<std::string> order;
  if (gpus.is_array()) {
    for (const auto& g : gpus) {
      if (!g.is_object() || !g.contains("name") || !g["name"].is_string()) continue;
      const auto name = g["name"].get<std::string>();
      if (count[name]++ == 0) order.push_back(name);
    }
  }
  std::string out;
  for (const auto& name : order) {
    if (!out.empty()) out += ", ";
    out += (count[name] > 1 ? std::to_string(count[name]) + "x " : "") + name;
  }
  return out;
}

bool connected(const std::string& status) {
  return status == "live" || status == "draining" || status == "drained";
}

}  // namespace

int agents_command(int argc, char** argv) {
  const std::string command = argv[0];
  cxxopts::Options options(
      "hpo agents",
      "List the agents the scheduler knows: host, slots, GPUs, running trials, when each was "
      "last heard from, and its state (live, draining, drained, left, lost, revoked).\nSafe "
      "while a search runs. By default connected agents and those seen in the last hour.");
  cli_detail::add_common_options(options, kTableFormats, false);
  options.add_options()("all", "every agent the database holds, however long gone")(
      "wide", "table: show every column (by default empty and uniform ones are hidden)");
  int code = cli::kExitOk;
  auto args = cli::parse(options, argc, argv, code);
  if (!args) return code;
  auto format = cli_detail::format_option(*args, kTableFormats);
  if (!format) return report(format.error(), command);
  auto store = cli_detail::open_database(*args);
  if (!store) return report(store.error(), command);
  auto rows = store->agents();
  if (!rows) return report(Exit{cli::kExitFailure, rows.error().message}, command);

  const double now = wall_now();
  const bool all = args->count("all") > 0;
  std::vector<std::pair<const AgentRow*, std::string>> shown;  // row, status
  std::map<std::string, int> by_status;
  for (const auto& a : *rows) {
    std::string status = agent_status(a, now);
    if (!all && !connected(status) && now - a.last_seen > kRecentSeconds) continue;
    ++by_status[status];
    shown.emplace_back(&a, std::move(status));
  }

  const bool human = *format == Format::kTable;
  Frame frame(shown.size());
  const auto name = frame.add("agent");
  const auto host = frame.add("host");
  const auto state = frame.add("state");
  const auto slots = frame.add("slots", false, true);
  const auto running = frame.add("running", false, true);
  const auto gpus = frame.add("gpus", true, true);
  const auto models = frame.add("gpu_models", true);
  const auto heard = frame.add(human ? "last_heard" : "last_seen", false, !human);
  // Machine formats: when (ISO time) and how long ago (seconds), each a column of its own.
  const auto silent = human ? heard : frame.add("silent_s", false, true);
  const auto drained = frame.add("drained", true);
  const auto first = frame.add("first_seen", true);
  for (std::size_t r = 0; r < shown.size(); ++r) {
    const AgentRow& a = *shown[r].first;
    frame.set(name, r, a.id);
    frame.set(host, r, a.host);
    frame.set(state, r, shown[r].second);
    frame.set(slots, r, a.slots);
    frame.set(running, r, a.running);
    frame.set(gpus, r, a.gpus.is_array() ? a.gpus.size() : 0);
    if (auto m = gpu_models(a.gpus); !m.empty()) frame.set(models, r, m);
    const double ago = std::max(0.0, now - a.last_seen);
    if (human) {
      frame.set(heard, r, duration_text(ago) + " ago");
    } else {
      frame.set(heard, r, cli_detail::time_json(a.last_seen));
      frame.set(silent, r, ago);
    }
    if (!a.drained.empty()) frame.set(drained, r, a.drained);
    frame.set(first, r, cli_detail::time_text(a.first_seen, !human));
  }

  if (human) {
    std::cout << shown.size() << " agent(s)";
    std::string counts;
    for (const auto& [status, n] : by_status) {
      counts += (counts.empty() ? "" : ", ") + std::to_string(n) + " " + status;
    }
    if (!counts.empty()) std::cout << ": " << counts;
    if (const auto hidden = rows->size() - shown.size(); hidden > 0) {
      std::cout << " (" << hidden << " gone for over an hour not shown: --all shows them)";
    }
    std::cout << "\n";
    if (shown.empty()) return cli::kExitOk;
  }
  switch (*format) {
    case Format::kTable: {
      TableOptions table;
      table.width = terminal_width();
      table.wide = args->count("wide") > 0;
      table.hide_uniform = true;
      frame.print_table(std::cout, table);
      break;
    }
    case Format::kCsv:
      frame.print_csv(std::cout);
      break;
    case Format::kJson:
      frame.print_json(std::cout);
      break;
  }
  return cli::kExitOk;
}

}  // namespace hpo::results
