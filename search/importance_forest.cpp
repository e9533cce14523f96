// The forest of parameter_importance: CART regression trees grown on bootstrap samples, and
// the exact main-effect variances of each tree (Hutter et al. 2014, section 3).
//
// Growing: each feature's samples are kept sorted by value, and a split partitions those
// lists stably, so finding the best split of a node costs one pass per feature (no sort per
// node). The whole data set is sorted once; a tree's bootstrap sample takes that order with
// each row repeated as often as it was drawn.
#include "search/importance_forest.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

#include "search/internal.h"

namespace hpo::search::detail {
namespace {

constexpr std::uint64_t kForestSalt = 0xf0a5e7001ull;
constexpr double kTie = 1e-9;  // relative: scores this close are the same split

struct TreeNode {
  std::int32_t feature = -1;  // -1: a leaf
  double threshold = 0;       // samples with value < threshold go left
  std::int32_t left = -1, right = -1;
  double value = 0;  // mean of the node's samples
};

// A threshold t with lo < t <= hi that respects the feature's cells.
double split_point(const ForestFeature& f, double lo, double hi) {
  if (lo < f.absent) return f.absent;  // the absent cell against a present value
  if (f.cells > 0) {
    const double w = (1 - f.absent) / static_cast<double>(f.cells);
    // lo and hi are cell centres; the boundary nearest their middle lies between them.
    return f.absent + std::round((0.5 * (lo + hi) - f.absent) / w) * w;
  }
  const double mid = lo + 0.5 * (hi - lo);
  return mid > lo ? mid : hi;  // lo and hi adjacent doubles
}

class TreeGrower {
 public:
  TreeGrower(const std::vector<ForestFeature>& features, const std::vector<double>& y,
             const std::vector<std::vector<std::uint32_t>>& order, const ImportanceOptions& o)
      : features_(features), y_(y), order_(order), options_(o), goes_left_(y.size(), 0) {}

  // Grows a tree on the bootstrap sample given by `draws` (times each row was drawn).
  std::vector<TreeNode> grow(const std::vector<std::uint32_t>& draws) {
    sorted_.assign(features_.size(), {});
    for (std::size_t f = 0; f < features_.size(); ++f) {
      for (std::uint32_t row : order_[f]) sorted_[f].insert(sorted_[f].end(), draws[row], row);
    }
    std::vector<TreeNode> nodes(1);
    struct Pending {
      std::size_t node, begin, end;
      std::int64_t depth;
    };
    std::vector<Pending> stack{{0, 0, sorted_.empty() ? 0 : sorted_[0].size(), 0}};
    while (!stack.empty()) {
      const Pending p = stack.back();
      stack.pop_back();
      auto split = split_node(nodes[p.node], p.begin, p.end, p.depth);
      if (!split) continue;
      const auto left = static_cast<std::int32_t>(nodes.size());
      nodes[p.node].left = left;
      nodes[p.node].right = left + 1;
      nodes.resize(nodes.size() + 2);
      stack.push_back({static_cast<std::size_t>(left), p.begin, *split, p.depth + 1});
      stack.push_back({static_cast<std::size_t>(left) + 1, *split, p.end, p.depth + 1});
    }
    return nodes;
  }

