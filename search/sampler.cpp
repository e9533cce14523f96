#include "search/sampler.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_set>

#include "search/config.h"
#include "search/internal.h"

namespace hpo::search {

using nlohmann::json;

Sampler::~Sampler() = default;

void tell(History& history, std::int64_t number, TrialState state, std::optional<double> value) {
  if (number < 0) return;
  while (static_cast<std::int64_t>(history.size()) <= number) {
    history.push_back(TrialRecord{static_cast<std::int64_t>(history.size()),
                                  TrialState::kQueued,
                                  json::object(),
                                  std::nullopt,
                                  {}});
  }
  TrialRecord& t = history[static_cast<std::size_t>(number)];
  t.state = state;
  t.value = value;
}

namespace detail {

std::mt19937_64 make_rng(std::uint64_t seed, std::int64_t number, std::uint64_t salt) {
  // splitmix64 of (seed, number, salt): nearby seeds and numbers give unrelated streams.
  auto mix = [](std::uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  return std::mt19937_64(mix(mix(mix(seed) ^ static_cast<std::uint64_t>(number)) ^ salt));
}

double from_unit(const Dimension& d, double u) {
  u = std::clamp(u, 0.0, std::nextafter(1.0, 0.0));
  switch (d.kind) {
    case Dimension::Kind::kCategorical:
      return std::floor(u * static_cast<double>(d.choices));
    case Dimension::Kind::kInt:
      if (d.log) {
        // Each integer gets the log-width of [k - 0.5, k + 0.5].
        double lo = std::log(d.low - 0.5), hi = std::log(d.high + 0.5);
        return std::clamp(std::round(std::exp(lo + u * (hi - lo))), d.low, d.high);
      }
      [[fallthrough]];
    case Dimension::Kind::kFloat:
      if (d.step > 0) {
        double steps = std::floor((d.high - d.low) / d.step + 1e-9) + 1.0;
        return d.low + std::floor(u * steps) * d.step;
      }
      if (d.log) return std::exp(std::log(d.low) + u * (std::log(d.high) - std::log(d.low)));
      return d.low + u * (d.high - d.low);
  }
  return d.low;
}

std::vector<Dimension> walk_dimensions(const Space& space, const Decisions* replay) {
  struct Recorder : Decider {
    const Decisions* replay;
    std::vector<Dimension> seen;
    explicit Recorder(const Decisions* r) : replay(r) {}
    double decide(const Dimension& d) override {
      seen.push_back(d);
      if (!replay) return from_unit(d, 0.5);
      auto it = replay->find(d.key);
      return it == replay->end() ? d.low : it->second;
    }
  } recorder(replay);
  (void)space.sample(recorder);
  return std::move(recorder.seen);
}

std::optional<double> score_of(const TrialRecord& trial, Direction direction) {
  if (trial.state != TrialState::kCompleted || !trial.value || !std::isfinite(*trial.value)) {
    return std::nullopt;
  }
  return direction == Direction::kMinimize ? *trial.value : -*trial.value;
}

}  // namespace detail

namespace {

class RandomSampler : public Sampler {
 public:
  RandomSampler(Space space, std::uint64_t seed) : space_(std::move(space)), seed_(seed) {}
  Result<std::optional<json>> ask(const History&, std::int64_t number) override {
    auto rng = detail::make_rng(seed_, number);
    detail::RandomDecider decider(rng);
    return space_.sample(decider);
  }
  std::string name() const override { return "random"; }

