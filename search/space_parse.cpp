// Space::parse: reads a space file's JSON into the parameter tree, checks
// everything a file can get wrong, and orders each group so that a parameter
// comes after those its condition names. Errors read "FILE: space.a.b: what".
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "search/internal.h"
#include "search/space.h"
#include "search/space_node.h"

namespace hpo::search {

using detail::format_number;
using nlohmann::json;

namespace {

using Kind = SpaceNode::Kind;

const std::set<std::string, std::less<>> kKinds = {"float", "int", "choice", "const", "blocks"};
constexpr std::int64_t kMaxBlocks = 64;

class Parser {
 public:
  explicit Parser(std::string_view file) : file_(file) {}

  Result<std::unique_ptr<SpaceNode>> node(const json& v, std::string where, std::string name,
                                          const SpaceNode* parent);
  Result<std::unique_ptr<SpaceNode>> group(const json& v, std::string where, std::string name,
                                           const SpaceNode* parent);
  Status resolve_and_order(SpaceNode& root);

 private:
  std::unexpected<Error> error(const std::string& where, const std::string& message) const {
    return fail(detail::located(file_, where, message));
  }
  Status parameter(const json& v, SpaceNode& n);
  Status number_field(const json& v, const std::string& key, const SpaceNode& n, double& out,
                      bool integral);
  Status conditions(const json& v, SpaceNode& n);
  Status order_group(SpaceNode& g);
  Status collect_edges(SpaceNode& n, const SpaceNode& root);

