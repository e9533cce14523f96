// Fuzzes the checkpoint header reader (trainer/nn/checkpoint.h) on the start of a file: magic,
// header length and JSON header. The length must never cost more memory than the file holds.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "trainer/nn/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  auto h = hpo::nn::read_checkpoint_header(in, size, "checkpoint.bin");
  if (h && h->data_offset > size) __builtin_trap();
  return 0;
}
