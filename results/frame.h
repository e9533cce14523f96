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

// How a terminal table is laid out (the csv and json renderings ignore it).
struct TableOptions {
  int width = 0;              // characters per line; 0 = no limit
  bool wide = false;          // show every column whatever the width: hide nothing
  bool hide_uniform = false;  // hide droppable columns that are empty in every row, or
                              // hold one value in every row (2 rows or more)
  std::size_t max_cell = 28;  // longer cells end in ".."
  std::string show_all = "--wide shows all";  // how the note says to see what was hidden
};

// The columns a table shows and why the others are hidden (indices into
// Frame::columns(), each list in column order).
struct TableLayout {
  std::vector<std::size_t> shown;
  std::vector<std::size_t> same;    // one value in every row (hide_uniform)
  std::vector<std::size_t> empty;   // nothing but null, "", [] or {} in every row (hide_uniform)
  std::vector<std::size_t> narrow;  // hidden to fit options.width
  std::vector<std::size_t> widths;  // display width of every column (shown or not)
  // What the line after the table says, e.g. "same in every row: conv[0].pool=max;
  // hidden to fit 120 columns: agent (--wide shows all)"; empty when nothing is hidden.
  std::string note;
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
  // The table's header of a column: its label, else its name.
  const std::string& header(std::size_t column) const {
    return columns_[column].label.empty() ? columns_[column].name : columns_[column].label;
  }

  // Which columns a table shows. Only droppable columns are ever hidden: first,
  // with hide_uniform, those empty or the same in every row; then, when
  // `width` > 0, others from the right until the table fits, those with a
  // missing cell before those without. `wide` hides none.
  TableLayout layout(const TableOptions& options) const;
  // The table of layout(options), then its note (wrapped to the width) if any.
  void print_table(std::ostream& out, const TableOptions& options) const;
  void print_csv(std::ostream& out) const;
  void print_json(std::ostream& out) const;
  // The rows of print_json: one object per row, columns in frame order, missing cells absent.
  nlohmann::ordered_json to_json() const;

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

// How wide a table may be: $COLUMNS when set to a number, else the width of
// the terminal on stdout, else kDefaultTableWidth (output to a file or pipe).
inline constexpr int kDefaultTableWidth = 120;
int terminal_width();

// The table/csv/json choice of a command; nullopt for an unknown name.
enum class Format { kTable, kCsv, kJson };
std::optional<Format> format_from_string(std::string_view name);

}  // namespace hpo::results
