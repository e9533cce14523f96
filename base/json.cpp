#include "base/json.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>
#include <vector>

namespace hpo {
namespace {

// The byte offset of the bracket that first nests arrays and objects deeper than `limit`
// (outside strings, and comments when allowed), or npos. A flat scan: no recursion, O(size).
std::size_t too_deep_at(std::string_view text, bool comments, int limit) {
  int depth = 0;
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
      if (++depth > limit) return i;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return std::string_view::npos;
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

// "SOURCE:LINE:COLUMN" of byte offset `at` (0-based), or "LINE:COLUMN" without a source.
std::string place(std::string_view text, std::string_view source, std::size_t at) {
  at = std::min(at, text.size());
  std::size_t line = 1, column = 1;
  for (std::size_t i = 0; i < at; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return (source.empty() ? std::string() : std::string(source) + ":") + std::to_string(line) + ":" +
         std::to_string(column);
}

// Replays a text that failed to parse, keeping only the JSON path (RFC 6901) of the value being
// read when the parser stopped: "/params/2/lr". Runs only after an error, so its cost is
// irrelevant; its stack holds one entry per open container, which the depth scan bounded.
class PathAtError : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::string path() const {
    std::string out;
    for (const auto& step : steps_) {
      out += '/';
      if (step.in_array) {
        out += std::to_string(step.index);
      } else {
        for (char c : step.key) out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
      }
    }
    return out;
  }
  std::size_t position() const { return position_; }  // 0-based offset of the error

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool string(string_t&) override { return value(); }
  bool binary(binary_t&) override { return value(); }
  bool start_object(std::size_t) override {
    steps_.push_back({false, 0, {}, false});
    return true;
  }
  bool key(string_t& k) override {
    steps_.back().key = k;
    steps_.back().keyed = true;
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override {
    steps_.push_back({true, 0, {}, false});
    return true;
  }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string& token,
                   const nlohmann::detail::exception& e) override {
    // A syntax error points at the offending character (the position is 1-based, just past
    // it); a number that overflows at its first digit.
    position_ = e.id == 406 && position >= token.size() ? position - token.size()
                : position > 0                          ? position - 1
                                                        : 0;
    // An object's open step names no value until its first key; an array's names the element
    // about to be read.
    if (!steps_.empty() && !steps_.back().in_array && !steps_.back().keyed) steps_.pop_back();
    return false;
  }

 private:
  struct Step {
    bool in_array;
    std::size_t index;
    std::string key;
    bool keyed;
  };
  bool value() {
    if (!steps_.empty() && steps_.back().in_array) ++steps_.back().index;
    return true;
  }
  bool close() {
    steps_.pop_back();
    return value();
  }
  std::vector<Step> steps_;
  std::size_t position_ = 0;
};

// " (at /a/2)" for the value being read where parsing of `text` stopped, "" at the top level.
std::pair<std::string, std::size_t> path_at_error(std::string_view text, bool comments) {
  PathAtError sax;
  nlohmann::json::sax_parse(text.begin(), text.end(), &sax, nlohmann::json::input_format_t::json,
                            /*strict=*/true, comments);
  std::string path = sax.path();
  return {path.empty() ? std::string() : " (at " + path + ")", sax.position()};
}
}  // namespace

Result<nlohmann::json> parse_json(std::string_view text, std::string_view source,
                                  const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return fail(prefix(source) + "too large: " + std::to_string(text.size()) +
                " bytes (the limit is " + std::to_string(limits.max_bytes) + ")");
  }
  if (auto at = too_deep_at(text, limits.allow_comments, limits.max_depth);
      at != std::string_view::npos) {
    return fail(place(text, source, at) + ": nested deeper than " +
                std::to_string(limits.max_depth) + " levels");
  }
  try {
    return nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/true,
                                 limits.allow_comments);
  } catch (const nlohmann::json::exception& e) {
    // parse_error for bad syntax, out_of_range.406 for a number that overflows a double. Say
    // where: line and column, and the JSON path of the value being read.
    auto [path, position] = path_at_error(text, limits.allow_comments);
    std::string where = place(text, source, position);
    std::string what = plain(e.what());
    if (e.id == 406) return fail(where + ": " + what + path);
    // Drop "parse error at line 1, column 2: ": the place is said once, in front.
    if (auto colon = what.find(": "); colon != std::string::npos) what = what.substr(colon + 2);
    return fail(where + ": invalid JSON: " + what + path);
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
