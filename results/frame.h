// A small column-oriented table of JSON cells (a "frame") and its three
// renderings: a terminal table, CSV and a JSON array of flat objects. The
// query commands build one frame and print it in the format asked, so
// --format table|csv|json always show the same columns.
//
// CSV and JSON are made for pandas: pd.read_csv / pd.read_json load them
// with one column per frame column (missing values are empty / absent).
#pragma once

#include <cstddef>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hpo::results {

struct FrameColumn {
  std::string name;
  std::vector<nlohmann::json> cells;  // null = missing
  std::string label;                  // the table's header when set (csv/json use name)
  bool droppable = false;             // a table may hide it when the terminal is narrow
  bool right_align = false;           // numbers
};

class Frame {
 public:
  explicit Frame(std::size_t rows) : rows_(rows) {}

  std::size_t rows() const { return rows_; }
  const std::vector<FrameColumn>& columns() const { return columns_; }

  // Adds a column (cells default to null) and returns its index.
  std::size_t add(std::string name, bool droppable = false, bool right_align = false);
  // The column named `name`, added at the end (droppable) if missing.
  std::size_t column(const std::string& name, bool droppable, bool right_align);
  void set(std::size_t column, std::size_t row, nlohmann::json value);
  void set_label(std::size_t column, std::string label) {
    columns_[column].label = std::move(label);
  }

  // Table: every column is at most `max_cell` characters (longer cells end in
  // "..") and, when `width` > 0, droppable columns are hidden, those that
  // hold one value in every row first, until the table fits; a last line
  // says what was hidden.
  void print_table(std::ostream& out, int width, std::size_t max_cell = 28) const;
  void print_csv(std::ostream& out) const;
  void print_json(std::ostream& out) const;

 private:
  std::size_t rows_;
  std::vector<FrameColumn> columns_;
};

// Leaves of a JSON value under dotted paths, lists as [i]:
// {"a": {"b": [1, {"c": 2}]}} -> ("a.b[0]", 1), ("a.b[1].c", 2).
// Empty objects and lists are leaves themselves.
void flatten(const nlohmann::json& value, const std::string& prefix,
             std::vector<std::pair<std::string, nlohmann::json>>& out);

// Text of a cell: strings bare, numbers short (%.6g, integers exact),
// booleans true/false, null empty, objects and lists as compact JSON.
std::string cell_text(const nlohmann::json& value);

// "850ms", "42.1s", "3m05s", "2h01m"; empty when unknown.
std::string duration_text(std::optional<double> seconds);

// Columns of the terminal on stdout; $COLUMNS when stdout is not one;
// 0 (no limit) when neither is known.
int terminal_width();

// The table/csv/json choice of a command; nullopt for an unknown name.
enum class Format { kTable, kCsv, kJson };
std::optional<Format> format_from_string(std::string_view name);

}  // namespace hpo::results
