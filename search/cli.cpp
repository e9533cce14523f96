// `hpo space validate FILE` and `hpo space sample FILE -n N ...`: try a space
// (a whole study file, or a bare space object) before starting a search.
#include "search/cli.h"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "base/cli.h"
#include "search/config.h"
#include "search/sampler.h"
#include "search/study.h"

namespace hpo::search {
namespace {

using nlohmann::json;

constexpr const char* kUsage =
    "Usage: hpo space <validate|sample> FILE [options]\n\n"
    "  validate FILE          check a study file (or a bare space) and count its parameters\n"
    "  sample FILE -n N       sample N configs (--sampler, --seed, --format json|table)\n\n"
    "FILE is a study file (an object with a \"space\" key) or a bare space object.\n";

// What a FILE gives: the space, and the study around it when there is one.
struct Loaded {
  Space space;
  std::optional<StudySpec> study;
};

Result<Loaded> load(const std::string& path) {
  auto j = read_json_file(path);
  if (!j) return std::unexpected(j.error());
  if (j->is_object() && j->contains("space")) {
    auto spec = parse_study(*j, path);
    if (!spec) return std::unexpected(spec.error());
    Space space = spec->space;
    return Loaded{space, std::move(*spec)};
  }
  auto space = Space::parse(*j, path);
  if (!space) return std::unexpected(space.error());
  return Loaded{*space, std::nullopt};
}

std::optional<std::string> one_file(const cxxopts::ParseResult& r, const cxxopts::Options& o) {
  if (!r.count("file") || r["file"].as<std::vector<std::string>>().size() != 1) {
    std::cerr << o.program() << ": expected exactly one FILE\nTry '" << o.program()
              << " --help'.\n";
    return std::nullopt;
  }
  return r["file"].as<std::vector<std::string>>()[0];
}

int validate(int argc, char** argv) {
  cxxopts::Options options("hpo space validate", "Check a study file or a bare search space.");
  options.add_options()("h,help", "show this help")("file", "study or space file",
                                                    cxxopts::value<std::vector<std::string>>());
  options.parse_positional({"file"});
  options.positional_help("FILE");
  int code = cli::kExitOk;
  auto r = cli::parse(options, argc, argv, code);
  if (!r) return code;
  auto file = one_file(*r, options);
  if (!file) return cli::kExitUsage;
  auto loaded = load(*file);
  if (!loaded) {
    std::cerr << "hpo space validate: " << loaded.error().message << "\n";
    return cli::kExitUsage;
  }
  std::cout << "ok: " << loaded->space.parameter_count() << " parameters";
  if (loaded->study) {
    std::cout << " (study " << loaded->study->name << ", sampler "
              << loaded->study->sampler["type"].get<std::string>() << ")";
  }
  std::cout << "\n";
  return cli::kExitOk;
}

// Flattens a config into dotted columns for the table format.
void flatten(const json& v, const std::string& key, std::map<std::string, std::string>& out) {
  if (v.is_object() && !v.empty()) {
    for (const auto& [k, item] : v.items()) flatten(item, key.empty() ? k : key + "." + k, out);
  } else if (v.is_array() && !v.empty() &&
             std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_object(); })) {
    for (std::size_t i = 0; i < v.size(); ++i)
      flatten(v[i], key + "[" + std::to_string(i) + "]", out);
  } else if (v.is_string()) {
    out[key] = v.get<std::string>();
  } else if (v.is_number_float()) {
    char buf[32];  // the table is for reading; --format json keeps every digit
    std::snprintf(buf, sizeof buf, "%.6g", v.get<double>());
    out[key] = buf;
  } else {
    out[key] = canonical(v);
  }
}

void print_table(const std::vector<json>& configs) {
  std::vector<std::map<std::string, std::string>> rows;
  std::vector<std::string> columns{"number", "hash"};
  std::map<std::string, bool> known;
  for (std::size_t i = 0; i < configs.size(); ++i) {
    std::map<std::string, std::string> row;
    flatten(configs[i], "", row);
    for (const auto& [k, v] : row) {
      if (!known[k]) {
        known[k] = true;
        columns.push_back(k);
      }
    }
    row["number"] = std::to_string(i);
    row["hash"] = config_hash(configs[i]);
    rows.push_back(std::move(row));
  }
  std::sort(columns.begin() + 2, columns.end());
  std::vector<std::size_t> width;
  for (const auto& c : columns) {
    std::size_t w = c.size();
    for (const auto& row : rows) {
      auto it = row.find(c);
      w = std::max(w, it == row.end() ? 1 : it->second.size());
    }
    width.push_back(w);
  }
  auto line = [&](auto cell) {
    std::string s;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      std::string text = cell(columns[i]);
      s += text;
      if (i + 1 < columns.size()) s += std::string(width[i] - text.size() + 2, ' ');
    }
    std::cout << s << "\n";
  };
  line([](const std::string& c) { return c; });
  for (const auto& row : rows) {
    line([&](const std::string& c) {
      auto it = row.find(c);
      return it == row.end() ? std::string("-") : it->second;
    });
  }
}