 private:
  // Sets the node's value and, when it splits, its feature and threshold, partitions the
  // sorted lists and returns where the right child's samples begin.
  std::optional<std::size_t> split_node(TreeNode& node, std::size_t begin, std::size_t end,
                                        std::int64_t depth) {
    const std::vector<std::uint32_t>& rows = sorted_[0];
    double sum = 0, low = INFINITY, high = -INFINITY;
    for (std::size_t k = begin; k < end; ++k) {
      const double v = y_[rows[k]];
      sum += v;
      low = std::min(low, v);
      high = std::max(high, v);
    }
    const auto count = static_cast<std::int64_t>(end - begin);
    node.value = sum / static_cast<double>(count);
    if (count < options_.min_samples_split || depth >= options_.max_depth || !(low < high)) {
      return std::nullopt;
    }
    // The split that maximizes sum_left^2/n_left + sum_right^2/n_right, i.e. reduces the
    // squared error most. A later feature must beat the best so far by more than rounding:
    // the same partition summed in another order must not win. Ties then go to the first
    // feature, and the caller lists a choice or a block count before the parameters it
    // enables, so the effect of taking a branch is credited to the decision that took it
    // rather than to the absence of the other branch's parameters.
    double best = -INFINITY, lo = 0, hi = 0;
    std::int32_t best_feature = -1;
    const auto min_leaf = options_.min_samples_leaf;
    for (std::size_t f = 0; f < features_.size(); ++f) {
      const std::vector<std::uint32_t>& s = sorted_[f];
      const std::vector<double>& x = features_[f].values;
      // Values are compared only among trials where the parameter is active: with absent
      // samples in the node (they sort first) the one split allowed is absent | present.
      const double absent = features_[f].absent;
      const bool mixed = x[s[begin]] < absent;
      double left_sum = 0;
      for (std::size_t k = begin; k + 1 < end; ++k) {
        left_sum += y_[s[k]];
        const auto n_left = static_cast<std::int64_t>(k + 1 - begin), n_right = count - n_left;
        if (n_right < min_leaf) break;
        if (n_left < min_leaf || !(x[s[k]] < x[s[k + 1]])) continue;
        if (mixed && !(x[s[k]] < absent && x[s[k + 1]] >= absent)) continue;
        const double right_sum = sum - left_sum;
        const double score = left_sum * left_sum / static_cast<double>(n_left) +
                             right_sum * right_sum / static_cast<double>(n_right);
        if (best_feature < 0 || score > best + kTie * std::fabs(best)) {
          best = score;
          best_feature = static_cast<std::int32_t>(f);
          lo = x[s[k]];
          hi = x[s[k + 1]];
        }
      }
    }
    if (best_feature < 0) return std::nullopt;  // every feature constant in this node
    const ForestFeature& chosen = features_[static_cast<std::size_t>(best_feature)];
    node.feature = best_feature;
    node.threshold = split_point(chosen, lo, hi);
    std::size_t n_left = 0;
    for (std::size_t k = begin; k < end; ++k) {
      const std::uint32_t row = rows[k];
      goes_left_[row] = chosen.values[row] < node.threshold;
      n_left += goes_left_[row] ? 1 : 0;
    }
    for (auto& s : sorted_) {
      buffer_.clear();
      auto out = s.begin() + static_cast<std::ptrdiff_t>(begin);
      for (std::size_t k = begin; k < end; ++k) {
        if (goes_left_[s[k]]) {
          *out++ = s[k];
        } else {
          buffer_.push_back(s[k]);
        }
      }
      std::copy(buffer_.begin(), buffer_.end(), out);
    }
    return begin + n_left;
  }

  const std::vector<ForestFeature>& features_;
  const std::vector<double>& y_;
  const std::vector<std::vector<std::uint32_t>>& order_;
  const ImportanceOptions& options_;
  std::vector<std::vector<std::uint32_t>> sorted_;  // per feature: the tree's rows by value
  std::vector<char> goes_left_;                     // by row, for the split being applied
  std::vector<std::uint32_t> buffer_;
};

// The leaves of a tree as boxes: value, volume and the interval on every feature.
struct Leaves {
  std::size_t features = 0;
  std::vector<double> value, volume, lo, hi;  // lo/hi: features values per leaf

