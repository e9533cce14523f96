// Helpers shared by the search/ sources; not part of the public API.
#pragma once

#include <string>
#include <string_view>

namespace hpo::search::detail {

// Shortest text that reads back to the same double; integral values below
// 2^53 print without a decimal point, -0 as 0, non-finite as "nan"/"inf".
std::string format_number(double value);

// "FILE: WHERE: MESSAGE", leaving out the empty parts.
std::string located(std::string_view file, std::string_view where, std::string_view message);

}  // namespace hpo::search::detail

#include <cmath>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <utility>
#include <vector>

#include "search/space.h"
#include "search/trial.h"

namespace hpo::search {
class Sampler;
}

namespace hpo::search::detail {

// The generator of one ask: a function of the study seed and the trial number
// only (never std::random_device), so an ask can be replayed.
std::mt19937_64 make_rng(std::uint64_t seed, std::int64_t number, std::uint64_t salt = 0);

// A uniform double in [0, 1) with 53 random bits; portable (no <random>
// distributions, whose output differs between standard libraries).
inline double uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}
inline std::uint64_t uniform_index(std::mt19937_64& rng, std::uint64_t n) {
  return n <= 1 ? 0 : rng() % n;
}

// Maps u in [0, 1) onto a dimension's domain uniformly (log-uniformly on a
// log scale; each int/step/category equally likely).
double from_unit(const Dimension& d, double u);

// Draws every decision uniformly at random.
class RandomDecider : public Decider {
 public:
  explicit RandomDecider(std::mt19937_64& rng) : rng_(rng) {}
  double decide(const Dimension& d) override { return from_unit(d, uniform01(rng_)); }

 private:
  std::mt19937_64& rng_;
};

// The decision points one walk of the space meets, in walk order: replaying `replay` (a key it
// lacks takes the dimension's low end), or through the centre of every domain when it is null.
// TPE's joint step and CMA-ES use it to list the dimensions a trial has, with their domains.
std::vector<Dimension> walk_dimensions(const Space& space, const Decisions* replay);

// Better-first order of (trial, value) results of one rung or generation: the better
// value, NaN last, then the lower trial number. A total order, so a rung's top (ASHA)
// or a generation's ranking (PBT) does not depend on the arrival order.
inline bool better(Direction direction, std::pair<std::int64_t, double> a,
                   std::pair<std::int64_t, double> b) {
  const bool a_nan = std::isnan(a.second), b_nan = std::isnan(b.second);
  if (a_nan != b_nan) return b_nan;
  if (!a_nan && a.second != b.second) {
    return direction == Direction::kMinimize ? a.second < b.second : a.second > b.second;
  }
  return a.first < b.first;
}

// A finished trial's objective as a score where lower is better; nullopt for
// trials that are not COMPLETED with a finite value.
std::optional<double> score_of(const TrialRecord& trial, Direction direction);

// One row of the Sobol' direction-number table: primitive polynomial of
// `degree` with inner coefficients `a` (bit degree-2 is a_1), initial m_k.
struct SobolDirection {
  int degree;
  unsigned a;
  std::vector<std::uint64_t> m;
};
// Dimensions 2.. of the table (dimension 1 is the van der Corput sequence).
const std::vector<SobolDirection>& sobol_table();

std::unique_ptr<Sampler> make_sobol(const Space& space, bool scramble, std::uint64_t seed);
std::unique_ptr<Sampler> make_tpe(const Space& space, const nlohmann::json& options,
                                  std::uint64_t seed, Direction direction);
// TPE's ask with some decisions already made (the CMA-ES sampler's numbers): the keys of `fixed`
// take the given values, TPE decides every other decision point from the history. `options` is a
// normalized tpe sampler object (normalize_sampler).
nlohmann::json tpe_ask_with(const Space& space, const nlohmann::json& options, std::uint64_t seed,
                            Direction direction, const History& history, std::int64_t number,
                            const Decisions& fixed);
std::unique_ptr<Sampler> make_evolution(const Space& space, const nlohmann::json& options,
                                        std::uint64_t seed, Direction direction);
// `options` is a normalized cmaes sampler object (normalize_sampler).
std::unique_ptr<Sampler> make_cmaes(const Space& space, const nlohmann::json& options,
                                    std::uint64_t seed, Direction direction);

}  // namespace hpo::search::detail