  std::string_view file_;
  // Per group: edges "a must be walked before b" between its children.
  std::map<const SpaceNode*, std::set<std::pair<std::size_t, std::size_t>>> edges_;
};

std::string describe(const json& v) {
  std::string s = v.dump();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

Result<std::unique_ptr<SpaceNode>> Parser::node(const json& v, std::string where, std::string name,
                                                const SpaceNode* parent) {
  if (v.is_object()) {
    auto t = v.find("type");
    if (t != v.end() && t->is_string() && kKinds.count(t->get<std::string>())) {
      auto n = std::make_unique<SpaceNode>();
      n->where = std::move(where);
      n->name = std::move(name);
      n->parent = parent;
      if (auto s = parameter(v, *n); !s) return std::unexpected(s.error());
      return n;
    }
    return group(v, std::move(where), std::move(name), parent);
  }
  if (v.is_binary() || v.is_discarded()) return error(where, "not a JSON value");
  auto n = std::make_unique<SpaceNode>();
  n->kind = Kind::kConst;  // a plain literal is a fixed value
  n->value = v;
  n->where = std::move(where);
  n->name = std::move(name);
  n->parent = parent;
  return n;
}

Result<std::unique_ptr<SpaceNode>> Parser::group(const json& v, std::string where, std::string name,
                                                 const SpaceNode* parent) {
  if (!v.is_object()) return error(where, "must be an object (a sub-space), got " + describe(v));
  auto g = std::make_unique<SpaceNode>();
  g->kind = Kind::kGroup;
  g->where = std::move(where);
  g->name = std::move(name);
  g->parent = parent;
  // A misspelt kind ("type": "flaot" beside "low"/"high") would otherwise
  // quietly become a group of fixed values.
  auto t = v.find("type");
  if (t != v.end() && t->is_string()) {
    for (const char* k : {"low", "high", "values", "options", "block"}) {
      if (v.contains(k)) {
        return error(g->where + ".type", "unknown parameter type " + describe(*t) +
                                             " (kinds: float, int, choice, const, blocks)");
      }
    }
  }
  for (const auto& [k, item] : v.items()) {
    if (k == "when") continue;
    std::string child_where = g->where.empty() ? k : g->where + "." + k;
    if (k.empty()) return error(g->where, "a parameter name must not be empty");
    if (k.find('.') != std::string::npos) {
      return error(child_where, "a parameter name must not contain '.'");
    }
    auto c = node(item, child_where, k, g.get());
    if (!c) return std::unexpected(c.error());
    g->children.push_back(std::move(*c));
  }
  if (auto s = conditions(v, *g); !s) return std::unexpected(s.error());
  return g;
}

Status Parser::number_field(const json& v, const std::string& key, const SpaceNode& n, double& out,
                            bool integral) {
  auto it = v.find(key);
  std::string where = n.where + "." + key;
  if (it == v.end()) return error(n.where, "missing '" + key + "'");
  if (!it->is_number()) return error(where, "must be a number (got " + describe(*it) + ")");
  out = it->get<double>();
  if (!std::isfinite(out)) return error(where, "must be finite");
  if (integral && std::trunc(out) != out) {
    return error(where, "must be an integer (got " + format_number(out) + ")");
  }
  return {};
}

Status Parser::parameter(const json& v, SpaceNode& n) {
  const std::string type = v["type"].get<std::string>();
  std::set<std::string> allowed;
  if (type == "float" || type == "int") {
    allowed = {"type", "low", "high", "log", "step", "when"};
  } else if (type == "choice") {
    allowed = {"type", "values", "options", "when"};
  } else if (type == "const") {
    allowed = {"type", "value", "when"};
  } else {
    allowed = {"type", "min", "max", "block", "when"};
  }
  for (const auto& [k, item] : v.items()) {
    if (!allowed.count(k)) {
      std::string list;
      for (const auto& a : allowed) {
        if (a != "type") list += (list.empty() ? "" : ", ") + a;
      }
      return error(n.where + "." + k,
                   "unknown key for a " + type + " parameter (allowed: " + list + ")");
    }
  }
  if (type == "float" || type == "int") {
    const bool integral = type == "int";
    n.kind = integral ? Kind::kInt : Kind::kFloat;
    if (auto s = number_field(v, "low", n, n.low, integral); !s) return s;
    if (auto s = number_field(v, "high", n, n.high, integral); !s) return s;
    if (integral ? n.low > n.high : n.low >= n.high) {
      return error(n.where + ".low",
                   std::string(integral ? "must be <= high (got " : "must be < high (got ") +
                       format_number(n.low) + (integral ? " > " : " >= ") + format_number(n.high) +
                       ")");
    }
    if (auto l = v.find("log"); l != v.end()) {
      if (!l->is_boolean())
        return error(n.where + ".log", "must be true or false (got " + describe(*l) + ")");
      n.log = l->get<bool>();
    }
    if (n.log && n.low <= 0) {
      return error(n.where + ".low",
                   "a log scale needs low > 0 (got " + format_number(n.low) + ")");
    }
    n.step = integral ? 1.0 : 0.0;
    if (auto s = v.find("step"); s != v.end() && !s->is_null()) {
      if (!s->is_number())
        return error(n.where + ".step", "must be a number (got " + describe(*s) + ")");
      double step = s->get<double>();
      if (!(step > 0) || !std::isfinite(step)) {
        return error(n.where + ".step", "must be > 0 (got " + format_number(step) + ")");
      }
      if (integral && std::trunc(step) != step) {
        return error(n.where + ".step", "must be an integer (got " + format_number(step) + ")");
      }
      if (n.log && step != (integral ? 1.0 : 0.0)) {
        return error(n.where + ".step", "a step cannot be combined with a log scale");
      }
      if (step > n.high - n.low && n.high > n.low) {
        return error(n.where + ".step", "must be <= high - low (got " + format_number(step) +
                                            " > " + format_number(n.high - n.low) + ")");
      }
      n.step = step;
    }
  } else if (type == "choice") {
    auto values = v.find("values");
    auto options = v.find("options");
    if (values != v.end() && options != v.end()) {
      return error(n.where, "a choice takes either 'values' or 'options', not both");
    }
    if (values == v.end() && options == v.end()) {
      return error(n.where, "a choice needs 'values' (a list) or 'options' (a list of sub-spaces)");
    }
    if (values != v.end()) {
      n.kind = Kind::kValues;
      if (!values->is_array())
        return error(n.where + ".values", "must be an array (got " + describe(*values) + ")");
      if (values->empty()) return error(n.where + ".values", "must not be empty");
      n.values.assign(values->begin(), values->end());
    } else {
      n.kind = Kind::kOptions;
      if (!options->is_array())
        return error(n.where + ".options", "must be an array (got " + describe(*options) + ")");
      if (options->empty()) return error(n.where + ".options", "must not be empty");
      for (std::size_t i = 0; i < options->size(); ++i) {
        std::string w = n.where + ".options[" + std::to_string(i) + "]";
        if (!(*options)[i].is_object()) {
          return error(w,
                       "an option must be an object (a sub-space), got " + describe((*options)[i]));
        }
        auto g = group((*options)[i], w, "", &n);
        if (!g) return std::unexpected(g.error());
        n.children.push_back(std::move(*g));
      }
    }
  } else if (type == "const") {
    n.kind = Kind::kConst;
    auto it = v.find("value");
    if (it == v.end()) return error(n.where, "a const needs a 'value'");
    n.value = *it;
  } else {  // blocks
    n.kind = Kind::kBlocks;
    n.low = 1;
    if (v.contains("min")) {
      if (auto s = number_field(v, "min", n, n.low, true); !s) return s;
    }
    if (auto s = number_field(v, "max", n, n.high, true); !s) return s;
    if (n.low < 0)
      return error(n.where + ".min", "must be >= 0 (got " + format_number(n.low) + ")");
    if (n.low > n.high) {
      return error(n.where + ".min", "must be <= max (got " + format_number(n.low) + " > " +
                                         format_number(n.high) + ")");
    }
    if (n.high > kMaxBlocks) {
      return error(n.where + ".max", "must be <= " + std::to_string(kMaxBlocks) + " (got " +
                                         format_number(n.high) + ")");
    }
    auto b = v.find("block");
    if (b == v.end()) return error(n.where, "blocks need a 'block' (the sub-space of one block)");
    auto g = group(*b, n.where + ".block", "", &n);
    if (!g) return std::unexpected(g.error());
    n.children.push_back(std::move(*g));
    n.step = 1;
  }
  return conditions(v, n);
}

Status Parser::conditions(const json& v, SpaceNode& n) {
  auto w = v.find("when");
  if (w == v.end()) return {};
  std::string where = n.where + ".when";
  if (!w->is_object() || w->empty()) {
    return error(where, "must be a non-empty object {\"path\": value or [values]}");
  }
  for (const auto& [path, want] : w->items()) {
    Condition c;
    c.text = path;
    std::string rest = path;
    if (!rest.empty() && rest[0] == '.') {
      c.relative = true;
      rest.erase(0, 1);
    }
    std::size_t start = 0;
    while (true) {
      std::size_t dot = rest.find('.', start);
      c.segments.push_back(rest.substr(start, dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    for (const auto& s : c.segments) {
      if (s.empty()) return error(where, "'" + path + "' is not a valid dotted path");
    }
    if (want.is_array()) {
      if (want.empty()) return error(where + "." + path, "the list of values must not be empty");
      c.values.assign(want.begin(), want.end());
    } else {
      c.values.push_back(want);
    }
    n.when.push_back(std::move(c));
  }
  return {};
}

// The nodes a dotted path can name, starting at `start` (a group).
std::vector<const SpaceNode*> resolve(const Condition& c, const SpaceNode* start) {
  std::vector<const SpaceNode*> current{start};
  for (const auto& seg : c.segments) {
    std::vector<const SpaceNode*> next;
    for (const SpaceNode* n : current) {
      std::vector<const SpaceNode*> groups;
      if (n->kind == Kind::kGroup) groups.push_back(n);
      if (n->kind == Kind::kOptions) {
        for (const auto& o : n->children) groups.push_back(o.get());
      }
      for (const SpaceNode* g : groups) {
        for (const auto& ch : g->children) {
          if (ch->name == seg) next.push_back(ch.get());
        }
      }
    }
    current = std::move(next);
  }
  return current;
}

bool is_ancestor(const SpaceNode* a, const SpaceNode* n) {
  for (const SpaceNode* p = n; p; p = p->parent) {
    if (p == a) return true;
  }
  return false;
}

Status Parser::collect_edges(SpaceNode& n, const SpaceNode& root) {
  for (const auto& c : n.when) {
    const SpaceNode* start = &root;
    if (c.relative) {
      const SpaceNode* p = n.parent;
      while (p && !(p->parent && p->parent->kind == Kind::kBlocks)) p = p->parent;
      if (!p) {
        return error(n.where + ".when", "'" + c.text +
                                            "' is relative (starts with '.') but the parameter is "
                                            "not inside a block");
      }
      start = p;
    }
    auto targets = resolve(c, start);
    if (targets.empty()) {
      return error(n.where + ".when", "'" + c.text + "' names a missing parameter");
    }
    for (const SpaceNode* t : targets) {
      if (is_ancestor(t, &n) || is_ancestor(&n, t)) {
        return error(n.where + ".when", "conditions form a cycle: '" + c.text +
                                            "' is this parameter or encloses or is inside it");
      }
      // Order the two subtrees under their lowest common group.
      const SpaceNode* a = t;
      while (a->parent && !is_ancestor(a->parent, &n)) a = a->parent;
      const SpaceNode* lca = a->parent;
      if (!lca || lca->kind != Kind::kGroup) continue;  // different options: never both active
      const SpaceNode* b = &n;
      while (b->parent != lca) b = b->parent;
      std::size_t ia = 0, ib = 0;
      for (std::size_t i = 0; i < lca->children.size(); ++i) {
        if (lca->children[i].get() == a) ia = i;
        if (lca->children[i].get() == b) ib = i;
      }
      edges_[lca].insert({ia, ib});
    }
  }
  for (auto& ch : n.children) {
    if (auto s = collect_edges(*ch, root); !s) return s;
  }
  return {};
}

Status Parser::order_group(SpaceNode& g) {
  if (g.kind == Kind::kGroup) {
    const auto& edges = edges_[&g];
    std::size_t count = g.children.size();
    std::vector<int> indegree(count, 0);
    for (const auto& [a, b] : edges) ++indegree[b];
    std::vector<bool> done(count, false);
    while (g.order.size() < count) {
      std::size_t pick = count;
      for (std::size_t i = 0; i < count && pick == count; ++i) {
        if (!done[i] && indegree[i] == 0) pick = i;
      }
      if (pick == count) {
        // Every remaining child waits on another: follow the edges to a cycle.
        std::size_t at = 0;
        while (done[at]) ++at;
        std::vector<std::size_t> trail;
        std::vector<int> seen(count, -1);
        while (seen[at] < 0) {
          seen[at] = static_cast<int>(trail.size());
          trail.push_back(at);
          for (const auto& [a, b] : edges) {
            if (b == at && !done[a]) {
              at = a;
              break;
            }
          }
        }
        // Each step of the trail waits on the next: "a -> b" reads "a needs b".
        std::string text;
        for (std::size_t i = static_cast<std::size_t>(seen[at]); i < trail.size(); ++i) {
          text += "'" + g.children[trail[i]]->name + "' -> ";
        }
        text += "'" + g.children[at]->name + "'";
        return error(g.children[at]->where + ".when", "conditions form a cycle: " + text);
      }
      done[pick] = true;
      g.order.push_back(pick);
      for (const auto& [a, b] : edges) {
        if (a == pick) --indegree[b];
      }
    }
  }
  for (auto& ch : g.children) {
    if (auto s = order_group(*ch); !s) return s;
  }
  return {};
}

Status Parser::resolve_and_order(SpaceNode& root) {
  if (auto s = collect_edges(root, root); !s) return s;
  return order_group(root);
}

}  // namespace

Result<Space> Space::parse(const nlohmann::json& space, std::string_view file) {
  Parser parser(file);
  if (!space.is_object()) {
    return fail(detail::located(file, "space", "must be an object, got " + describe(space)));
  }
  auto root = parser.group(space, "space", "", nullptr);
  if (!root) return std::unexpected(root.error());
  if ((*root)->kind != Kind::kGroup) return fail(detail::located(file, "space", "must be a group"));
  if (auto s = parser.resolve_and_order(**root); !s) return std::unexpected(s.error());
  Space out;
  out.root_ = std::shared_ptr<const SpaceNode>(std::move(*root));
  return out;
}

}  // namespace hpo::search
