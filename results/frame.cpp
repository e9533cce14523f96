#include "results/frame.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ostream>

namespace hpo::results {
namespace {

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// Cuts at `max` characters, keeping whole UTF-8 sequences, ending in "..".
std::string clip(const std::string& text, std::size_t max) {
  std::string one_line = text;
  std::replace(one_line.begin(), one_line.end(), '\n', ' ');
  if (one_line.size() <= max || max < 3) return one_line;
  std::size_t cut = max - 2;
  while (cut > 0 && (static_cast<unsigned char>(one_line[cut]) & 0xC0) == 0x80) --cut;
  return one_line.substr(0, cut) + "..";
}

// Display width: UTF-8 continuation bytes take no column.
std::size_t width_of(const std::string& text) {
  std::size_t n = 0;
  for (char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// Nothing to show: null, "", [] or {}.
bool is_blank(const nlohmann::json& v) {
  return v.is_null() || ((v.is_string() || v.is_array() || v.is_object()) && v.empty());
}

// `text` broken at spaces into lines of at most `width` characters (0 = one
// line); continuation lines are indented by two. A word longer than a line
// stays whole.
std::string wrap(const std::string& text, int width) {
  if (width <= 0 || width_of(text) <= static_cast<std::size_t>(width)) return text + "\n";
  const auto limit = static_cast<std::size_t>(width);
  std::string out, line;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line != "  " && width_of(line) + 1 + width_of(word) > limit) {
      out += line + "\n";
      line = "  ";
    }
    line += (line.empty() || line == "  " ? "" : " ") + word;
  }
  return out + line + "\n";
}

}  // namespace

std::size_t Frame::add(std::string name, bool droppable, bool right_align) {
  columns_.push_back(
      FrameColumn{std::move(name), std::vector<nlohmann::json>(rows_), "", droppable, right_align});
  return columns_.size() - 1;
}

std::size_t Frame::column(const std::string& name, bool droppable, bool right_align) {
  for (std::size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i].name == name) return i;
  }
  return add(name, droppable, right_align);
}

void Frame::set(std::size_t column, std::size_t row, nlohmann::json value) {
  columns_[column].cells[row] = std::move(value);
}

TableLayout Frame::layout(const TableOptions& options) const {
  const std::size_t n = columns_.size();
  const std::size_t max_cell = std::max<std::size_t>(options.max_cell, 3);
  TableLayout l;
  l.widths.resize(n);
  std::vector<bool> shown(n, true);
  for (std::size_t c = 0; c < n; ++c) {
    const FrameColumn& col = columns_[c];
    std::size_t w = width_of(header(c));
    bool empty = true, same = rows_ >= 2;
    for (std::size_t r = 0; r < rows_; ++r) {
      w = std::max(w, width_of(clip(cell_text(col.cells[r]), max_cell)));
      empty = empty && is_blank(col.cells[r]);
      same = same && !col.cells[r].is_null() && col.cells[r] == col.cells[0];
    }
    l.widths[c] = std::min(w, max_cell);
    if (options.wide || !options.hide_uniform || !col.droppable) continue;
    if (empty) {
      l.empty.push_back(c);
      shown[c] = false;
    } else if (same) {
      l.same.push_back(c);
      shown[c] = false;
    }
  }
  auto total = [&] {
    std::size_t sum = 0, count = 0;
    for (std::size_t c = 0; c < n; ++c) {
      if (shown[c]) sum += l.widths[c], ++count;
    }
    return sum + (count > 0 ? 2 * (count - 1) : 0);
  };
  if (options.width > 0 && !options.wide) {
    // From the right; first the columns with gaps (a parameter of one option of
    // a choice), which say less about the ranking than those every row has.
    auto gaps = [&](std::size_t c) {
      const auto& cells = columns_[c].cells;
      return std::any_of(cells.begin(), cells.end(), [](const auto& v) { return v.is_null(); });
    };
    for (int pass = 0; pass < 2; ++pass) {
      for (std::size_t c = n; c-- > 0 && total() > static_cast<std::size_t>(options.width);) {
        if (shown[c] && columns_[c].droppable && (pass == 1 || gaps(c))) {
          shown[c] = false;
          l.narrow.push_back(c);
        }
      }
    }
    std::sort(l.narrow.begin(), l.narrow.end());
  }
  for (std::size_t c = 0; c < n; ++c) {
    if (shown[c]) l.shown.push_back(c);
  }

  std::vector<std::string> parts;
  auto list = [&](const std::vector<std::size_t>& columns, bool with_value) {
    std::string text;
    for (std::size_t c : columns) {
      text += (text.empty() ? "" : ", ") + header(c);
      if (with_value) text += "=" + clip(cell_text(columns_[c].cells[0]), max_cell);
    }
    return text;
  };
  if (!l.same.empty()) parts.push_back("same in every row: " + list(l.same, true));
  if (!l.empty.empty()) parts.push_back("empty in every row: " + list(l.empty, false));
  if (!l.narrow.empty()) {
    parts.push_back("hidden to fit " + std::to_string(options.width) +
                    " columns: " + list(l.narrow, false));
  }
  for (const auto& part : parts) l.note += (l.note.empty() ? "" : "; ") + part;
  if (!l.note.empty() && !options.show_all.empty()) l.note += " (" + options.show_all + ")";
  return l;
}

