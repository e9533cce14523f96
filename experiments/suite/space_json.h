// Builders of search-space JSON for the suite's problems (problems*.cpp).
#pragma once

#include <nlohmann/json.hpp>
#include <utility>

namespace hpo::suite::space {

inline nlohmann::json real(double low, double high, bool log = false) {
  nlohmann::json j{{"type", "float"}, {"low", low}, {"high", high}};
  if (log) j["log"] = true;
  return j;
}
inline nlohmann::json integer(double low, double high, bool log = false) {
  nlohmann::json j{{"type", "int"}, {"low", low}, {"high", high}};
  if (log) j["log"] = true;
  return j;
}
inline nlohmann::json choice(nlohmann::json values) {
  return nlohmann::json{{"type", "choice"}, {"values", std::move(values)}};
}
// `param` active only when `condition` holds ({"dotted.path": value or [values]}).
inline nlohmann::json when(nlohmann::json param, nlohmann::json condition) {
  param["when"] = std::move(condition);
  return param;
}

}  // namespace hpo::suite::space
