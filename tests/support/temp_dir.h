// Temporary directories and whole-file reads and writes for tests.
#pragma once

#include <filesystem>
#include <string>

namespace hpo::test {

// A fresh directory /tmp/hpo-<tag>-XXXXXX, removed with everything in it when
// the object goes away. Unique per object, so tests may run in parallel.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // The path of `name` inside the directory, as a string (it goes into
  // command lines and error messages).
  std::string operator/(const std::string& name) const { return (path / name).string(); }

  const std::filesystem::path path;
};

// The whole content of `path` ("" when it cannot be read).
std::string read_text(const std::filesystem::path& path);

// Replaces the content of `path` with `text`.
void write_text(const std::filesystem::path& path, const std::string& text);

}  // namespace hpo::test
