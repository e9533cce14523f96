// Data readers (see data.h). zlib's gz* functions read gzip and raw files alike.
#include "trainer/nn/data.h"

#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace hpo::nn {

namespace {

namespace fs = std::filesystem;

// The whole (decompressed) content of a file, or a message naming it. Stops with an error once
// more than `max_bytes` came out, so a gzip bomb costs at most that much memory.
Result<std::vector<unsigned char>> slurp(const std::string& path, uint64_t max_bytes) {
  if (!fs::exists(path)) return fail(path + ": no such file");
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return fail(path + ": cannot open");
  std::unique_ptr<gzFile_s, int (*)(gzFile)> guard(f, gzclose);
  gzbuffer(f, 1 << 18);
  std::vector<unsigned char> out;
  std::vector<unsigned char> chunk(1 << 20);
  for (;;) {
    int got = gzread(f, chunk.data(), unsigned(chunk.size()));
    if (got < 0) {
      int err = 0;
      const char* msg = gzerror(f, &err);
      return fail(path + ": corrupt compressed data (" + (msg ? msg : "zlib error") + ")");
    }
    if (got == 0) break;
    if (out.size() + uint64_t(got) > max_bytes)
      return fail(path + ": larger than " + std::to_string(max_bytes) +
                  " bytes (decompressed), the limit for a data file");
    out.insert(out.end(), chunk.begin(), chunk.begin() + got);
  }
  // gzread stops quietly at a truncated gzip stream; gzerror reports it.
  int err = 0;
  const char* msg = gzerror(f, &err);
  if (err != Z_OK && err != Z_STREAM_END)
    return fail(path + ": corrupt or truncated compressed data (" + (msg ? msg : "") + ")");
  return out;
}

// At most the first 80 characters of a line, for an error message.
std::string excerpt(std::string_view line) {
  return line.size() <= 80 ? std::string(line) : std::string(line.substr(0, 77)) + "...";
}

uint32_t be32(const unsigned char* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

void count_classes(Dataset& d) {
  int64_t mx = -1;
  for (float v : d.y) mx = std::max(mx, int64_t(v));
  d.classes = mx + 1;
}

Dataset take(const Dataset& d, int64_t first, int64_t count) {
  Dataset o = d;
  o.n = count;
  const int64_t e = d.example_size();
  o.x.assign(d.x.begin() + first * e, d.x.begin() + (first + count) * e);
  o.y.assign(d.y.begin() + first, d.y.begin() + first + count);
  return o;
}

std::string pick(const std::string& dir, const std::string& base) {
  std::string gz = dir + "/" + base + ".gz";
  if (fs::exists(gz)) return gz;
  return dir + "/" + base;
}

}  // namespace

Result<Dataset> read_idx(const std::string& images_path, const std::string& labels_path,
                         const DataLimits& limits) {
  auto img = slurp(images_path, limits.max_file_bytes);
  if (!img) return std::unexpected(img.error());
  auto lab = slurp(labels_path, limits.max_file_bytes);
  if (!lab) return std::unexpected(lab.error());
  return parse_idx(*img, images_path, *lab, labels_path);
}

Result<Dataset> parse_idx(std::span<const unsigned char> images, const std::string& images_name,
                          std::span<const unsigned char> labels, const std::string& labels_name) {
  if (images.size() < 16 || be32(images.data()) != 0x00000803)
    return fail(images_name + ": not an IDX image file (bad magic number)");
  if (labels.size() < 8 || be32(labels.data()) != 0x00000801)
    return fail(labels_name + ": not an IDX label file (bad magic number)");
  // Each header field is below 2^32, so rows * cols fits in 64 bits; count * (rows * cols) is
  // compared by division, and nothing is allocated before the file is known to hold it all.
  const uint64_t count = be32(images.data() + 4), rows = be32(images.data() + 8),
                 cols = be32(images.data() + 12);
  if (rows == 0 || cols == 0)
    return fail(images_name + ": header field '" + (rows == 0 ? "rows" : "columns") +
                "' is 0 (corrupt)");
  const uint64_t pixels = rows * cols, body = images.size() - 16;
  const std::string claim = "the header says " + std::to_string(count) + " images of " +
                            std::to_string(rows) + "x" + std::to_string(cols) + " bytes";
  if (pixels > body || count > body / pixels)
    return fail(images_name + ": header field 'count' is more than the file holds (" + claim +
                ", the file has " + std::to_string(body) +
                " bytes after the header): truncated or corrupt");
  if (count * pixels != body)
    return fail(images_name + ": " + std::to_string(body - count * pixels) +
                " bytes beyond the images (" + claim + "): truncated or corrupt");
  const uint64_t nl = be32(labels.data() + 4);
  if (labels.size() - 8 != nl)
    return fail(labels_name + ": header field 'count' says " + std::to_string(nl) +
                " labels, the file has " + std::to_string(labels.size() - 8) +
                " bytes after the header: truncated or corrupt");
  if (nl != count)
    return fail(labels_name + ": " + std::to_string(nl) + " labels for " + std::to_string(count) +
                " images in " + images_name);
  Dataset d;
  d.n = int64_t(count), d.h = int64_t(rows), d.w = int64_t(cols);
  d.x.resize(size_t(body));
  for (size_t i = 0; i < d.x.size(); ++i) d.x[i] = float(images[16 + i]);
  d.y.resize(size_t(count));
  for (size_t i = 0; i < count; ++i) d.y[i] = float(labels[8 + i]);
  count_classes(d);
  return d;
}

Result<Dataset> read_cifar10(const std::vector<std::string>& paths, const DataLimits& limits) {
  constexpr int64_t kRecord = 1 + 3 * 32 * 32;
  Dataset d;
  d.c = 3, d.h = 32, d.w = 32;
  for (const auto& path : paths) {
    auto bytes = slurp(path, limits.max_file_bytes);
    if (!bytes) return std::unexpected(bytes.error());
    if (bytes->empty() || bytes->size() % kRecord != 0)
      return fail(path + ": truncated or corrupt CIFAR-10 batch (" + std::to_string(bytes->size()) +
                  " bytes is not a multiple of 3073)");
    int64_t n = int64_t(bytes->size()) / kRecord;
    for (int64_t i = 0; i < n; ++i) {
      const unsigned char* r = bytes->data() + i * kRecord;
      if (r[0] > 9)
        return fail(path + ": record " + std::to_string(i) + " has label " +
                    std::to_string(int(r[0])) + " (CIFAR-10 labels are 0..9)");
      d.y.push_back(float(r[0]));
      for (int64_t j = 1; j < kRecord; ++j) d.x.push_back(float(r[j]));
    }
    d.n += n;
  }
  d.classes = 10;
  return d;
}

Result<Dataset> read_csv(const std::string& path, const DataLimits& limits) {
  auto bytes = slurp(path, limits.max_file_bytes);
  if (!bytes) return std::unexpected(bytes.error());
  return parse_csv(std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()),
                   path);
}

