// Key files, allow-list directories and the loopback rule (scheduler/keys.h, zap.h).
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "scheduler/keys.h"
#include "scheduler/zap.h"
#include "tests/support/temp_dir.h"

using namespace hpo::scheduler;
using hpo::test::TempDir;
using hpo::test::write_text;
namespace fs = std::filesystem;

TEST_CASE("a key pair written to files reads back, the secret file mode 0600", "[keys]") {
  TempDir dir("keys-roundtrip");
  auto pair = new_keypair();
  REQUIRE(pair);
  CHECK(valid_z85_key(pair->public_key));
  REQUIRE(write_keypair((dir.path / "sub").string(), "node-1", *pair));
  struct stat st{};
  REQUIRE(::stat((dir.path / "sub/node-1.secret").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto read = read_keypair(dir / "sub/node-1.secret");
  REQUIRE(read);
  CHECK(read->public_key == pair->public_key);
  CHECK(read->secret_key == pair->secret_key);
  auto pub = read_public_key(dir / "sub/node-1.key");
  REQUIRE(pub);
  CHECK(*pub == pair->public_key);
  // Never a secret in the public file.
  CHECK(hpo::test::read_text(dir.path / "sub/node-1.key").find(pair->secret_key) ==
        std::string::npos);
}

TEST_CASE("an existing key file is never replaced and a bad name is refused", "[keys]") {
  TempDir dir("keys-exists");
  auto pair = new_keypair();
  REQUIRE(pair);
  REQUIRE(write_keypair(dir.path.string(), "a", *pair));
  auto again = write_keypair(dir.path.string(), "a", *new_keypair());
  REQUIRE_FALSE(again);
  CHECK_THAT(again.error().message, Catch::Contains("already exists"));
  CHECK(read_keypair(dir / "a.secret")->secret_key == pair->secret_key);
  for (const char* bad : {"", "../x", ".hidden", "a b", "a/b"}) {
    INFO(bad);
    CHECK_FALSE(write_keypair(dir.path.string(), bad, *pair));
  }
}

TEST_CASE("a secret file readable by others, or not matching its public key, is refused",
          "[keys]") {
  TempDir dir("keys-mode");
  auto pair = new_keypair();
  REQUIRE(write_keypair(dir.path.string(), "s", *pair));
  fs::permissions(dir.path / "s.secret", fs::perms::group_read | fs::perms::others_read,
                  fs::perm_options::add);
  auto open = read_keypair(dir / "s.secret");
  REQUIRE_FALSE(open);
  CHECK_THAT(open.error().message, Catch::Contains("readable by others") &&
                                       Catch::Contains("chmod 600"));
  // A pair edited by hand: the public line from another key.
  auto other = new_keypair();
  write_text(dir.path / "m.secret",
             "public-key = " + other->public_key + "\nsecret-key = " + pair->secret_key + "\n");
  fs::permissions(dir.path / "m.secret", fs::perms::owner_read | fs::perms::owner_write);
  auto mixed = read_keypair(dir / "m.secret");
  REQUIRE_FALSE(mixed);
  CHECK_THAT(mixed.error().message, Catch::Contains("does not belong"));
  // A .key file given where a secret is wanted.
  auto pub = read_keypair(dir / "s.key");
  REQUIRE_FALSE(pub);
}

TEST_CASE("a bad key file names the file and line", "[keys]") {
  TempDir dir("keys-bad");
  write_text(dir.path / "short.key", "# comment\npublic-key = abc\n");
  auto r = read_public_key(dir / "short.key");
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("short.key:2:") && Catch::Contains("40 Z85"));
  write_text(dir.path / "field.key", "colour = blue\n");
  CHECK_THAT(read_public_key(dir / "field.key").error().message,
             Catch::Contains("field.key:1: unknown field 'colour'"));
  CHECK(read_public_key(dir / "missing.key").error().code == hpo::ErrorCode::kNotFound);
  write_text(dir.path / "big.key", std::string(10000, '#'));
  CHECK_THAT(read_public_key(dir / "big.key").error().message, Catch::Contains("too long"));
}

TEST_CASE("an allow-list is the .key files of a directory, by name", "[keys]") {
  TempDir dir("keys-dir");
  auto a = new_keypair(), b = new_keypair();
  REQUIRE(write_keypair(dir.path.string(), "a", *a));
  REQUIRE(write_keypair(dir.path.string(), "b", *b));
  write_text(dir.path / "README", "not a key");
  auto keys = read_key_dir(dir.path.string());
  REQUIRE(keys);
  CHECK(keys->size() == 2);
  CHECK(keys->at(a->public_key) == "a");
  CHECK(keys->at(b->public_key) == "b");
  // The same key twice is a mistake worth naming.
  fs::copy_file(dir.path / "a.key", dir.path / "a-copy.key");
  auto twice = read_key_dir(dir.path.string());
  REQUIRE_FALSE(twice);
  CHECK_THAT(twice.error().message, Catch::Contains("same key"));
  CHECK_FALSE(read_key_dir((dir.path / "none").string()));
}

TEST_CASE("key lists give each key its roles", "[keys]") {
  TempDir dir("keys-lists");
  auto agent = new_keypair(), sub = new_keypair(), both = new_keypair();
  REQUIRE(write_keypair((dir.path / "agents").string(), "ag", *agent));
  REQUIRE(write_keypair((dir.path / "subs").string(), "su", *sub));
  KeySources sources{(dir.path / "agents").string(), (dir.path / "subs").string(),
                     {both->public_key}, {both->public_key}};
  auto lists = load_key_lists(sources);
  REQUIRE(lists);
  CHECK(lists->allows(agent->public_key, Role::kAgent));
  CHECK_FALSE(lists->allows(agent->public_key, Role::kSubmitter));
  CHECK(lists->allows(sub->public_key, Role::kSubmitter));
  CHECK_FALSE(lists->allows(sub->public_key, Role::kAgent));
  CHECK(lists->allows(both->public_key, Role::kAgent));
  CHECK(lists->allows(both->public_key, Role::kSubmitter));
  CHECK_FALSE(lists->allows("", Role::kAgent));
  CHECK(lists->name_of(agent->public_key) == "ag");
}

TEST_CASE("only loopback, ipc and inproc endpoints count as local", "[keys]") {
  for (const char* local : {"tcp://127.0.0.1:5555", "tcp://127.0.0.1:*", "tcp://localhost:5555",
                            "tcp://[::1]:5555", "ipc:///tmp/hpo.sock", "inproc://x",
                            "tcp://127.3.2.1:9"}) {
    INFO(local);
    CHECK(loopback_only(local));
  }
  for (const char* open : {"tcp://*:5555", "tcp://0.0.0.0:5555", "tcp://10.0.0.1:5555",
                           "tcp://eth0:5555", "tcp://[::]:5555", "tcp://127.foo:1",
                           "tcp://lo;10.0.0.1:5", "udp://127.0.0.1:5", "tcp://1270.0.0.1:5"}) {
    INFO(open);
    CHECK_FALSE(loopback_only(open));
  }
}

TEST_CASE("client keys come as a pair of flags or not at all", "[keys]") {
  TempDir dir("keys-client");
  REQUIRE(write_keypair(dir.path.string(), "c", *new_keypair()));
  REQUIRE(write_keypair(dir.path.string(), "s", *new_keypair()));
  auto none = read_client_keys("", "");
  REQUIRE(none);
  CHECK_FALSE(none->has_value());
  auto half = read_client_keys(dir / "c.secret", "");
  REQUIRE_FALSE(half);
  CHECK_THAT(half.error().message, Catch::Contains("--scheduler-key"));
  auto both = read_client_keys(dir / "c.secret", dir / "s.key");
  REQUIRE(both);
  REQUIRE(both->has_value());
  auto encoded = encode_run_keys(**both);
  auto decoded = decode_run_keys(encoded);
  REQUIRE(decoded);
  CHECK(decoded->server == (*both)->server);
  CHECK(decoded->mine.secret_key == (*both)->mine.secret_key);
  CHECK_FALSE(decode_run_keys("a b c"));
}