 private:
  Space space_;
  std::uint64_t seed_;
};

// ---- grid ----

// The grid values of one numeric dimension: `points` evenly spaced values
// (in log space on a log scale), ints rounded and deduplicated.
std::vector<double> grid_values(const Dimension& d, std::int64_t points) {
  std::vector<double> out;
  if (d.kind == Dimension::Kind::kCategorical) {
    for (std::int64_t i = 0; i < d.choices; ++i) out.push_back(static_cast<double>(i));
    return out;
  }
  bool discrete = d.kind == Dimension::Kind::kInt || d.step > 0;
  if (discrete && d.step > 0) {
    double steps = std::floor((d.high - d.low) / d.step + 1e-9) + 1.0;
    if (steps <= static_cast<double>(points)) {
      for (double k = 0; k < steps; ++k) out.push_back(d.low + k * d.step);
      return out;
    }
  }
  for (std::int64_t i = 0; i < points; ++i) {
    double t = points == 1 ? 0.5 : static_cast<double>(i) / static_cast<double>(points - 1);
    double v = d.log ? std::exp(std::log(d.low) + t * (std::log(d.high) - std::log(d.low)))
                     : d.low + t * (d.high - d.low);
    if (discrete) {
      double step = d.step > 0 ? d.step : 1.0;
      v = std::clamp(d.low + std::round((v - d.low) / step) * step, d.low, d.high);
    }
    if (out.empty() || out.back() != v) out.push_back(v);
  }
  return out;
}

// Replays a prefix of grid positions and takes the first value at every
// decision beyond it, recording how many values each decision had.
class GridDecider : public Decider {
 public:
  GridDecider(const std::vector<std::size_t>& prefix, const json& options)
      : prefix_(prefix), options_(options) {}
  double decide(const Dimension& d) override {
    std::int64_t points = options_["points"].get<std::int64_t>();
    if (auto it = options_["parameter_points"].find(d.key);
        it != options_["parameter_points"].end()) {
      points = it->get<std::int64_t>();
    }
    auto values = grid_values(d, points);
    std::size_t at = used_.size();
    std::size_t pick = at < prefix_.size() ? std::min(prefix_[at], values.size() - 1) : 0;
    used_.push_back(pick);
    sizes_.push_back(values.size());
    return values[pick];
  }
  // The next position in the fixed order, or false when the grid is done.
  bool advance(std::vector<std::size_t>& next) const {
    next = used_;
    for (std::size_t i = next.size(); i-- > 0;) {
      if (next[i] + 1 < sizes_[i]) {
        ++next[i];
        next.resize(i + 1);
        return true;
      }
    }
    return false;
  }

 private:
  const std::vector<std::size_t>& prefix_;
  const json& options_;
  std::vector<std::size_t> used_, sizes_;
};

class GridSampler : public Sampler {
 public:
  GridSampler(Space space, json options) : space_(std::move(space)), options_(std::move(options)) {}

  // The first grid point, in the fixed order, that no trial in the history
  // holds: so a resumed or parallel study never repeats a point.
  Result<std::optional<json>> ask(const History& history, std::int64_t) override {
    std::unordered_set<std::string> seen;
    for (const auto& t : history) seen.insert(config_hash(t.config));
    constexpr std::size_t kMaxVisited = 1000000;
    std::vector<std::size_t> position;
    for (std::size_t visited = 0; visited < kMaxVisited; ++visited) {
      GridDecider decider(position, options_);
      json config = space_.sample(decider);
      if (!seen.count(config_hash(config))) return config;
      std::vector<std::size_t> next;
      if (!decider.advance(next)) return std::optional<json>{};
      position = std::move(next);
    }
    return fail("grid sampler: more than 1000000 grid points already tried; use another sampler");
  }
  std::string name() const override { return "grid"; }

 private:
  Space space_;
  json options_;
};

// ---- quasi-random: scrambled Halton ----

bool is_prime(std::uint64_t n) {
  for (std::uint64_t d = 2; d * d <= n; ++d) {
    if (n % d == 0) return false;
  }
  return n >= 2;
}

// Trial `number` is point number+1 of a Halton sequence whose j-th
// coordinate (the j-th decision of the walk) is the radical inverse in the
// j-th prime with a random digit permutation per (coordinate, digit)
// (Owen-style random digit scrambling, as in SciPy's scrambled Halton).
class QuasiSampler : public Sampler {
 public:
  QuasiSampler(Space space, std::string name, bool scramble, std::uint64_t seed)
      : space_(std::move(space)), name_(std::move(name)), scramble_(scramble), seed_(seed) {}

