// The parameter tree of a Space, shared by the three files that work on it:
// space_parse.cpp builds and validates it, space_sample.cpp walks it into a
// config, space_decode.cpp reads the decisions back out of a config. Internal
// to search/: nothing outside this folder includes it.
//
// A tree is immutable once Space::parse has returned it: every group's
// `order` is filled, every condition names a parameter that exists, and no
// conditions form a cycle, so the walks need no checks of their own.
#pragma once

#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace hpo::search {

// A condition "when": {"a.b": v or [v...]}: all of a node's conditions must hold.
struct Condition {
  std::string text;                    // the path as written
  bool relative = false;               // ".x": from the innermost block element
  std::vector<std::string> segments;   // the path split at '.'
  std::vector<nlohmann::json> values;  // any of these
};

struct SpaceNode {
  enum class Kind { kGroup, kFloat, kInt, kValues, kOptions, kConst, kBlocks };
  Kind kind = Kind::kGroup;
  std::string name;   // key in the parent object ("" for the root and option/block groups)
  std::string where;  // JSON path in the file, for messages
  const SpaceNode* parent = nullptr;
  // kGroup: parameters; kOptions: one group per option; kBlocks: the block group.
  std::vector<std::unique_ptr<SpaceNode>> children;
  std::vector<std::size_t> order;  // kGroup: children in walk (dependency) order
  double low = 0, high = 0, step = 0;
  bool log = false;
  std::vector<nlohmann::json> values;  // kValues
  nlohmann::json value;                // kConst
  std::vector<Condition> when;
};

}  // namespace hpo::search
