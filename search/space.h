// The search-space language: a parsed, validated parameter tree that samples
// plain nested JSON configs. Pure: no I/O, no clock, no global state.
//
// Space::parse checks everything a space file can get wrong (unknown key,
// wrong type, low >= high, a log range touching 0, an empty choice, a bad step,
// a condition naming a missing parameter, a cycle of conditions) and returns
// one Error whose message reads "FILE: space.a.b[1].c: what is wrong".
// After a successful parse, sampling cannot fail.
//
// The language (README "search-space language"): a parameter object has a
// "type" among float, int, choice, const, blocks; any other JSON value is a
// fixed value, and an object without such a type is a nested group. The key
// "when" is reserved: on a parameter or a group it holds its condition
// ({"dotted.path": value or [values]}, all must hold; ".x" inside a block is
// relative to the block). Parameter names must not contain '.'.
//
// Samplers drive the walk through a Decider: at each decision point of the
// tree (a float, an int, a choice, the length of a blocks list) the walk asks
// the decider for a value. Each decision point has a stable `key`, the same in
// every config that reaches it, e.g.
//   "lr"                          float/int/choice at the root
//   "optimizer"                   a nested choice (the value is the option index)
//   "optimizer.options[1].beta1"  a parameter inside option 1 of that choice
//   "net.conv"                    a blocks list (the value is the number of blocks)
//   "net.conv[2].filters"         a parameter inside block 2 of that list
// decode(config) gives the same keys back from a config, so a sampler can
// learn per-parameter from the trials where that parameter was active.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/error.h"

namespace hpo::search {

// One decision point as a sampler sees it.
struct Dimension {
  enum class Kind { kFloat, kInt, kCategorical };
  Kind kind = Kind::kFloat;
  std::string key;   // stable address, see above
  double low = 0.0;  // kFloat/kInt: inclusive bounds (kInt: integral)
  double high = 0.0;
  bool log = false;          // sample uniformly in log space (low > 0)
  double step = 0.0;         // 0 = continuous; kInt: >= 1
  std::int64_t choices = 0;  // kCategorical: number of categories (>= 1)
  bool count = false;        // kInt that is the length of a blocks list
};

// What a sampler plugs into Space::sample. decide() returns a value in the
// dimension's domain: the number itself for kFloat/kInt, the category index
// for kCategorical. The walk clamps, rounds and snaps whatever it gets, so a
// config always stays inside the space.
class Decider {
 public:
  virtual ~Decider() = default;
  virtual double decide(const Dimension& dimension) = 0;
};

// The decisions found in one config: key -> value (number, or category index).
using Decisions = std::unordered_map<std::string, double>;

struct SpaceNode;  // the parameter tree (search/space_node.h)

// Immutable after parse; cheap to copy (the tree is shared).
class Space {
 public:
  // `space` is the value of the study's "space" key (or a whole bare space
  // file); `file` is only used to prefix error messages (may be empty).
  static Result<Space> parse(const nlohmann::json& space, std::string_view file);

  // Walks the tree in dependency order (a parameter is decided after the
  // parameters its condition names) and builds the config.
  nlohmann::json sample(Decider& decider) const;

  // The decisions that would have produced `config`. Tolerant: keys whose
  // value is missing or does not fit the space are left out.
  Decisions decode(const nlohmann::json& config) const;

  // The static decision points: floats, ints, choices and blocks lists
  // (a parameter inside a block counts once, whatever the block count).
  std::size_t parameter_count() const;

  // The static decision points in walk order, block-element keys shown with
  // "[]" for the index (e.g. "net.conv[].filters"); for display and tests.
  std::vector<std::string> parameter_paths() const;

 private:
  std::shared_ptr<const SpaceNode> root_;
};

}  // namespace hpo::search
