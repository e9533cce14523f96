// The C interface of libhpo_suite.so (suite.h), for bench_suite_optuna.py.
#include <cstdio>
#include <string>
#include <vector>

#include "suite.h"

namespace {
const std::vector<hpo::suite::Problem>* loaded = nullptr;
std::vector<std::string> descriptions;
}  // namespace

extern "C" {

int hpo_suite_count(const char* data_dir) {
  loaded = &hpo::suite::problems(data_dir ? data_dir : "experiments/suite/data");
  descriptions.clear();
  for (const auto& p : *loaded) {
    nlohmann::json d{{"name", p.name},       {"half", p.half},   {"family", p.family},
                     {"summary", p.summary}, {"space", p.space}, {"optimum", p.optimum},
                     {"noise", p.noise}};
    descriptions.push_back(d.dump());
  }
  return static_cast<int>(loaded->size());
}

const char* hpo_suite_describe(int index) {
  if (!loaded || index < 0 || static_cast<std::size_t>(index) >= descriptions.size()) return "";
  return descriptions[static_cast<std::size_t>(index)].c_str();
}

unsigned long long hpo_suite_noise_seed(unsigned long long seed, long long number) {
  return hpo::suite::noise_seed(seed, number);
}

int hpo_suite_eval(int index, const char* config_json, unsigned long long noise_seed,
                   double* observed, double* truth) {
  if (!loaded || index < 0 || static_cast<std::size_t>(index) >= loaded->size()) {
    std::fprintf(stderr, "hpo_suite_eval: no problem %d (call hpo_suite_count first)\n", index);
    return -1;
  }
  const auto& p = (*loaded)[static_cast<std::size_t>(index)];
  auto config = nlohmann::json::parse(config_json ? config_json : "", nullptr, false);
  if (config.is_discarded()) {
    std::fprintf(stderr, "hpo_suite_eval: %s: the config is not JSON\n", p.name.c_str());
    return -1;
  }
  try {
    *observed = hpo::suite::observe(p, config, noise_seed, truth);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hpo_suite_eval: %s: the config does not fit: %s\n", p.name.c_str(),
                 e.what());
    return -1;
  }
  return 0;
}

}  // extern "C"
