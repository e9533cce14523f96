// The sampler benchmark suite (issue 16): problems written in hpo's search-space language, each
// with a function that scores a sampled config (lower is better), used from both sides:
//  - hpo: experiments/suite/bench_suite.cpp links this library and asks hpo's samplers in
//    process, exactly as the scheduler does (the History holds every earlier trial);
//  - Optuna: experiments/suite/bench_suite_optuna.py loads libhpo_suite.so with ctypes, turns the
//    space into Optuna suggestions (the same nested config comes out) and calls hpo_suite_eval.
// One implementation of every function, so both sides score the very same landscape.
//
// The split into a tuning half and a validation half is fixed in SPLIT.md and in each problem's
// `half`; defaults are chosen on "tune" only.
//
// Noise: a noisy problem adds noise drawn from a generator seeded by `noise_seed` (the caller
// passes noise_seed(seed, trial number), the same on both sides), and also reports the noise-free
// value, so a run is judged by the true value of the trial it would pick (its best observation).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace hpo::suite {

struct Problem {
  std::string name;      // e.g. "rosenbrock-10"
  std::string half;      // "tune" or "validate"
  std::string family;    // "continuous", "noisy", "mixed", "conditional", "surrogate"
  std::string summary;   // one line: what it is, where it comes from
  nlohmann::json space;  // the space, in hpo's search-space language
  double optimum = 0;    // the known minimum (surrogates: the best value in their data)
  double noise = 0;      // standard deviation of the additive noise (0: noise-free)
  // The noise-free value of a config the space produced (lower is better).
  std::function<double(const nlohmann::json&)> value;
};

// Every problem, in a fixed order. `data_dir` holds the surrogates' data
// (experiments/suite/data); the surrogates are left out when their files are missing.
const std::vector<Problem>& problems(const std::string& data_dir);

// The generator of trial `number`'s noise in a run with `seed`: the same on both sides.
std::uint64_t noise_seed(std::uint64_t seed, std::int64_t number);

// One observation: the value plus noise drawn from noise_seed (none on a noise-free problem).
double observe(const Problem& problem, const nlohmann::json& config, std::uint64_t noise_seed,
               double* truth);

}  // namespace hpo::suite

// The C interface of libhpo_suite.so (for Python's ctypes). Strings returned stay valid for the
// life of the process. hpo_suite_eval returns 0, or -1 with a message on stderr when the config
// is not JSON or does not fit the problem.
extern "C" {
int hpo_suite_count(const char* data_dir);
const char* hpo_suite_describe(int index);  // JSON: name, half, family, summary, space, optimum, noise
unsigned long long hpo_suite_noise_seed(unsigned long long seed, long long number);
int hpo_suite_eval(int index, const char* config_json, unsigned long long noise_seed,
                   double* observed, double* truth);
}