void Frame::print_table(std::ostream& out, const TableOptions& options) const {
  const TableLayout l = layout(options);
  const std::size_t max_cell = std::max<std::size_t>(options.max_cell, 3);
  auto row_line = [&](auto&& cell_of) {
    std::string line;
    bool first = true;
    for (std::size_t c : l.shown) {
      if (!first) line += "  ";
      first = false;
      const std::string s = cell_of(c);
      const std::string pad(l.widths[c] - std::min(l.widths[c], width_of(s)), ' ');
      line += columns_[c].right_align ? pad + s : s + pad;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  };
  row_line([&](std::size_t c) { return clip(header(c), l.widths[c]); });
  for (std::size_t r = 0; r < rows_; ++r) {
    row_line([&](std::size_t c) { return clip(cell_text(columns_[c].cells[r]), max_cell); });
  }
  if (!l.note.empty()) out << wrap(l.note, options.wide ? 0 : options.width);
}

void Frame::print_csv(std::ostream& out) const {
  for (std::size_t c = 0; c < columns_.size(); ++c) {
    out << (c > 0 ? "," : "") << csv_field(columns_[c].name);
  }
  out << "\n";
  for (std::size_t r = 0; r < rows_; ++r) {
    for (std::size_t c = 0; c < columns_.size(); ++c) {
      const auto& v = columns_[c].cells[r];
      std::string text;
      if (v.is_number_float()) {
        text = v.dump();  // shortest text that reads back exactly, for analysis
        if (text == "null") text = "";
      } else {
        text = cell_text(v);
      }
      out << (c > 0 ? "," : "") << csv_field(text);
    }
    out << "\n";
  }
}

nlohmann::ordered_json Frame::to_json() const {
  // Ordered objects keep the columns in frame order (pandas keeps it too).
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (std::size_t r = 0; r < rows_; ++r) {
    nlohmann::ordered_json row = nlohmann::ordered_json::object();
    for (const auto& c : columns_) {
      if (!c.cells[r].is_null()) row[c.name] = nlohmann::ordered_json(c.cells[r]);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

void Frame::print_json(std::ostream& out) const {
  // Invalid UTF-8 in a stored log tail must not abort the output.
  out << to_json().dump(1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

void flatten(const nlohmann::json& value, const std::string& prefix,
             std::vector<std::pair<std::string, nlohmann::json>>& out) {
  if (value.is_object() && !value.empty()) {
    for (const auto& [key, child] : value.items()) {
      flatten(child, prefix.empty() ? key : prefix + "." + key, out);
    }
  } else if (value.is_array() && !value.empty()) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      flatten(value[i], prefix + "[" + std::to_string(i) + "]", out);
    }
  } else {
    out.emplace_back(prefix, value);
  }
}

std::string cell_text(const nlohmann::json& value) {
  if (value.is_null()) return "";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (value.is_number_integer()) return value.dump();
  if (value.is_number()) {
    const double v = value.get<double>();
    if (std::isnan(v)) return "nan";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
  }
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string duration_text(std::optional<double> seconds) {
  if (!seconds || !std::isfinite(*seconds) || *seconds < 0) return "";
  const double s = *seconds;
  char buf[32];
  if (s < 1.0) {
    std::snprintf(buf, sizeof buf, "%.0fms", s * 1000.0);
  } else if (s < 60.0) {
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  } else if (s < 3600.0) {
    const auto whole = static_cast<long>(s);
    std::snprintf(buf, sizeof buf, "%ldm%02lds", whole / 60, whole % 60);
  } else {
    const auto minutes = static_cast<long>(s / 60.0);
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", minutes / 60, minutes % 60);
  }
  return buf;
}

int terminal_width() {
  // $COLUMNS first: the user's own choice, e.g. `COLUMNS=200 hpo leaderboard | less`.
  if (const char* columns = std::getenv("COLUMNS")) {
    const int n = std::atoi(columns);
    if (n > 0) return n;
  }
  winsize ws{};
  if (::isatty(STDOUT_FILENO) && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
    return ws.ws_col;
  }
  return kDefaultTableWidth;
}

std::optional<Format> format_from_string(std::string_view name) {
  if (name == "table") return Format::kTable;
  if (name == "csv") return Format::kCsv;
  if (name == "json") return Format::kJson;
  return std::nullopt;
}

}  // namespace hpo::results
