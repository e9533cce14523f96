// Small helpers shared by the search/ tests.
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "search/sampler.h"
#include "search/space.h"

namespace hpo::search::test {

inline Space space_of(const nlohmann::json& j) {
  auto s = Space::parse(j, "test.json");
  if (!s) FAIL(s.error().message);
  return *s;
}

// The error message of a space that must not parse ("" if it parses).
inline std::string space_error(const nlohmann::json& j) {
  auto s = Space::parse(j, "test.json");
  return s ? std::string() : s.error().message;
}

inline std::unique_ptr<Sampler> sampler_of(const Space& space, const nlohmann::json& options,
                                           std::uint64_t seed = 1,
                                           Direction direction = Direction::kMinimize) {
  auto s = make_sampler(space, options, seed, direction);
  if (!s) FAIL(s.error().message);
  return std::move(*s);
}

inline nlohmann::json ask(Sampler& sampler, const History& history) {
  auto c = sampler.ask(history, static_cast<std::int64_t>(history.size()));
  if (!c) FAIL(c.error().message);
  if (!*c) FAIL("sampler exhausted");
  return **c;
}

// A new temporary file holding `text`, named *.json; the caller removes it.
inline std::string temp_json_file(const std::string& text) {
  char name[] = "/tmp/hpo-search-test-XXXXXX.json";
  int fd = mkstemps(name, 5);
  REQUIRE(fd >= 0);
  close(fd);
  std::ofstream(name) << text;
  return name;
}

inline TrialRecord completed(std::int64_t number, nlohmann::json config, double value) {
  return TrialRecord{number, TrialState::kCompleted, std::move(config), value, {}};
}

}  // namespace hpo::search::test
