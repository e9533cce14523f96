// Fuzzes the CSV reader (trainer/nn/data.h) on the text of one file. A dataset it accepts has
// one label per example and `c` features for each.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "trainer/nn/data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto d = hpo::nn::parse_csv(text, "fuzz.csv");
  if (d && (d->y.size() != size_t(d->n) || d->x.size() != size_t(d->n * d->c))) __builtin_trap();
  return 0;
}