int sample(int argc, char** argv) {
  cxxopts::Options options("hpo space sample", "Sample configs from a study file or a bare space.");
  options.add_options()("h,help", "show this help")(
      "n,count", "number of configs", cxxopts::value<std::int64_t>()->default_value("5"))(
      "sampler", "random|grid|sobol|halton|tpe|evolution (default: the study's, else random)",
      cxxopts::value<std::string>())("seed", "seed (default: the study's, else 0)",
                                     cxxopts::value<std::uint64_t>())(
      "format", "table or json", cxxopts::value<std::string>()->default_value("table"))(
      "file", "study or space file", cxxopts::value<std::vector<std::string>>());
  options.parse_positional({"file"});
  options.positional_help("FILE");
  int code = cli::kExitOk;
  auto r = cli::parse(options, argc, argv, code);
  if (!r) return code;
  auto file = one_file(*r, options);
  if (!file) return cli::kExitUsage;
  const std::string format = (*r)["format"].as<std::string>();
  if (format != "table" && format != "json") {
    std::cerr << "hpo space sample: --format must be table or json (got '" << format << "')\n";
    return cli::kExitUsage;
  }
  const std::int64_t count = (*r)["count"].as<std::int64_t>();
  if (count < 0) {
    std::cerr << "hpo space sample: -n must be >= 0\n";
    return cli::kExitUsage;
  }
  auto loaded = load(*file);
  if (!loaded) {
    std::cerr << "hpo space sample: " << loaded.error().message << "\n";
    return cli::kExitUsage;
  }
  json sampler_options = json{{"type", "random"}};
  std::uint64_t seed = 0;
  Direction direction = Direction::kMinimize;
  if (loaded->study) {
    sampler_options = loaded->study->sampler;
    seed = loaded->study->seed;
    direction = loaded->study->direction;
  }
  if (r->count("sampler")) {
    std::string type = (*r)["sampler"].as<std::string>();
    if (sampler_options["type"] != type) sampler_options = json{{"type", type}};
  }
  if (r->count("seed")) seed = (*r)["seed"].as<std::uint64_t>();
  auto sampler = make_sampler(loaded->space, sampler_options, seed, direction);
  if (!sampler) {
    std::cerr << "hpo space sample: " << sampler.error().message << "\n";
    return cli::kExitUsage;
  }
  // Each sampled config joins the history as a QUEUED trial, as in a study
  // that asks for many parallel trials before any finishes.
  History history;
  std::vector<json> configs;
  for (std::int64_t i = 0; i < count; ++i) {
    auto config = (*sampler)->ask(history, i);
    if (!config) {
      std::cerr << "hpo space sample: " << config.error().message << "\n";
      return cli::kExitFailure;
    }
    if (!*config) {
      std::cerr << "hpo space sample: the " << (*sampler)->name() << " sampler is exhausted after "
                << i << " configs\n";
      break;
    }
    history.push_back(TrialRecord{i, TrialState::kQueued, **config, std::nullopt, {}});
    configs.push_back(std::move(**config));
  }
  if (format == "json") {
    json out = json::array();
    for (std::size_t i = 0; i < configs.size(); ++i) {
      out.push_back(json{{"number", i}, {"hash", config_hash(configs[i])}, {"config", configs[i]}});
    }
    std::cout << out.dump(2) << "\n";
  } else {
    print_table(configs);
  }
  return cli::kExitOk;
}

}  // namespace

int space_command(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return cli::kExitUsage;
  }
  std::string_view sub = argv[1];
  if (sub == "--help" || sub == "-h" || sub == "help") {
    std::cout << kUsage;
    return cli::kExitOk;
  }
  if (sub == "validate") return validate(argc - 1, argv + 1);
  if (sub == "sample") return sample(argc - 1, argv + 1);
  std::cerr << "hpo space: unknown subcommand '" << sub << "'\n" << kUsage;
  return cli::kExitUsage;
}

}  // namespace hpo::search
