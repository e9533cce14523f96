// base/pack.h and base/sha256.h: a checkpoint directory packed, hashed and unpacked.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "base/pack.h"
#include "base/sha256.h"
#include "tests/support/temp_dir.h"

namespace hpo {
namespace {

namespace fs = std::filesystem;
using test::read_text;
using test::TempDir;
using test::write_text;

TEST_CASE("sha256 gives the published digests, whole or in pieces", "[base][pack]") {
  // FIPS 180-2 examples.
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.update("a");
  h.update("bc");
  CHECK(h.hex() == sha256_hex("abc"));
  CHECK(is_sha256_hex(sha256_hex("x")));
  CHECK_FALSE(is_sha256_hex("ABC"));
  CHECK_FALSE(is_sha256_hex(std::string(64, 'g')));
}

TEST_CASE("a directory packs into one file and unpacks to the same files and modes",
          "[base][pack]") {
  TempDir dir("pack");
  const fs::path src = dir.path / "ckpt";
  fs::create_directories(src / "opt" / "empty");
  write_text(src / "model.bin", std::string("\0\1\2binary\xff", 10));
  write_text(src / "opt" / "state.json", "{\"epoch\": 3}");
  write_text(src / "zero", "");
  std::string big(300000, 'x');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7919 % 251);
  write_text(src / "opt" / "big", big);
  ::chmod((src / "model.bin").c_str(), 0640);

  auto info = pack_directory(src, dir.path / "ckpt.pack");
  REQUIRE(info);
  CHECK(info->files == 4);
  CHECK(info->bytes == fs::file_size(dir.path / "ckpt.pack"));
  auto hashed = sha256_file(dir.path / "ckpt.pack");
  REQUIRE(hashed);
  CHECK(*hashed == info->sha256);
  // The same directory packs to the same bytes (sorted entries): a resumed upload can compare.
  auto again = pack_directory(src, dir.path / "again.pack");
  REQUIRE(again);
  CHECK(again->sha256 == info->sha256);

  const fs::path out = dir.path / "out";
  REQUIRE(unpack_directory(dir.path / "ckpt.pack", out));
  CHECK(read_text(out / "model.bin") == read_text(src / "model.bin"));
  CHECK(read_text(out / "opt" / "state.json") == "{\"epoch\": 3}");
  CHECK(read_text(out / "opt" / "big") == big);
  CHECK(fs::is_regular_file(out / "zero"));
  CHECK(fs::file_size(out / "zero") == 0);
  CHECK(fs::is_directory(out / "opt" / "empty"));
  // Owner bits kept; group and others dropped (a checkpoint may hold secrets).
  CHECK((fs::status(out / "model.bin").permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
  // A second unpack into the same place is refused: it never mixes two checkpoints.
  auto twice = unpack_directory(dir.path / "ckpt.pack", out);
  REQUIRE_FALSE(twice);
  CHECK(twice.error().message.find("exists already") != std::string::npos);
}

TEST_CASE("packing refuses a symbolic link, naming it", "[base][pack]") {
  TempDir dir("pack");
  fs::create_directories(dir.path / "ckpt");
  write_text(dir.path / "ckpt" / "a", "1");
  fs::create_symlink("/etc/passwd", dir.path / "ckpt" / "link");
  auto info = pack_directory(dir.path / "ckpt", dir.path / "p");
  REQUIRE_FALSE(info);
  CHECK(info.error().message.find("ckpt/link") != std::string::npos);
  CHECK(info.error().message.find("symbolic link") != std::string::npos);
}

// A pack written by hand: magic, then the given raw entry bytes.
std::string raw_pack(const std::string& entries) { return std::string("HPOPACK1") + entries; }

std::string file_entry(const std::string& path, const std::string& bytes,
                       std::uint64_t announced = UINT64_MAX) {
  std::string e;
  e += '\2';
  e += static_cast<char>(path.size() & 0xff);
  e += static_cast<char>(path.size() >> 8);
  e += path;
  e += std::string("\x80\x01\0\0", 4);  // mode 0600
  const std::uint64_t size = announced == UINT64_MAX ? bytes.size() : announced;
  for (int i = 0; i < 8; ++i) e += static_cast<char>((size >> (8 * i)) & 0xff);
  return e + bytes;
}

TEST_CASE("unpacking refuses what could leave its directory or is cut short, and leaves nothing",
          "[base][pack]") {
  TempDir dir("pack");
  const std::string end(1, '\0');
  struct Case {
    std::string name, bytes, says;
  };
  const std::vector<Case> cases = {
      {"dotdot", raw_pack(file_entry("../escape", "x") + end), "would leave the directory"},
      {"absolute", raw_pack(file_entry("/tmp/escape", "x") + end), "would leave the directory"},
      {"inner dotdot", raw_pack(file_entry("a/../../b", "x") + end), "would leave the directory"},
      {"empty part", raw_pack(file_entry("a//b", "x") + end), "would leave the directory"},
      {"twice", raw_pack(file_entry("a", "x") + file_entry("a", "y") + end), "twice"},
      {"short", raw_pack(file_entry("a", "xy", 10) + end), "ends early"},
      {"no end", raw_pack(file_entry("a", "x")), "before its end marker"},
      {"trailing", raw_pack(file_entry("a", "x") + end + "junk"), "after the end marker"},
      {"kind", raw_pack("\x07"), "unknown entry kind 7"},
      {"magic", "NOTAPACK", "not a checkpoint pack"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    const fs::path packed = dir.path / (c.name + ".pack");
    write_text(packed, c.bytes);
    const fs::path out = dir.path / ("out-" + c.name);
    auto r = unpack_directory(packed, out);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find(c.says) != std::string::npos);
    CHECK(r.error().message.find(packed.string()) != std::string::npos);
    CHECK_FALSE(fs::exists(out));
  }
  CHECK_FALSE(fs::exists(dir.path.parent_path() / "escape"));
}

}  // namespace
}  // namespace hpo
