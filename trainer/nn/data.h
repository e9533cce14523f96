// Data sets for the trainer: readers for IDX (MNIST / Fashion-MNIST, gzip or not), CIFAR-10
// binary batches and CSV, and the split into train / validation / test.
// Every reader refuses a corrupt or truncated file with a message that names the file (and the
// header field or line); a header that claims more than the file holds is refused before
// anything is allocated for it, and no file is read past DataLimits::max_file_bytes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "trainer/nn/spec.h"

namespace hpo::nn {

// Examples stored as floats, row-major {n, c, h, w}; labels as class indices (floats, which is
// what SoftmaxXentOp reads).
struct Dataset {
  int64_t n = 0, c = 1, h = 1, w = 1;
  int64_t classes = 0;
  std::vector<float> x;
  std::vector<float> y;
  int64_t example_size() const { return c * h * w; }
};

struct DataLimits {
  // A data file larger than this (after gzip decompression) is refused while it is read: a
  // gzip bomb or a wrong path costs at most this much memory. Fashion-MNIST's largest is 47 MB.
  uint64_t max_file_bytes = 2ull << 30;
};

// IDX: an image file (magic 0x00000803, {n, rows, cols} bytes) and a label file (0x00000801).
// Each path may be gzip-compressed or raw (zlib reads both).
Result<Dataset> read_idx(const std::string& images_path, const std::string& labels_path,
                         const DataLimits& limits = {});

// The same on the (decompressed) bytes of both files; the names start every error message.
Result<Dataset> parse_idx(std::span<const unsigned char> images, const std::string& images_name,
                          std::span<const unsigned char> labels, const std::string& labels_name);

// CIFAR-10 binary: records of 1 label byte + 3072 bytes (3x32x32), one or more files.
Result<Dataset> read_cifar10(const std::vector<std::string>& paths, const DataLimits& limits = {});

// CSV: one example per line, the label (an integer >= 0) first, then the features. A first line
// that does not parse as numbers is a header and skipped. Examples have shape {features, 1, 1}.
Result<Dataset> read_csv(const std::string& path, const DataLimits& limits = {});

// The same on the (decompressed) text of a file; `name` starts every error message.
Result<Dataset> parse_csv(std::string_view text, const std::string& name);

struct Split {
  Dataset train, validation, test;
};

// Reads spec.format from spec.dir:
//   idx:     {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
//   cifar10: data_batch_{1..5}.bin and test_batch.bin (in dir or dir/cifar-10-batches-bin)
//   csv:     train.csv and test.csv
// The validation set is the last spec.validation examples of the training file; train_limit and
// test_limit keep the first examples. normalize: bytes scaled to [0, 1] (idx, cifar10), then all
// three sets standardized with the mean and standard deviation of the training part.
Result<Split> load_data(const DataSpec& spec);

}  // namespace hpo::nn
