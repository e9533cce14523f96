#include "base/json.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

namespace hpo {
namespace {

// The deepest nesting of arrays and objects in `text`, outside strings (and comments when
// allowed); stops early once `limit` is passed. A flat scan: no recursion, O(size).
int max_nesting(std::string_view text, bool comments, int limit) {
  int depth = 0, deepest = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"') {
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\') ++i;
      }
    } else if (comments && c == '/' && i + 1 < text.size() && text[i + 1] == '/') {
      while (i < text.size() && text[i] != '\n') ++i;
    } else if (comments && c == '/' && i + 1 < text.size() && text[i + 1] == '*') {
      std::size_t end = text.find("*/", i + 2);
      i = end == std::string_view::npos ? text.size() : end + 1;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) deepest = depth;
      if (deepest > limit) return deepest;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

std::string prefix(std::string_view source) {
  return source.empty() ? std::string() : std::string(source) + ": ";
}

// nlohmann's messages start with "[json.exception.parse_error.101] "; the bracket is noise to a
// user.
std::string plain(const char* what) {
  std::string s = what;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find("] ");
    if (close != std::string::npos) s.erase(0, close + 2);
  }
  return s;
}

}  // namespace

Result<nlohmann::json> parse_json(std::string_view text, std::string_view source,
                                  const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return fail(prefix(source) + "too large: " + std::to_string(text.size()) +
                " bytes (the limit is " + std::to_string(limits.max_bytes) + ")");
  }
  if (max_nesting(text, limits.allow_comments, limits.max_depth) > limits.max_depth) {
    return fail(prefix(source) + "nested deeper than " + std::to_string(limits.max_depth) +
                " levels");
  }
  try {
    return nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/true,
                                 limits.allow_comments);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is 1-based: the offset just past the offending character. Say line and column.
    std::size_t at = e.byte > 0 ? std::min<std::size_t>(e.byte - 1, text.size()) : 0;
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; i < at; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    std::string what = plain(e.what());
    // Drop "parse error at line 1, column 2: ": the place is said once, in front.
    if (auto colon = what.find(": "); colon != std::string::npos) what = what.substr(colon + 2);
    return fail(std::string(source) + ":" + std::to_string(line) + ":" + std::to_string(column) +
                ": invalid JSON: " + what);
  } catch (const nlohmann::json::exception& e) {
    // parse_error for bad syntax, out_of_range.406 for a number that overflows a double.
    return fail(prefix(source) + plain(e.what()));
  }
}

Result<nlohmann::json> read_json_file(const std::string& path, const JsonLimits& limits) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    return fail(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                path + ": cannot read: " + std::strerror(err));
  }
  if (S_ISDIR(st.st_mode)) return fail(path + ": is a directory, not a JSON file");
  if (static_cast<std::size_t>(st.st_size) > limits.max_bytes) {
    return fail(path + ": too large: " + std::to_string(st.st_size) + " bytes (the limit is " +
                std::to_string(limits.max_bytes) + ")");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(ErrorCode::kIo, path + ": cannot read: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return fail(ErrorCode::kIo, path + ": read error");
  return parse_json(text.str(), path, limits);
}

}  // namespace hpo
