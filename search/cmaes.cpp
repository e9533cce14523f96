// The CMA-ES sampler ({"type": "cmaes"}): the (mu/mu_w, lambda)-CMA-ES of
// cmaes_state.h on the numeric parameters, TPE on everything else.
//
// Dimensions: the float and int decision points (not block counts) that every
// finished trial (COMPLETED with a finite value) has; before any trial has
// finished, those of a walk through the centre of the space. Each is mapped
// through range_of (log space on a log scale, ints widened half a step each
// side) onto [0,1], so the search runs in the unit cube; sigma0 is a fraction
// of it (default 1/6, like Optuna's CmaEsSampler).
//
// Pure replay: the finished trials, in trial-number order, are cut into
// generations of lambda; each full generation updates the state with its
// points as they actually were (rounded ints, clipped draws, and draws made
// from an older state by a parallel ask). FAILED, PRUNED and pending trials
// never enter an update; an incomplete last generation waits. Trial `number`
// is drawn from the state after every full generation with a generator of
// (seed, number), so the same history and seed give the same config. Restarts
// (IPOP: twice the population, from the centre) happen inside the replay, so
// they too are a function of the history. The state after each generation is
// cached with the (number, value) pairs of its trials, and each trial's
// decoded point with its (number, value): an ask replays only the generations
// that changed. The cache assumes a finished trial's config never changes.
//
// Fallback: every other decision point (choices, block counts, parameters
// behind a condition or inside an option or block that not every trial has)
// is decided by TPE with its default options, from the same history, with
// the CMA-ES numbers fixed (tpe_ask_with). While fewer than startup_trials
// trials have finished, TPE decides everything (at first at random).
//
// Not here: integer-aware CMA (Optuna's "with margin"), separable or
// learning-rate-adapted variants, warm starts.
#include <algorithm>
#include <cmath>

#include "search/cmaes_state.h"
#include "search/internal.h"
#include "search/sampler.h"
#include "search/study.h"
#include "search/tpe_parzen.h"

namespace hpo::search::detail {
namespace {

using nlohmann::json;

constexpr std::uint64_t kDrawSalt = 0xc3a5e5c3a5e5ull;

bool is_number(const Dimension& d) { return d.kind != Dimension::Kind::kCategorical && !d.count; }

bool has(const Decisions& decisions, const Dimension& d) {
  auto it = decisions.find(d.key);
  return it != decisions.end() && std::isfinite(it->second);
}

// The numeric decision points of a walk, sorted by key: replaying `replay`
// when given (its numeric decisions only), else through the centre of the space.
std::vector<Dimension> numbers_of_walk(const Space& space, const Decisions* replay) {
  std::vector<Dimension> seen = walk_dimensions(space, replay);
  std::erase_if(seen, [&](const Dimension& d) {
    if (!is_number(d)) return true;
    if (!replay) return false;
    auto it = replay->find(d.key);
    return it == replay->end() || !std::isfinite(it->second);
  });
  std::sort(seen.begin(), seen.end(),
            [](const Dimension& a, const Dimension& b) { return a.key < b.key; });
  return seen;
}

// One history slot as last seen: a finished trial keeps its decisions and its point.
struct Entry {
  std::int64_t number = -1;
  std::optional<double> score;  // score_of: set for finished trials
  bool included = false;        // counted in the common dimensions
  Decisions decisions;
  std::vector<double> point;  // in the unit cube, for dimensions version `point_version`
  std::uint64_t point_version = 0;
};

struct Generation {
  std::vector<std::pair<std::int64_t, double>> members;  // (number, score) in number order
  CmaState after;
};

class CmaesSampler : public Sampler {
 public:
  CmaesSampler(Space space, const json& o, std::uint64_t seed, Direction direction)
      : space_(std::move(space)), seed_(seed), direction_(direction) {
    popsize_ = static_cast<std::size_t>(o["popsize"].get<std::int64_t>());
    sigma0_ = o["sigma0"].get<double>();
    startup_trials_ = o["startup_trials"].get<std::int64_t>();
    tpe_options_ = *normalize_sampler(json{{"type", "tpe"}}, "sampler");
    centre_dims_ = numbers_of_walk(space_, nullptr);
  }

  Result<std::optional<json>> ask(const History& history, std::int64_t number) override {
    refresh(history);
    const std::vector<Dimension>& dims = finished_ > 0 ? common_ : centre_dims_;
    Decisions fixed;
    if (finished_ >= startup_trials_ && !dims.empty()) {
      const CmaState& state = replay(dims);
      auto rng = make_rng(seed_, number, kDrawSalt);
      const std::vector<double> x = cma_sample(state, rng);
      for (std::size_t i = 0; i < dims.size(); ++i) {
        const Range r = range_of(dims[i]);
        fixed[dims[i].key] =
            std::clamp(r.from(r.low + x[i] * (r.high - r.low)), dims[i].low, dims[i].high);
      }
    }
    // Only when some decision is left over is TPE needed (it would give the same numbers).
    struct Fixed : Decider {
      const Decisions& fixed;
      bool missed = false;
      explicit Fixed(const Decisions& f) : fixed(f) {}
      double decide(const Dimension& d) override {
        auto it = fixed.find(d.key);
        if (it != fixed.end()) return it->second;
        missed = true;
        return d.low;
      }
    } walk(fixed);
    json config = space_.sample(walk);
    if (!walk.missed) return config;
    return tpe_ask_with(space_, tpe_options_, seed_, direction_, history, number, fixed);
  }

