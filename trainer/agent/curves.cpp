#include "trainer/agent/curves.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <numbers>
#include <sstream>

namespace hpo::agent {
namespace {

struct Input {
  const char* key;
  double fallback, low, high;
  bool zero_ok;
};

Result<double> read_input(const nlohmann::json& config, const Input& in) {
  if (!config.is_object()) return in.fallback;
  auto it = config.find(in.key);
  if (it == config.end() || it->is_null()) return in.fallback;
  const bool number = it->is_number() && std::isfinite(it->get<double>());
  const double v = number ? it->get<double>() : 0;
  if (!number || v < 0 || (v == 0 && !in.zero_ok)) {
    std::string got = it->dump();
    if (got.size() > 40) got = got.substr(0, 37) + "...";
    return fail(std::string("config.") + in.key + ": must be a finite number " +
                (in.zero_ok ? ">= 0" : "> 0") + " (got " + got + ")");
  }
  return std::clamp(v, in.low, in.high);
}

// SplitMix64: a good 64-bit mix; the same in every process and library.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::uint64_t params_hash(const CurveParams& p) {
  std::uint64_t h = 0x6375727665730000ull;  // "curves"
  for (double v : {p.lr, p.batch_size, p.width, p.dropout})
    h = mix(h ^ std::bit_cast<std::uint64_t>(v));
  return h;
}

// A uniform double in (0, 1), never 0 (Box-Muller takes its log).
double unit(std::uint64_t bits) { return (static_cast<double>(bits >> 11) + 0.5) * 0x1.0p-53; }

}  // namespace

Result<CurveParams> curve_params(const nlohmann::json& config) {
  static constexpr Input kInputs[] = {{"lr", 0.003, 1e-6, 10, false},
                                      {"batch_size", 128, 1, 65536, false},
                                      {"width", 128, 1, 65536, false},
                                      {"dropout", 0.2, 0, 0.95, true}};
  double values[4];
  for (int i = 0; i < 4; ++i) {
    auto v = read_input(config, kInputs[i]);
    if (!v) return std::unexpected(v.error());
    values[i] = *v;
  }
  return CurveParams{values[0], values[1], values[2], values[3]};
}

CurveShape curve_shape(const CurveParams& p) {
  const double le = std::log10(p.lr * std::sqrt(128.0 / p.batch_size));
  const double w = std::clamp(std::log2(p.width / 16.0) / 5.0, 0.0, 1.0);
  const double d = p.dropout;
  const double luck = (unit(mix(params_hash(p))) * 2 - 1) * 0.004;
  const double overfit = 1 - std::min(d, 0.5) / 0.5;
  const double step = std::max(0.0, le + 2.2);
  CurveShape s;
  s.plateau = 0.935 - 0.04 * (1 - w) - 0.025 * w * overfit * overfit - 0.06 * step * step -
              0.05 * std::max(0.0, d - 0.5) + luck;
  s.gap = std::min(0.8, 0.06 * std::pow(10.0, -0.5 * (le + 2)) * (1 + d));
  s.tau = 2 * std::pow(10.0, -0.5 * (le + 2.5)) * (1 + d);
  return s;
}

double curve_accuracy(const CurveParams& p, std::int64_t epoch) {
  const CurveShape s = curve_shape(p);
  const double e = static_cast<double>(std::max<std::int64_t>(epoch, 1));
  // Box-Muller from two draws keyed by (config, epoch).
  const std::uint64_t key = mix(params_hash(p) ^ mix(static_cast<std::uint64_t>(epoch)));
  const double u1 = unit(mix(key ^ 1)), u2 = unit(mix(key ^ 2));
  const double normal = std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
  return std::clamp(s.plateau - s.gap * std::exp(-(e - 1) / s.tau) + 0.003 * normal, 0.0, 1.0);
}

Status write_curve_state(const std::string& dir, std::int64_t epoch) {
  const std::string path = dir + "/" + kCurveStateFile;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << nlohmann::json{{"epoch", epoch}}.dump() << "\n";
    out.flush();
    if (!out) return fail(ErrorCode::kIo, tmp + ": cannot write: " + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail(ErrorCode::kIo, path + ": cannot replace: " + std::strerror(errno));
  }
  return {};
}

Result<std::int64_t> read_curve_state(const std::string& dir) {
  const std::string path = dir + "/" + kCurveStateFile;
  std::ifstream in(path);
  if (!in) return fail(ErrorCode::kNotFound, path + ": cannot read: " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  auto j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("epoch") || !j["epoch"].is_number_integer() ||
      j["epoch"].get<std::int64_t>() < 0) {
    return fail(path + ": not a curves checkpoint (expected {\"epoch\": K} with K >= 0)");
  }
  return j["epoch"].get<std::int64_t>();
}

}  // namespace hpo::agent
