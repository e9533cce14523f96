// Fuzzes a study file end to end as `hpo run` and `hpo space sample` read one: the bounded JSON
// reader (comments allowed), parse_study, the sampler it names, then three asks, each told a
// result, so that model-based samplers (TPE, evolution) see a history.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/json.h"
#include "search/sampler.h"
#include "search/study.h"

using namespace hpo::search;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  hpo::JsonLimits limits;
  limits.allow_comments = true;
  auto json = hpo::parse_json(text, "fuzz.json", limits);
  if (!json) return 0;
  auto spec = parse_study(*json, "fuzz.json");
  if (!spec) return 0;
  auto sampler = make_sampler(*spec);
  if (!sampler) return 0;
  History history;
  for (int64_t i = 0; i < 3; ++i) {
    auto config = (*sampler)->ask(history, i);
    if (!config || !*config) break;
    history.push_back(TrialRecord{i, TrialState::kRunning, **config, std::nullopt, {}});
    tell(history, i, TrialState::kCompleted, double(i) * 0.5 - 1.0);
  }
  return 0;
}