  Result<std::optional<json>> ask(const History&, std::int64_t number) override {
    struct HaltonDecider : Decider {
      QuasiSampler& self;
      std::uint64_t index;
      std::size_t next = 0;
      HaltonDecider(QuasiSampler& s, std::uint64_t i) : self(s), index(i) {}
      double decide(const Dimension& d) override {
        return detail::from_unit(d, self.coordinate(next++, index));
      }
    } decider(*this, static_cast<std::uint64_t>(number) + 1);
    return space_.sample(decider);
  }
  std::string name() const override { return name_; }

 private:
  double coordinate(std::size_t dim, std::uint64_t index) {
    while (primes_.size() <= dim) {
      std::uint64_t p = primes_.empty() ? 2 : primes_.back() + 1;
      while (!is_prime(p)) ++p;
      primes_.push_back(p);
    }
    const std::uint64_t base = primes_[dim];
    // Enough digits for double precision.
    const int digits = static_cast<int>(std::ceil(53.0 / std::log2(static_cast<double>(base))));
    double value = 0.0, scale = 1.0 / static_cast<double>(base);
    for (int k = 0; k < digits; ++k, scale /= static_cast<double>(base)) {
      std::uint64_t digit = index % base;
      index /= base;
      value += static_cast<double>(scramble_ ? permutation(dim, k, base)[digit] : digit) * scale;
    }
    return std::min(value, std::nextafter(1.0, 0.0));
  }

  const std::vector<std::uint32_t>& permutation(std::size_t dim, int digit, std::uint64_t base) {
    auto& p = permutations_[{dim, digit}];
    if (p.empty()) {
      p.resize(base);
      for (std::uint32_t i = 0; i < base; ++i) p[i] = i;
      auto rng = detail::make_rng(seed_, static_cast<std::int64_t>(dim), 0x5eed0000ull + digit);
      for (std::size_t i = base - 1; i > 0; --i) {
        std::swap(p[i], p[detail::uniform_index(rng, i + 1)]);
      }
    }
    return p;
  }

  Space space_;
  std::string name_;
  bool scramble_;
  std::uint64_t seed_;
  std::vector<std::uint64_t> primes_;                                               // cache only
  std::map<std::pair<std::size_t, int>, std::vector<std::uint32_t>> permutations_;  // cache only
};

}  // namespace

Result<std::unique_ptr<Sampler>> make_sampler(const Space& space, const json& sampler,
                                              std::uint64_t seed, Direction direction) {
  auto options = normalize_sampler(sampler, "sampler");
  if (!options) return std::unexpected(options.error());
  const std::string type = (*options)["type"].get<std::string>();
  std::unique_ptr<Sampler> out;
  if (type == "random") out = std::make_unique<RandomSampler>(space, seed);
  if (type == "grid") out = std::make_unique<GridSampler>(space, *options);
  if (type == "sobol") out = detail::make_sobol(space, (*options)["scramble"].get<bool>(), seed);
  if (type == "halton") {
    out = std::make_unique<QuasiSampler>(space, type, (*options)["scramble"].get<bool>(), seed);
  }
  if (type == "tpe") out = detail::make_tpe(space, *options, seed, direction);
  if (type == "evolution") out = detail::make_evolution(space, *options, seed, direction);
  if (type == "cmaes") out = detail::make_cmaes(space, *options, seed, direction);
  if (!out) return fail("sampler.type: unknown sampler '" + type + "'");
  return out;
}

Result<std::unique_ptr<Sampler>> make_sampler(const StudySpec& spec) {
  return make_sampler(spec.space, spec.sampler, spec.seed, spec.direction);
}

}  // namespace hpo::search
