// Helpers shared by the results/ tests: stores opened or filled through the API, on
// tests/support's temporary directories.
#pragma once

#include <catch2/catch.hpp>
#include <string>

#include "results/store.h"
#include "tests/support/temp_dir.h"

namespace hpo::results::testing {

using test::TempDir;

inline StudyRow study_row(const std::string& name, Direction direction = Direction::kMaximize,
                          const std::string& metric = "val_accuracy") {
  StudyRow s;
  s.name = name;
  s.metric = metric;
  s.direction = direction;
  s.seed = 42;
  s.spec = {
      {"name", name},
      {"objective", {{"metric", metric}, {"direction", std::string(search::to_string(direction))}}},
      {"budget", {{"max_trials", 20}}}};
  s.created = 1000.0;
  return s;
}

inline Store open_writer(const std::string& path) {
  auto store = Store::open(path, OpenMode::kWriter);
  if (!store) FAIL(store.error().message);
  return std::move(*store);
}

inline Store open_reader(const std::string& path) {
  auto store = Store::open(path, OpenMode::kReadOnly);
  if (!store) FAIL(store.error().message);
  return std::move(*store);
}

// Unwraps a Result in a test, failing with its message.
template <class T>
T ok(Result<T> r) {
  if (!r) FAIL(r.error().message);
  return std::move(*r);
}
inline void ok(Status s) {
  if (!s) FAIL(s.error().message);
}

// Adds a COMPLETED trial with `value` as objective and config {"x": x, ...}.
inline std::int64_t completed_trial(Store& store, std::int64_t study, std::int64_t number,
                                    const nlohmann::json& config, double value) {
  // (std::string appends, not "h" + to_string: GCC 12 warns falsely on that under -O2.)
  std::string tag = std::to_string(number);
  auto id = ok(store.add_trial(study, number, config, std::string("h").append(tag), 10.0 + number));
  ok(store.start_trial(id, 1, std::string("lease-").append(tag), "agent-a", "", 20.0 + number));
  ok(store.record_metric(id, 1, "val_accuracy", value / 2, 21.0 + number));
  ok(store.record_metric(id, 2, "val_accuracy", value, 22.0 + number));
  ok(store.finish_trial(id, TrialState::kCompleted, value, "", "done", 30.0 + number));
  return id;
}

}  // namespace hpo::results::testing
