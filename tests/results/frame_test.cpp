// Frame's terminal table: which columns it shows, which it hides and why.
#include "results/frame.h"

#include <catch2/catch.hpp>
#include <sstream>
#include <string>
#include <vector>

using namespace hpo::results;
using nlohmann::json;

namespace {

// A leaderboard-like frame of three rows: fixed rank/trial/objective columns,
// then droppable parameters: lr varies, pool is "max" everywhere, dense is []
// or missing, batch is 64 in two rows and missing in the third.
struct Board {
  Frame frame{3};
  std::size_t rank, trial, objective, lr, pool, dense, batch;
  Board() {
    rank = frame.add("rank", false, true);
    trial = frame.add("trial", false, true);
    objective = frame.add("val_accuracy", false, true);
    lr = frame.add("solver.lr", true, true);
    pool = frame.add("net.conv[0].pool", true);
    frame.set_label(pool, "conv[0].pool");
    dense = frame.add("net.dense", true);
    batch = frame.add("solver.batch_size", true, true);
    for (std::size_t r = 0; r < 3; ++r) {
      frame.set(rank, r, r + 1);
      frame.set(trial, r, 10 - r);
      frame.set(objective, r, 0.9 - 0.1 * static_cast<double>(r));
      frame.set(lr, r, 0.01 * static_cast<double>(r + 1));
      frame.set(pool, r, "max");
      if (r != 1) frame.set(dense, r, json::array());
      if (r != 2) frame.set(batch, r, 64);
    }
  }
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) out.push_back(line);
  return out;
}

TableOptions uniform(int width = 0) {
  TableOptions o;
  o.width = width;
  o.hide_uniform = true;
  return o;
}

using Columns = std::vector<std::size_t>;

}  // namespace

TEST_CASE("a table hides a column with one value in every row and names the value") {
  Board b;
  auto l = b.frame.layout(uniform());
  CHECK(l.same == Columns{b.pool});
  CHECK(l.shown == Columns{b.rank, b.trial, b.objective, b.lr, b.batch});
  CHECK(l.note ==
        "same in every row: conv[0].pool=max; empty in every row: net.dense "
        "(--wide shows all)");
  std::ostringstream out;
  b.frame.print_table(out, uniform());
  auto text = lines_of(out.str());
  REQUIRE(text.size() == 5);  // header, 3 rows, note
  CHECK(text[0].find("conv[0].pool") == std::string::npos);
  CHECK(text[1].find("max") == std::string::npos);
  CHECK(text[4] == l.note);
}

TEST_CASE("a table hides a column that is empty or [] in every row") {
  Board b;
  auto l = b.frame.layout(uniform());
  CHECK(l.empty == Columns{b.dense});
  // Present in some rows only: neither empty nor the same everywhere.
  CHECK(std::find(l.shown.begin(), l.shown.end(), b.batch) != l.shown.end());
}

TEST_CASE("fixed columns stay even when they are the same in every row") {
  Frame f(2);
  const auto rank = f.add("rank", false, true);
  const auto state = f.add("state", true);
  for (std::size_t r = 0; r < 2; ++r) {
    f.set(rank, r, 1);  // not droppable: shown whatever it holds
    f.set(state, r, "COMPLETED");
  }
  auto l = f.layout(uniform());
  CHECK(l.shown == Columns{rank});
  CHECK(l.same == Columns{state});
  CHECK(l.note == "same in every row: state=COMPLETED (--wide shows all)");
}

TEST_CASE("one row is not 'the same in every row'") {
  Frame f(1);
  const auto lr = f.add("lr", true);
  const auto dense = f.add("dense", true);
  f.set(lr, 0, 0.1);
  f.set(dense, 0, json::array());
  auto l = f.layout(uniform());
  CHECK(l.shown == Columns{lr});
  CHECK(l.same.empty());
  CHECK(l.empty == Columns{dense});
}

TEST_CASE("a table fits its width by hiding droppable columns from the right") {
  Board b;
  // rank(4) trial(5) val_accuracy(12) solver.lr(9) solver.batch_size(17) with 2-space gaps.
  const int full = 4 + 5 + 12 + 9 + 17 + 2 * 4;
  auto fits = b.frame.layout(uniform(full));
  CHECK(fits.narrow.empty());
  auto l = b.frame.layout(uniform(full - 1));
  CHECK(l.narrow == Columns{b.batch});
  CHECK(l.shown == Columns{b.rank, b.trial, b.objective, b.lr});
  CHECK(l.note.find("hidden to fit " + std::to_string(full - 1) + " columns: solver.batch_size") !=
        std::string::npos);
  // Down to the fixed columns' own width (4 + 5 + 12 + 2 gaps = 25), every line fits,
  // the note too (it wraps).
  for (int width : {full - 1, 30, 25}) {
    std::ostringstream out;
    b.frame.print_table(out, uniform(width));
    INFO("width " << width << "\n" << out.str());
    auto text = lines_of(out.str());
    CHECK(text.size() >= 5);
    for (const auto& line : text) CHECK(line.size() <= static_cast<std::size_t>(width));
  }
  // Only droppable columns go: at a tiny width the fixed three remain.
  auto tiny = b.frame.layout(uniform(5));
  CHECK(tiny.shown == Columns{b.rank, b.trial, b.objective});
}

TEST_CASE("to fit, a column with gaps goes before a full one further right") {
  Board b;
  // Without batch (which misses a row) the table still does not fit 30: lr goes too.
  auto l = b.frame.layout(uniform(30));
  CHECK(l.narrow == Columns{b.lr, b.batch});
  // Room for one of them: the full column lr stays, although batch is further right.
  const int with_lr = 4 + 5 + 12 + 9 + 2 * 3;
  l = b.frame.layout(uniform(with_lr));
  CHECK(l.narrow == Columns{b.batch});
  Frame f(2);
  const auto full = f.add("full", true);
  const auto gap = f.add("gap", true);
  const auto right = f.add("right", true);
  for (std::size_t r = 0; r < 2; ++r) {
    f.set(full, r, r);
    f.set(right, r, r);
  }
  f.set(gap, 0, 1);
  // "full  gap  right" is 16 wide; at 11 one column goes: the one with a gap.
  l = f.layout(uniform(11));
  CHECK(l.narrow == Columns{gap});
  CHECK(l.shown == Columns{full, right});
}

TEST_CASE("a wide table shows every column whatever the width") {
  Board b;
  TableOptions o = uniform(20);
  o.wide = true;
  auto l = b.frame.layout(o);
  CHECK(l.shown.size() == b.frame.columns().size());
  CHECK(l.same.empty());
  CHECK(l.empty.empty());
  CHECK(l.narrow.empty());
  CHECK(l.note.empty());
  std::ostringstream out;
  b.frame.print_table(out, o);
  CHECK(lines_of(out.str()).size() == 4);  // header and 3 rows, no note
  CHECK(out.str().find("conv[0].pool") != std::string::npos);
}

TEST_CASE("without hide_uniform a table keeps columns that are the same in every row") {
  Board b;
  auto l = b.frame.layout(TableOptions{});
  CHECK(l.shown.size() == b.frame.columns().size());
  CHECK(l.note.empty());
}
