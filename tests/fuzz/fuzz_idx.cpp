// Fuzzes the IDX reader (trainer/nn/data.h) on the bytes of an image file and a label file: the
// first two bytes (little-endian) say how many of the rest are the label file, capped at what
// is there; the remainder is the image file.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include "trainer/nn/data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t label_bytes = std::min<size_t>(size_t(data[0]) | size_t(data[1]) << 8, size - 2);
  std::span<const unsigned char> labels(data + 2, label_bytes);
  std::span<const unsigned char> images(data + 2 + label_bytes, size - 2 - label_bytes);
  auto d = hpo::nn::parse_idx(images, "images", labels, "labels");
  if (d && (d->x.size() != size_t(d->n * d->h * d->w) || d->y.size() != size_t(d->n)))
    __builtin_trap();
  return 0;
}