Result<Dataset> parse_csv(std::string_view text, const std::string& path) {
  std::istringstream in{std::string(text)};
  Dataset d;
  std::string line;
  int64_t lineno = 0, features = -1;
  std::vector<double> row;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    row.clear();
    bool ok = true;
    std::istringstream ls(line);
    std::string cell;
    while (std::getline(ls, cell, ',')) {
      try {
        size_t used = 0;
        double v = std::stod(cell, &used);
        if (cell.find_first_not_of(" \t", used) != std::string::npos) ok = false;
        row.push_back(v);
      } catch (const std::exception&) {
        ok = false;
      }
      if (!ok) break;
    }
    if (!ok) {
      if (lineno == 1 && d.n == 0) continue;  // a header
      return fail(path + ":" + std::to_string(lineno) + ": not a number in '" + excerpt(line) +
                  "'");
    }
    if (row.size() < 2)
      return fail(path + ":" + std::to_string(lineno) + ": expected a label and features");
    if (features < 0) features = int64_t(row.size()) - 1;
    if (int64_t(row.size()) - 1 != features)
      return fail(path + ":" + std::to_string(lineno) + ": " + std::to_string(row.size() - 1) +
                  " features, earlier lines have " + std::to_string(features));
    if (row[0] < 0 || row[0] != std::floor(row[0]) || row[0] > 1e6)
      return fail(path + ":" + std::to_string(lineno) + ": the label must be an integer >= 0");
    d.y.push_back(float(row[0]));
    for (size_t j = 1; j < row.size(); ++j) d.x.push_back(float(row[j]));
    ++d.n;
  }
  if (d.n == 0) return fail(path + ": no examples");
  d.c = features;
  count_classes(d);
  return d;
}

