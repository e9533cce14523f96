// Data readers on small files written here (raw and gzip), and one bad file per reader.
#include <zlib.h>

#include <fstream>

#include "tests/trainer/nn/nn_test_util.h"
#include "trainer/nn/data.h"

namespace hpo::nn::test {
namespace {

void put_be32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(char((v >> (8 * i)) & 0xff));
}

void write_file(const std::string& path, const std::string& bytes, bool gz) {
  if (gz) {
    gzFile f = gzopen(path.c_str(), "wb");
    REQUIRE(f);
    REQUIRE(gzwrite(f, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
    gzclose(f);
  } else {
    std::ofstream(path, std::ios::binary) << bytes;
  }
}

// n images of r x c, pixel (i, k) = (i * 7 + k) % 256, label i % 3.
std::string idx_images(uint32_t n, uint32_t r, uint32_t c) {
  std::string s;
  put_be32(s, 0x803), put_be32(s, n), put_be32(s, r), put_be32(s, c);
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t k = 0; k < r * c; ++k) s.push_back(char((i * 7 + k) % 256));
  return s;
}
std::string idx_labels(uint32_t n) {
  std::string s;
  put_be32(s, 0x801), put_be32(s, n);
  for (uint32_t i = 0; i < n; ++i) s.push_back(char(i % 3));
  return s;
}

TEST_CASE("IDX files are read alike whether gzip-compressed or raw", "[nn][data]") {
  TempDir dir;
  for (bool gz : {false, true}) {
    std::string img = dir / (gz ? "i.gz" : "i"), lab = dir / (gz ? "l.gz" : "l");
    write_file(img, idx_images(5, 2, 3), gz);
    write_file(lab, idx_labels(5), gz);
    auto d = read_idx(img, lab);
    REQUIRE(d.has_value());
    REQUIRE(d->n == 5);
    REQUIRE(d->h == 2);
    REQUIRE(d->w == 3);
    REQUIRE(d->classes == 3);
    REQUIRE(d->x[size_t(4 * 6 + 5)] == float((4 * 7 + 5) % 256));
    REQUIRE(d->y[4] == 1.0f);
  }
}

TEST_CASE("a truncated or corrupt IDX file is refused naming the file", "[nn][data]") {
  TempDir dir;
  std::string good_lab = dir / "l";
  write_file(good_lab, idx_labels(5), false);
  std::string img = idx_images(5, 2, 3);
  write_file(dir / "short", img.substr(0, img.size() - 4), false);
  auto r = read_idx(dir / "short", good_lab);
  REQUIRE_FALSE(r.has_value());
  REQUIRE(r.error().message.starts_with(dir / "short"));
  REQUIRE(r.error().message.find("truncated") != std::string::npos);

  write_file(dir / "magic", "\x00\x00\x08\x01" + img.substr(4), false);
  r = read_idx(dir / "magic", good_lab);
  REQUIRE_FALSE(r.has_value());
  REQUIRE(r.error().message == dir / "magic" + ": not an IDX image file (bad magic number)");

  // A gzip stream cut in the middle.
  write_file(dir / "full.gz", idx_images(200, 8, 8), true);
  std::ifstream in(dir / "full.gz", std::ios::binary);
  std::string gz((std::istreambuf_iterator<char>(in)), {});
  write_file(dir / "cut.gz", gz.substr(0, gz.size() / 2), false);
  r = read_idx(dir / "cut.gz", good_lab);
  REQUIRE_FALSE(r.has_value());
  REQUIRE(r.error().message.starts_with(dir / "cut.gz"));
  REQUIRE_FALSE(read_idx(dir / "missing", good_lab).has_value());
}

TEST_CASE("an IDX header that claims more images than the file holds is refused naming the field",
          "[nn][data]") {
  TempDir dir;
  std::string lab = idx_labels(4);
  write_file(dir / "l", lab, false);
  // 4 images of 2^31 x 2^31 bytes: 2^64, which wrapped to 0 and matched the empty body; the
  // reader then returned 4 images with no pixels.
  std::string img;
  put_be32(img, 0x803), put_be32(img, 4), put_be32(img, 0x80000000u), put_be32(img, 0x80000000u);
  write_file(dir / "wrap", img, false);
  auto r = read_idx(dir / "wrap", dir / "l");
  REQUIRE_FALSE(r.has_value());
  REQUIRE(r.error().message.starts_with(dir / "wrap" +
                                        ": header field 'count' is more than the file holds"));
  // 2^32 - 1 images of 28 x 28 in a file of one image.
  img.clear();
  put_be32(img, 0x803), put_be32(img, 0xffffffffu), put_be32(img, 28), put_be32(img, 28);
  img += std::string(784, '\0');
  write_file(dir / "count", img, false);
  r = read_idx(dir / "count", dir / "l");
  REQUIRE_FALSE(r.has_value());
  REQUIRE(r.error().message ==
          dir / "count" +
              ": header field 'count' is more than the file holds (the header says 4294967295 "
              "images of 28x28 bytes, the file has 784 bytes after the header): truncated or "
              "corrupt");
  // Rows and columns of 2^32 - 1: their product overflowed a signed 64-bit integer.
  img.clear();
  put_be32(img, 0x803), put_be32(img, 1), put_be32(img, 0xffffffffu), put_be32(img, 0xffffffffu);
  write_file(dir / "rows", img, false);
  r = read_idx(dir / "rows", dir / "l");
  REQUIRE_FALSE(r.has_value());
  REQUIRE(r.error().message.starts_with(dir / "rows" + ": header field 'count'"));
}

TEST_CASE("a data file over DataLimits::max_file_bytes is refused while it is decompressed",
          "[nn][data]") {
  TempDir dir;
  write_file(dir / "i.gz", idx_images(100, 28, 28), true);  // 78,416 bytes decompressed
  write_file(dir / "l", idx_labels(100), false);
  auto r = read_idx(dir / "i.gz", dir / "l", DataLimits{.max_file_bytes = 10000});
  REQUIRE_FALSE(r.has_value());
  REQUIRE(r.error().message ==
          dir / "i.gz" + ": larger than 10000 bytes (decompressed), the limit for a data file");
  REQUIRE(read_idx(dir / "i.gz", dir / "l", DataLimits{.max_file_bytes = 78416}).has_value());
}

TEST_CASE("CIFAR-10 batches are read as 3x32x32 with labels, and a cut batch is refused",
          "[nn][data]") {
  TempDir dir;
  std::string rec;
  for (int i = 0; i < 2; ++i) {
    rec.push_back(char(i == 0 ? 7 : 2));
    for (int k = 0; k < 3072; ++k) rec.push_back(char((k + i) % 251));
  }
  write_file(dir / "b.bin", rec, false);
  auto d = read_cifar10({dir / "b.bin"});
  REQUIRE(d.has_value());
  REQUIRE(d->n == 2);
  REQUIRE(d->c == 3);
  REQUIRE(d->y == std::vector<float>{7, 2});
  REQUIRE(d->x[3072 + 10] == float((10 + 1) % 251));
  write_file(dir / "cut.bin", rec.substr(0, 4000), false);
  auto bad = read_cifar10({dir / "cut.bin"});
  REQUIRE_FALSE(bad.has_value());
  REQUIRE(bad.error().message.starts_with(dir / "cut.bin"));
}

TEST_CASE(
    "CSV rows give a label and features, a header is skipped, a bad row is refused "
    "with its line",
    "[nn][data]") {
  TempDir dir;
  write_file(dir / "a.csv", "label,f1,f2\n1,0.5,2\n0,1.5,-1\n\n2,3,4\n", false);
  auto d = read_csv(dir / "a.csv");
  REQUIRE(d.has_value());
  REQUIRE(d->n == 3);
  REQUIRE(d->c == 2);
  REQUIRE(d->classes == 3);
  REQUIRE(d->x == std::vector<float>{0.5f, 2, 1.5f, -1, 3, 4});
  write_file(dir / "b.csv", "1,0.5,2\n0,x,-1\n", false);
  auto bad = read_csv(dir / "b.csv");
  REQUIRE_FALSE(bad.has_value());
  REQUIRE(bad.error().message.starts_with(dir / "b.csv" + ":2:"));
  write_file(dir / "c.csv", "1,0.5,2\n0,1\n", false);
  REQUIRE_FALSE(read_csv(dir / "c.csv").has_value());
}

TEST_CASE("a CSV error quotes at most 80 characters of a long bad line", "[nn][data]") {
  auto bad = parse_csv("1,2\n0," + std::string(100000, 'x') + "\n", "big.csv");
  REQUIRE_FALSE(bad.has_value());
  REQUIRE(bad.error().message == "big.csv:2: not a number in '0," + std::string(75, 'x') + "...'");
  // A number out of a double's range is not a number, not an exception.
  bad = parse_csv("1,2\n0,1e99999\n", "big.csv");
  REQUIRE_FALSE(bad.has_value());
  REQUIRE(bad.error().message == "big.csv:2: not a number in '0,1e99999'");
}

TEST_CASE("load_data splits validation from the end of train, limits, and standardizes",
          "[nn][data]") {
  TempDir dir;
  write_file(dir / "train.csv", "0,1\n1,2\n0,3\n1,4\n0,5\n1,6\n", false);
  write_file(dir / "test.csv", "0,10\n1,20\n", false);
  DataSpec spec;
  spec.dir = dir.path.string();
  spec.format = "csv";
  spec.validation = 2;
  spec.train_limit = 3;
  spec.test_limit = 1;
  auto s = load_data(spec);
  REQUIRE(s.has_value());
  REQUIRE(s->train.n == 3);
  REQUIRE(s->validation.n == 2);
  REQUIRE(s->test.n == 1);
  // Train values 1, 2, 3: mean 2, sd sqrt(2/3).
  const double sd = std::sqrt(2.0 / 3.0);
  REQUIRE(s->train.x[0] == Approx(-1 / sd));
  REQUIRE(s->validation.x[0] == Approx((5 - 2) / sd));
  REQUIRE(s->test.x[0] == Approx((10 - 2) / sd));
  spec.validation = 6;
  REQUIRE_FALSE(load_data(spec).has_value());
}

}  // namespace
}  // namespace hpo::nn::test