  void collect(const std::vector<TreeNode>& nodes, std::size_t at, std::vector<double>& box_lo,
               std::vector<double>& box_hi) {
    const TreeNode& n = nodes[at];
    if (n.feature < 0) {
      double v = 1;
      for (std::size_t f = 0; f < features; ++f) v *= box_hi[f] - box_lo[f];
      value.push_back(n.value);
      volume.push_back(v);
      lo.insert(lo.end(), box_lo.begin(), box_lo.end());
      hi.insert(hi.end(), box_hi.begin(), box_hi.end());
      return;
    }
    const auto f = static_cast<std::size_t>(n.feature);
    const double saved_hi = box_hi[f], saved_lo = box_lo[f];
    box_hi[f] = n.threshold;
    collect(nodes, static_cast<std::size_t>(n.left), box_lo, box_hi);
    box_hi[f] = saved_hi;
    box_lo[f] = n.threshold;
    collect(nodes, static_cast<std::size_t>(n.right), box_lo, box_hi);
    box_lo[f] = saved_lo;
  }
};

// Each feature's main-effect variance over the tree's partition as a fraction of the tree's
// variance; empty when the tree is constant. The marginal of feature f at x is the sum, over
// the leaves whose interval on f holds x, of value * volume / width on f: piecewise constant
// between the leaves' interval ends on f, so its variance is a finite sum.
std::vector<double> tree_fractions(const std::vector<TreeNode>& nodes, std::size_t features) {
  Leaves leaves{features, {}, {}, {}, {}};
  std::vector<double> box_lo(features, 0.0), box_hi(features, 1.0);
  leaves.collect(nodes, 0, box_lo, box_hi);
  const std::size_t count = leaves.value.size();
  double total_volume = 0, mean = 0;
  for (std::size_t l = 0; l < count; ++l) {
    total_volume += leaves.volume[l];
    mean += leaves.volume[l] * leaves.value[l];
  }
  mean /= total_volume;
  double variance = 0;
  for (std::size_t l = 0; l < count; ++l) {
    const double d = leaves.value[l] - mean;
    variance += leaves.volume[l] * d * d;
  }
  variance /= total_volume;
  // The targets are standardized (variance 1 over the samples): below this the tree is
  // constant but for rounding.
  if (!(variance > 1e-12)) return {};
  std::vector<double> out(features, 0.0), cuts, delta;
  for (std::size_t f = 0; f < features; ++f) {
    cuts.assign({0.0, 1.0});
    for (std::size_t l = 0; l < count; ++l) {
      cuts.push_back(leaves.lo[l * features + f]);
      cuts.push_back(leaves.hi[l * features + f]);
    }
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    if (cuts.size() <= 2) continue;  // never split on f: its marginal is the mean
    delta.assign(cuts.size(), 0.0);
    auto index = [&](double x) {
      return static_cast<std::size_t>(std::lower_bound(cuts.begin(), cuts.end(), x) - cuts.begin());
    };
    for (std::size_t l = 0; l < count; ++l) {
      const double a = leaves.lo[l * features + f], b = leaves.hi[l * features + f];
      const double c = leaves.value[l] * leaves.volume[l] / ((b - a) * total_volume);
      delta[index(a)] += c;
      delta[index(b)] -= c;
    }
    double marginal = 0, v = 0;
    for (std::size_t j = 0; j + 1 < cuts.size(); ++j) {
      marginal += delta[j];
      const double d = marginal - mean;
      v += (cuts[j + 1] - cuts[j]) * d * d;
    }
    out[f] = std::clamp(v / variance, 0.0, 1.0);
  }
  return out;
}

}  // namespace

std::vector<std::vector<double>> main_effect_fractions(const std::vector<ForestFeature>& features,
                                                       const std::vector<double>& y,
                                                       const ImportanceOptions& options) {
  const std::size_t n = y.size();
  std::vector<std::vector<std::uint32_t>> order(features.size());
  for (std::size_t f = 0; f < features.size(); ++f) {
    order[f].resize(n);
    std::iota(order[f].begin(), order[f].end(), 0u);
    const std::vector<double>& x = features[f].values;
    std::stable_sort(order[f].begin(), order[f].end(),
                     [&](std::uint32_t a, std::uint32_t b) { return x[a] < x[b]; });
  }
  TreeGrower grower(features, y, order, options);
  std::vector<std::vector<double>> out;
  std::vector<std::uint32_t> draws(n);
  for (std::int64_t t = 0; t < options.trees; ++t) {
    auto rng = make_rng(options.seed, t, kForestSalt);
    std::fill(draws.begin(), draws.end(), 0u);
    for (std::size_t i = 0; i < n; ++i) ++draws[uniform_index(rng, n)];
    auto fractions = tree_fractions(grower.grow(draws), features.size());
    if (!fractions.empty()) out.push_back(std::move(fractions));
  }
  return out;
}

}  // namespace hpo::search::detail
