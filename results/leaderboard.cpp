// Store::leaderboard and the `--where` filters it takes.
//
// The SQL text is assembled from fixed fragments only (how many filters and
// states, which direction); every user-given value, path and metric name is a
// bound parameter, never spliced into SQL.
#include <functional>
#include <string>

#include "results/store_impl.h"

namespace hpo::results {
namespace {

using detail::Query;

// "net.conv[0].filters" -> $."net"."conv"[0]."filters" (keys quoted, so any
// key text is safe inside the path).
Result<std::string> json_path(std::string_view dotted) {
  std::string out = "$";
  std::size_t i = 0;
  auto bad = [&](std::string_view why) {
    return fail("--where: bad parameter path '" + std::string(dotted) + "': " + std::string(why));
  };
  if (dotted.empty()) return bad("empty");
  while (i < dotted.size()) {
    if (dotted[i] == '[') {
      std::size_t close = dotted.find(']', i);
      if (close == std::string_view::npos || close == i + 1) return bad("unclosed or empty [ ]");
      for (std::size_t k = i + 1; k < close; ++k) {
        if (dotted[k] < '0' || dotted[k] > '9') return bad("a list index must be a number");
      }
      out += dotted.substr(i, close - i + 1);
      i = close + 1;
      if (i < dotted.size() && dotted[i] == '.') {
        ++i;
        if (i == dotted.size()) return bad("ends with '.'");
      }
      continue;
    }
    std::size_t end = dotted.find_first_of(".[", i);
    if (end == std::string_view::npos) end = dotted.size();
    std::string_view key = dotted.substr(i, end - i);
    if (key.empty()) return bad("empty name between dots");
    if (key.find('"') != std::string_view::npos) return bad("names may not contain '\"'");
    out += ".\"" + std::string(key) + "\"";
    i = end;
    if (i < dotted.size() && dotted[i] == '.') {
      ++i;
      if (i == dotted.size()) return bad("ends with '.'");
    }
  }
  return out;
}

}  // namespace

Result<Filter> parse_filter(std::string_view text) {
  const auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return fail("--where '" + std::string(text) + "': expected param=value, e.g. solver.lr=0.01");
  }
  Filter f;
  f.path = std::string(text.substr(0, eq));
  while (!f.path.empty() && f.path.back() == ' ') f.path.pop_back();
  if (auto p = json_path(f.path); !p) return std::unexpected(p.error());
  const std::string value(text.substr(eq + 1));
  try {
    f.value = nlohmann::json::parse(value);
  } catch (const nlohmann::json::exception&) {
    f.value = value;  // a bare word such as adam
  }
  return f;
}

Result<std::vector<LeaderboardEntry>> Store::leaderboard(std::int64_t study,
                                                         const LeaderboardQuery& query) {
  auto s = get_study(study);
  if (!s) return std::unexpected(s.error());
  if (!*s) return fail(impl_->path + ": no study with id " + std::to_string(study));
  const Direction direction = query.direction.value_or((*s)->direction);
  const bool objective = query.metric.empty();
  if (query.states.empty()) return fail("leaderboard: no trial states to rank");

  // Binders run in order against positional '?' parameters.
  std::vector<std::function<void(Query&, int)>> binds;
  std::string states = "(";
  for (std::size_t i = 0; i < query.states.size(); ++i) {
    states += i == 0 ? "?" : ", ?";
    const std::string_view name = search::to_string(query.states[i]);
    binds.push_back([name](Query& q, int at) { q.bind(at, name); });
  }
  states += ")";

  std::string sql = std::string("SELECT ") + kTrialColumns + ", ";
  if (objective) {
    sql += "t.value FROM trials t WHERE t.study = ? AND t.state IN " + states +
           " AND t.value IS NOT NULL";
    binds.insert(binds.begin(), [study](Query& q, int at) { q.bind(at, study); });
  } else {
    const bool best = query.aggregate == Aggregate::kBest;
    // MAX(step) with a bare value column takes the value of the last step (SQLite rule).
    const std::string pick = best ? (direction == Direction::kMaximize ? "MAX(m.value) AS score"
                                                                       : "MIN(m.value) AS score")
                                  : "m.value AS score, MAX(m.step)";
    sql += "s.score FROM trials t JOIN (SELECT m.trial AS trial, " + pick +
           " FROM trials t2 JOIN metrics m ON m.trial = t2.id AND m.attempt = t2.attempt AND "
           "m.name = ? WHERE t2.study = ? GROUP BY m.trial) s ON s.trial = t.id WHERE t.state IN " +
           states;
    const std::string metric = query.metric;
    binds.insert(binds.begin(),
                 {[metric](Query& q, int at) { q.bind(at, std::string_view(metric)); },
                  [study](Query& q, int at) { q.bind(at, study); }});
  }
  for (const Filter& f : query.where) {
    auto path = json_path(f.path);
    if (!path) return std::unexpected(path.error());
    const std::string p = *path;
    binds.push_back([p](Query& q, int at) { q.bind(at, std::string_view(p)); });
    if (f.value.is_null()) {
      sql += " AND json_type(t.config, ?) = 'null'";
    } else if (f.value.is_boolean()) {
      sql += " AND json_type(t.config, ?) = ?";
      const std::string_view word = f.value.get<bool>() ? "true" : "false";
      binds.push_back([word](Query& q, int at) { q.bind(at, word); });
    } else if (f.value.is_number_integer()) {
      sql += " AND json_extract(t.config, ?) = ?";
      const auto v = f.value.get<std::int64_t>();
      binds.push_back([v](Query& q, int at) { q.bind(at, v); });
    } else if (f.value.is_number()) {
      sql += " AND json_extract(t.config, ?) = ?";
      const auto v = f.value.get<double>();
      binds.push_back([v](Query& q, int at) { q.bind(at, v); });
    } else if (f.value.is_string()) {
      sql += " AND json_type(t.config, ?) = 'text' AND json_extract(t.config, ?) = ?";
      binds.push_back([p](Query& q, int at) { q.bind(at, std::string_view(p)); });
      const std::string v = f.value.get<std::string>();
      binds.push_back([v](Query& q, int at) { q.bind(at, std::string_view(v)); });
    } else {
      // Objects and arrays compare as minified JSON text (both sides sorted by nlohmann).
      sql += " AND json_extract(t.config, ?) = json(?)";
      const std::string v = f.value.dump();
      binds.push_back([v](Query& q, int at) { q.bind(at, std::string_view(v)); });
    }
  }
  const char* order = direction == Direction::kMaximize ? " DESC" : " ASC";
  sql += std::string(" ORDER BY ") + (objective ? "t.value" : "s.score") + order +
         ", t.number LIMIT ?";
  const auto limit = query.top == 0 ? std::int64_t{-1} : static_cast<std::int64_t>(query.top);
  binds.push_back([limit](Query& q, int at) { q.bind(at, limit); });

  auto q = impl_->prepare(sql);
  if (!q) return std::unexpected(q.error());
  for (std::size_t i = 0; i < binds.size(); ++i) binds[i](*q, static_cast<int>(i + 1));

  std::vector<LeaderboardEntry> out;
  int rc;
  while ((rc = q->step()) == SQLITE_ROW) {
    auto row = read_trial(*impl_, *q);
    if (!row) return std::unexpected(row.error());
    out.push_back(LeaderboardEntry{static_cast<std::int64_t>(out.size()) + 1,
                                   q->f64(kTrialColumnCount), std::move(*row)});
  }
  if (rc != SQLITE_DONE) return std::unexpected(impl_->error("ranking trials"));
  return out;
}

}  // namespace hpo::results