  std::string name() const override { return "cmaes"; }

 private:
  // Brings entries_, common_ and finished_ up to date with `history`. Adding
  // finished trials only narrows common_; a finished trial that changed or
  // went away rebuilds it from every entry.
  void refresh(const History& history) {
    bool rebuild = false;
    for (std::size_t i = history.size(); i < entries_.size(); ++i) rebuild |= entries_[i].included;
    entries_.resize(history.size());
    std::vector<std::size_t> added;
    for (std::size_t i = 0; i < history.size(); ++i) {
      Entry& e = entries_[i];
      const std::optional<double> score = score_of(history[i], direction_);
      if (e.number == history[i].number && e.score == score) continue;
      rebuild |= e.included;
      e = Entry{history[i].number, score, false, {}, {}, 0};
      if (score) {
        e.decisions = space_.decode(history[i].config);
        added.push_back(i);
      }
    }
    if (rebuild) {
      common_.clear();
      finished_ = 0;
      ++dims_version_;
      added.clear();
      for (std::size_t i = 0; i < entries_.size(); ++i) {
        entries_[i].included = false;
        if (entries_[i].score) added.push_back(i);
      }
    }
    for (std::size_t i : added) {
      Entry& e = entries_[i];
      const std::size_t before = common_.size();
      if (finished_ == 0) {
        common_ = numbers_of_walk(space_, &e.decisions);
        ++dims_version_;
      } else {
        std::erase_if(common_, [&](const Dimension& d) { return !has(e.decisions, d); });
        if (common_.size() != before) ++dims_version_;
      }
      e.included = true;
      ++finished_;
    }
  }

  // The state after every full generation of the finished trials.
  const CmaState& replay(const std::vector<Dimension>& dims) {
    const std::size_t n = dims.size();
    if (generations_version_ != dims_version_ || initial_.n != n) {
      generations_.clear();
      generations_version_ = dims_version_;
      initial_ = cma_start(n, popsize_ > 0 ? popsize_ : cma_default_popsize(n), sigma0_);
    }
    if (finished_ == 0) return initial_;
    std::vector<const Entry*> trials;
    for (Entry& e : entries_) {
      if (!e.included) continue;
      if (e.point_version != dims_version_) {
        e.point.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
          const Range r = range_of(dims[i]);
          const double v = std::clamp(e.decisions.at(dims[i].key), dims[i].low, dims[i].high);
          e.point[i] = std::clamp((r.to(v) - r.low) / (r.high - r.low), 0.0, 1.0);
        }
        e.point_version = dims_version_;
      }
      trials.push_back(&e);
    }
    auto by_number = [](const Entry* a, const Entry* b) { return a->number < b->number; };
    if (!std::is_sorted(trials.begin(), trials.end(), by_number)) {
      std::stable_sort(trials.begin(), trials.end(), by_number);
    }
    const CmaState* state = &initial_;
    for (std::size_t at = 0, k = 0; at + state->lambda <= trials.size(); ++k) {
      const std::size_t lambda = state->lambda;
      bool cached = k < generations_.size() && generations_[k].members.size() == lambda;
      for (std::size_t j = 0; cached && j < lambda; ++j) {
        cached = generations_[k].members[j] ==
                 std::pair<std::int64_t, double>(trials[at + j]->number, *trials[at + j]->score);
      }
      if (!cached) {
        generations_.resize(k);
        Generation g;
        std::vector<const Entry*> ranked(trials.begin() + static_cast<std::ptrdiff_t>(at),
                                         trials.begin() + static_cast<std::ptrdiff_t>(at + lambda));
        for (const Entry* t : ranked) g.members.emplace_back(t->number, *t->score);
        std::sort(ranked.begin(), ranked.end(), [](const Entry* a, const Entry* b) {
          return *a->score != *b->score ? *a->score < *b->score : a->number < b->number;
        });
        std::vector<const std::vector<double>*> best_first;
        for (const Entry* t : ranked) best_first.push_back(&t->point);
        g.after = *state;
        cma_tell(g.after, best_first, sigma0_);
        generations_.push_back(std::move(g));
      }
      state = &generations_[k].after;
      at += lambda;
    }
    return *state;
  }

  Space space_;
  std::uint64_t seed_;
  Direction direction_;
  std::size_t popsize_ = 0;  // 0: cma_default_popsize
  double sigma0_ = 1.0 / 6.0;
  std::int64_t startup_trials_ = 1;
  json tpe_options_;
  std::vector<Dimension> centre_dims_;

  // Caches only (see the file comment): entries_[i] mirrors history[i].
  std::vector<Entry> entries_;
  std::vector<Dimension> common_;  // numeric points every included entry has, sorted by key
  std::int64_t finished_ = 0;      // included entries
  std::uint64_t dims_version_ = 1;
  std::uint64_t generations_version_ = 0;
  CmaState initial_;
  std::vector<Generation> generations_;
};

}  // namespace

std::unique_ptr<Sampler> make_cmaes(const Space& space, const json& options, std::uint64_t seed,
                                    Direction direction) {
  return std::make_unique<CmaesSampler>(space, options, seed, direction);
}

}  // namespace hpo::search::detail
