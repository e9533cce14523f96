// Regularized evolution (Real et al. 2019, "aging evolution"): the
// population is the newest `population` COMPLETED trials (older ones age
// out); a tournament of `sample_size` members drawn at random picks the best
// as parent, and the child is the parent with one mutation:
//  - one parameter changed (a choice moves to another value; a number takes
//    a local Gaussian step or a fresh draw), or, for a
//    blocks list, one of: add a random block at the end, remove the last
//    block, or resample every parameter of one block.
// Decisions the parent never made (a newly active condition, an added block)
// are drawn at random. The child is built by a walk of the space, so it
// always stays inside it. Until the population is full, trials are random.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "search/internal.h"
#include "search/sampler.h"

namespace hpo::search::detail {
namespace {

using nlohmann::json;

class MutationDecider : public Decider {
 public:
  MutationDecider(const Decisions& parent, std::string mutated, int block_move,
                  std::string block_prefix, std::mt19937_64& rng)
      : parent_(parent),
        mutated_(std::move(mutated)),
        block_move_(block_move),
        block_prefix_(std::move(block_prefix)),
        rng_(rng) {}

  double decide(const Dimension& d) override {
    auto it = parent_.find(d.key);
    bool in_block = !block_prefix_.empty() && d.key.starts_with(block_prefix_);
    if (it == parent_.end() || in_block) return from_unit(d, uniform01(rng_));
    if (d.key != mutated_) return it->second;
    if (d.count && block_move_ != 0) return it->second + block_move_;
    if (d.kind == Dimension::Kind::kCategorical && d.choices > 1) {
      // Another category, uniformly.
      auto k = static_cast<double>(uniform_index(rng_, static_cast<std::uint64_t>(d.choices - 1)));
      return k >= it->second ? k + 1 : k;
    }
    // A number: half the time a local step (a Gaussian of a tenth of the
    // range, in log space on a log scale), else a fresh uniform draw.
    if (uniform01(rng_) < 0.5) {
      const double lo = d.log ? std::log(d.low) : d.low, hi = d.log ? std::log(d.high) : d.high;
      const double x = d.log ? std::log(std::max(it->second, d.low)) : it->second;
      const double u1 = uniform01(rng_), u2 = uniform01(rng_);
      const double z = std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(2 * std::numbers::pi * u2);
      const double y = std::clamp(x + 0.1 * (hi - lo) * z, lo, hi);
      return d.log ? std::exp(y) : y;
    }
    return from_unit(d, uniform01(rng_));
  }

 private:
  const Decisions& parent_;
  std::string mutated_;
  int block_move_;
  std::string block_prefix_;
  std::mt19937_64& rng_;
};

class EvolutionSampler : public Sampler {
 public:
  EvolutionSampler(Space space, const json& o, std::uint64_t seed, Direction direction)
      : space_(std::move(space)),
        population_(o["population"].get<std::int64_t>()),
        sample_size_(o["sample_size"].get<std::int64_t>()),
        seed_(seed),
        direction_(direction) {}

  Result<std::optional<json>> ask(const History& history, std::int64_t number) override {
    auto rng = make_rng(seed_, number);
    std::vector<std::size_t> population;  // newest first
    for (std::size_t i = history.size(); i-- > 0;) {
      if (static_cast<std::int64_t>(population.size()) >= population_) break;
      if (score_of(history[i], direction_)) population.push_back(i);
    }
    if (static_cast<std::int64_t>(population.size()) < population_) {
      RandomDecider random(rng);
      return space_.sample(random);
    }
    // Tournament: sample_size distinct members, the best wins (ties: newer).
    std::vector<std::size_t> pool = population;
    std::size_t parent = history.size();
    double parent_score = INFINITY;
    for (std::int64_t k = 0; k < sample_size_; ++k) {
      std::size_t pick = k + uniform_index(rng, pool.size() - static_cast<std::size_t>(k));
      std::swap(pool[static_cast<std::size_t>(k)], pool[pick]);
      std::size_t member = pool[static_cast<std::size_t>(k)];
      double s = *score_of(history[member], direction_);
      if (s < parent_score || (s == parent_score && member > parent)) {
        parent = member;
        parent_score = s;
      }
    }
    Decisions decisions = space_.decode(history[parent].config);
    // Replay the parent once to list its decision points (and which are
    // blocks lengths) in walk order.
    struct Recorder : Decider {
      const Decisions& parent;
      std::mt19937_64& rng;
      std::vector<std::pair<std::string, bool>> seen;
      Recorder(const Decisions& p, std::mt19937_64& r) : parent(p), rng(r) {}
      double decide(const Dimension& d) override {
        seen.emplace_back(d.key, d.count);
        auto it = parent.find(d.key);
        return it != parent.end() ? it->second : from_unit(d, uniform01(rng));
      }
    } recorder(decisions, rng);
    space_.sample(recorder);
    if (recorder.seen.empty()) {
      RandomDecider random(rng);
      return space_.sample(random);
    }
    const auto& [mutated, is_count] = recorder.seen[uniform_index(rng, recorder.seen.size())];

    int block_move = 0;
    std::string block_prefix;
    if (is_count) {
      const double count = decisions.count(mutated) ? decisions[mutated] : 0;
      switch (uniform_index(rng, 3)) {
        case 0:
          block_move = +1;
          break;
        case 1:
          block_move = -1;
          break;
        default:
          if (count >= 1) {
            auto j = uniform_index(rng, static_cast<std::uint64_t>(count));
            block_prefix = mutated + "[" + std::to_string(j) + "].";
          } else {
            block_move = +1;
          }
      }
    }
    MutationDecider decider(decisions, mutated, block_move, block_prefix, rng);
    return space_.sample(decider);
  }
  std::string name() const override { return "evolution"; }

 private:
  Space space_;
  std::int64_t population_, sample_size_;
  std::uint64_t seed_;
  Direction direction_;
};

}  // namespace

std::unique_ptr<Sampler> make_evolution(const Space& space, const json& options, std::uint64_t seed,
                                        Direction direction) {
  return std::make_unique<EvolutionSampler>(space, options, seed, direction);
}

}  // namespace hpo::search::detail
