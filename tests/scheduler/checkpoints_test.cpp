// scheduler/checkpoints.h: uploads in chunks, digests checked, the last complete checkpoint
// kept through bad uploads and crashes, disk use bounded.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "base/sha256.h"
#include "scheduler/checkpoints.h"
#include "tests/support/temp_dir.h"

namespace hpo::scheduler {
namespace {

namespace fs = std::filesystem;

// Uploads `bytes` for `key` in chunks of `chunk`.
Result<CheckpointInfo> upload(CheckpointStore& store, CheckpointKey key, const std::string& bytes,
                              std::size_t chunk = 7) {
  if (auto s = store.begin(key, bytes.size(), sha256_hex(bytes)); !s) {
    return std::unexpected(s.error());
  }
  for (std::size_t at = 0; at < bytes.size(); at += chunk) {
    if (auto s = store.append(key, at, std::string_view(bytes).substr(at, chunk)); !s) {
      return std::unexpected(s.error());
    }
  }
  return store.commit(key);
}

std::string read_all(const CheckpointStore& store, CheckpointKey key) {
  std::string out;
  for (;;) {
    auto chunk = store.read(key, out.size(), 5);
    REQUIRE(chunk);
    if (chunk->empty()) return out;
    out += *chunk;
  }
}

TEST_CASE("a checkpoint uploaded in chunks reads back whole, and survives a reopen",
          "[scheduler][checkpoints]") {
  test::TempDir dir("ckpt");
  const CheckpointKey key{3, 17};
  const std::string bytes = "a checkpoint of some length, in chunks";
  {
    auto store = CheckpointStore::open(dir.path / "store", 1 << 20);
    REQUIRE(store);
    CHECK_FALSE(store->find(key));
    auto info = upload(*store, key, bytes);
    REQUIRE(info);
    CHECK(info->bytes == bytes.size());
    CHECK(info->sha256 == sha256_hex(bytes));
    CHECK(read_all(*store, key) == bytes);
    CHECK(store->usage() == bytes.size());
    CHECK(store->study_bytes(3) == bytes.size());
    CHECK(store->study_bytes(4) == 0);
  }
  auto again = CheckpointStore::open(dir.path / "store", 1 << 20);
  REQUIRE(again);
  auto found = again->find(key);
  REQUIRE(found);
  CHECK(found->sha256 == sha256_hex(bytes));
  CHECK(read_all(*again, key) == bytes);
  REQUIRE(again->remove(key));
  CHECK_FALSE(again->find(key));
  CHECK(again->usage() == 0);
  CHECK(fs::is_empty(dir.path / "store" / "3"));
}

TEST_CASE("a bad upload is dropped and the trial's previous checkpoint kept",
          "[scheduler][checkpoints]") {
  test::TempDir dir("ckpt");
  auto store = CheckpointStore::open(dir.path / "store", 1 << 20);
  REQUIRE(store);
  const CheckpointKey key{1, 2};
  REQUIRE(upload(*store, key, "epoch 1"));

  SECTION("a digest that does not match") {
    REQUIRE(store->begin(key, 7, sha256_hex("epoch 2")));
    REQUIRE(store->append(key, 0, "epoch 3"));
    auto c = store->commit(key);
    REQUIRE_FALSE(c);
    CHECK(c.error().message.find("is not the announced") != std::string::npos);
  }
  SECTION("a chunk out of order (sent twice across a reconnect)") {
    REQUIRE(store->begin(key, 7, sha256_hex("epoch 2")));
    REQUIRE(store->append(key, 0, "epo"));
    auto a = store->append(key, 0, "epo");
    REQUIRE_FALSE(a);
    CHECK(a.error().message.find("chunk at byte 0, expected 3") != std::string::npos);
    CHECK_FALSE(store->commit(key));  // the upload is gone
  }
  SECTION("more bytes than announced") {
    REQUIRE(store->begin(key, 3, sha256_hex("epo")));
    CHECK_FALSE(store->append(key, 0, "epoch 2"));
  }
  SECTION("fewer bytes than announced") {
    REQUIRE(store->begin(key, 7, sha256_hex("epoch 2")));
    REQUIRE(store->append(key, 0, "epo"));
    auto c = store->commit(key);
    REQUIRE_FALSE(c);
    CHECK(c.error().message.find("incomplete (3 of 7 bytes)") != std::string::npos);
  }
  CHECK(read_all(*store, key) == "epoch 1");
  CHECK(store->usage() == 7);
  // No .part left behind.
  for (const auto& f : fs::directory_iterator(dir.path / "store" / "1")) {
    CHECK(f.path().extension() == ".pack");
  }
}

TEST_CASE("a crash mid-upload or mid-replace loses no complete checkpoint",
          "[scheduler][checkpoints]") {
  test::TempDir dir("ckpt");
  const CheckpointKey key{1, 5};
  const fs::path root = dir.path / "store";
  {
    auto store = CheckpointStore::open(root, 1 << 20);
    REQUIRE(store);
    REQUIRE(upload(*store, key, "first"));
    REQUIRE(upload(*store, key, "second"));  // replaces, seq 2
    // An upload a kill cuts short: begun, part written, never committed.
    REQUIRE(store->begin(key, 5, sha256_hex("third")));
    REQUIRE(store->append(key, 0, "th"));
  }  // the process "dies" (the object goes without commit)
  // And a crash between the rename of a newer pack and the removal of the older: seq 1 back.
  test::write_text(root / "1" / ("5.1." + sha256_hex("first") + ".pack"), "first");
  auto store = CheckpointStore::open(root, 1 << 20);
  REQUIRE(store);
  auto found = store->find(key);
  REQUIRE(found);
  CHECK(found->seq == 2);
  CHECK(read_all(*store, key) == "second");
  int files = 0;
  for (const auto& f : fs::directory_iterator(root / "1")) {
    ++files;
    CHECK(f.path().filename().string().starts_with("5.2."));
  }
  CHECK(files == 1);
  CHECK(store->usage() == 6);
}

TEST_CASE("disk use is bounded: an upload that would pass the limit is refused",
          "[scheduler][checkpoints]") {
  test::TempDir dir("ckpt");
  auto store = CheckpointStore::open(dir.path / "store", 20);
  REQUIRE(store);
  REQUIRE(upload(*store, {1, 1}, std::string(12, 'a')));
  auto refused = store->begin({1, 2}, 9, sha256_hex(std::string(9, 'b')));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == ErrorCode::kBusy);
  CHECK(refused.error().message.find("would make 21, over its 20") != std::string::npos);
  // Replacing trial 1's own checkpoint does not count the pack it replaces.
  REQUIRE(upload(*store, {1, 1}, std::string(20, 'c')));
  // An upload in progress reserves its size.
  REQUIRE(store->remove({1, 1}));
  REQUIRE(store->begin({2, 1}, 15, sha256_hex(std::string(15, 'd'))));
  CHECK(store->usage() == 15);
  CHECK_FALSE(store->begin({2, 2}, 6, sha256_hex(std::string(6, 'e'))));
  REQUIRE(store->remove_study(2));
  CHECK(store->usage() == 0);
  CHECK_FALSE(fs::exists(dir.path / "store" / "2"));
}

// Writes `bytes` as an agent would into the shared store's incoming/ and returns its name.
std::string put_incoming(const fs::path& root, const std::string& bytes, const std::string& lease) {
  const std::string name = sha256_hex(bytes) + "." + lease + ".pack";
  std::ofstream(root / "incoming" / name, std::ios::binary) << bytes;
  return name;
}

TEST_CASE("a shared store adopts a pack an agent wrote to incoming/ after checking its size, "
          "digest and the bound, and keeps one token across reopens",
          "[scheduler][checkpoints][shared]") {
  test::TempDir dir("ckpt");
  const fs::path root = dir.path / "store";
  std::string token;
  {
    auto store = CheckpointStore::open(root, 100);
    REQUIRE(store);
    auto t = store->share();
    REQUIRE(t);
    token = *t;
    CHECK(token.size() == 32);
    CHECK(fs::is_directory(root / "incoming"));
  }
  auto store = CheckpointStore::open(root, 100);
  REQUIRE(store);
  auto again = store->share();
  REQUIRE(again);
  CHECK(*again == token);
  std::ifstream id(root / "shared-id");
  std::string said;
  std::getline(id, said);
  CHECK(said == token);

  const CheckpointKey key{2, 5};
  const std::string first = "the first checkpoint";
  auto info = store->adopt(key, first.size(), sha256_hex(first), put_incoming(root, first, "a"));
  REQUIRE(info);
  CHECK(info->seq == 1);
  CHECK(read_all(*store, key) == first);
  CHECK(fs::is_empty(root / "incoming"));
  CHECK(store->relative_path_of(key) == "2/5.1." + sha256_hex(first) + ".pack");
  CHECK(fs::exists(root / store->relative_path_of(key)));
  CHECK(store->relative_path_of({2, 6}).empty());

  // A wrong size, a wrong digest, or over the bound: refused, the file removed, the first kept.
  const std::string second = "a second, longer checkpoint";
  auto name = put_incoming(root, second, "b");
  auto wrong_size = store->adopt(key, second.size() + 1, sha256_hex(second), name);
  REQUIRE_FALSE(wrong_size);
  CHECK(wrong_size.error().message.find("the FINISH says") != std::string::npos);
  CHECK_FALSE(fs::exists(root / "incoming" / name));
  name = put_incoming(root, second, "c");
  auto wrong_sha = store->adopt(key, second.size(), sha256_hex("other"), name);
  REQUIRE_FALSE(wrong_sha);
  CHECK(wrong_sha.error().message.find("is not the FINISH's") != std::string::npos);
  const std::string big(90, 'x');
  name = put_incoming(root, big, "d");
  auto full = store->adopt({2, 7}, big.size(), sha256_hex(big), name);
  REQUIRE_FALSE(full);
  CHECK(full.error().code == ErrorCode::kBusy);
  CHECK(fs::is_empty(root / "incoming"));
  CHECK(read_all(*store, key) == first);
  // A pack that is not there: refused without touching the store.
  CHECK_FALSE(store->adopt(key, 3, sha256_hex("abc"), "missing.pack"));
  CHECK(read_all(*store, key) == first);

  // A good second pack replaces the first (seq 2), and the old file is gone.
  auto second_info =
      store->adopt(key, second.size(), sha256_hex(second), put_incoming(root, second, "e"));
  REQUIRE(second_info);
  CHECK(second_info->seq == 2);
  CHECK(read_all(*store, key) == second);
  CHECK_FALSE(fs::exists(root / ("2/5.1." + sha256_hex(first) + ".pack")));
  CHECK(store->usage() == second.size());
}

TEST_CASE("reading a trial without a checkpoint says so", "[scheduler][checkpoints]") {
  test::TempDir dir("ckpt");
  auto store = CheckpointStore::open(dir.path / "store", 100);
  REQUIRE(store);
  auto r = store->read({9, 9}, 0, 10);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::kNotFound);
  CHECK_FALSE(store->begin({1, 1}, 3, "not-a-digest"));
}

}  // namespace
}  // namespace hpo::scheduler
