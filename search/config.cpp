#include "search/config.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>

#include "search/internal.h"

namespace hpo::search {
namespace detail {

std::string format_number(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (value == 0.0) return "0";
  constexpr double kExactInt = 9007199254740992.0;  // 2^53
  if (std::trunc(value) == value && std::fabs(value) < kExactInt) {
    return std::to_string(static_cast<std::int64_t>(value));
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  if (ec != std::errc()) return std::to_string(value);
  return std::string(buf, end);
}

std::string located(std::string_view file, std::string_view where, std::string_view message) {
  std::string out;
  if (!file.empty()) (out += file) += ": ";
  if (!where.empty()) (out += where) += ": ";
  out += message;
  return out;
}

}  // namespace detail

namespace {

void write_canonical(const nlohmann::json& v, std::string& out) {
  using T = nlohmann::json::value_t;
  switch (v.type()) {
    case T::object: {
      // nlohmann::json keeps object keys in a std::map: already sorted.
      out += '{';
      bool first = true;
      for (const auto& [k, item] : v.items()) {
        if (!first) out += ',';
        first = false;
        out += nlohmann::json(k).dump();
        out += ':';
        write_canonical(item, out);
      }
      out += '}';
      return;
    }
    case T::array: {
      out += '[';
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) out += ',';
        write_canonical(v[i], out);
      }
      out += ']';
      return;
    }
    case T::number_integer:
      out += std::to_string(v.get<std::int64_t>());
      return;
    case T::number_unsigned:
      out += std::to_string(v.get<std::uint64_t>());
      return;
    case T::number_float: {
      double d = v.get<double>();
      out += std::isfinite(d) ? detail::format_number(d) : "null";
      return;
    }
    default:
      out += v.dump();  // string, bool, null, binary
      return;
  }
}

}  // namespace

std::string canonical(const nlohmann::json& config) {
  std::string out;
  write_canonical(config, out);
  return out;
}

std::string config_hash(const nlohmann::json& config) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a 64 offset basis
  for (unsigned char c : canonical(config)) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace hpo::search