Result<Split> load_data(const DataSpec& spec) {
  Result<Dataset> train, test;
  bool bytes = true;
  if (spec.format == "idx") {
    train = read_idx(pick(spec.dir, "train-images-idx3-ubyte"),
                     pick(spec.dir, "train-labels-idx1-ubyte"));
    if (!train) return std::unexpected(train.error());
    test = read_idx(pick(spec.dir, "t10k-images-idx3-ubyte"),
                    pick(spec.dir, "t10k-labels-idx1-ubyte"));
  } else if (spec.format == "cifar10") {
    std::string dir = spec.dir;
    if (!fs::exists(dir + "/data_batch_1.bin") && fs::exists(dir + "/cifar-10-batches-bin"))
      dir += "/cifar-10-batches-bin";
    std::vector<std::string> files;
    for (int i = 1; i <= 5; ++i) files.push_back(dir + "/data_batch_" + std::to_string(i) + ".bin");
    train = read_cifar10(files);
    if (!train) return std::unexpected(train.error());
    test = read_cifar10({dir + "/test_batch.bin"});
  } else {
    bytes = false;
    train = read_csv(spec.dir + "/train.csv");
    if (!train) return std::unexpected(train.error());
    test = read_csv(spec.dir + "/test.csv");
  }
  if (!test) return std::unexpected(test.error());
  if (test->example_size() != train->example_size())
    return fail(spec.dir + ": test examples have " + std::to_string(test->example_size()) +
                " values, training examples " + std::to_string(train->example_size()));
  const int64_t classes = std::max(train->classes, test->classes);
  if (spec.validation >= train->n)
    return fail("data.validation: " + std::to_string(spec.validation) +
                " leaves no training examples (the training set has " + std::to_string(train->n) +
                ")");
  Split s;
  int64_t n_train = train->n - spec.validation;
  s.validation = take(*train, n_train, spec.validation);
  if (spec.train_limit > 0) n_train = std::min(n_train, spec.train_limit);
  s.train = take(*train, 0, n_train);
  int64_t n_test = spec.test_limit > 0 ? std::min(test->n, spec.test_limit) : test->n;
  s.test = take(*test, 0, n_test);
  for (Dataset* d : {&s.train, &s.validation, &s.test}) d->classes = classes;
  if (spec.normalize) {
    const float scale = bytes ? 1.0f / 255.0f : 1.0f;
    double sum = 0, sq = 0;
    for (float v : s.train.x) sum += v * scale, sq += double(v * scale) * (v * scale);
    const double cnt = double(s.train.x.size());
    const double mean = sum / cnt;
    const double sd = std::sqrt(std::max(1e-12, sq / cnt - mean * mean));
    const float a = float(scale / sd), b = float(-mean / sd);
    for (Dataset* d : {&s.train, &s.validation, &s.test})
      for (float& v : d->x) v = v * a + b;
  }
  return s;
}

}  // namespace hpo::nn
