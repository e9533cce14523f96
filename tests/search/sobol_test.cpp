// The Sobol' sampler: a valid direction-number table, and the net property
// of its first 2^m points survives the scrambling.
#include <set>

#include "search/internal.h"
#include "tests/search/helpers.h"

using nlohmann::json;
using namespace hpo::search;
using namespace hpo::search::test;

namespace {

// x^e mod p over GF(2); polynomials as bit masks (bit i = x^i).
std::uint64_t mulmod(std::uint64_t a, std::uint64_t b, std::uint64_t p, int degree) {
  std::uint64_t r = 0;
  for (; b; b >>= 1) {
    if (b & 1) r ^= a;
    a <<= 1;
    if (a >> degree & 1) a ^= p;
  }
  return r;
}

std::uint64_t power_of_x(std::uint64_t e, std::uint64_t p, int degree) {
  std::uint64_t result = 1, base = 2 % p;
  if (degree == 1) base = 1;  // x = 1 mod (x + 1)
  for (; e; e >>= 1) {
    if (e & 1) result = mulmod(result, base, p, degree);
    base = mulmod(base, base, p, degree);
  }
  return result;
}

bool primitive(int degree, unsigned a) {
  // p(x) = x^s + a_1 x^(s-1) + ... + a_(s-1) x + 1, a_1 the top bit of a.
  std::uint64_t p = (std::uint64_t{1} << degree) | 1u | (static_cast<std::uint64_t>(a) << 1);
  std::uint64_t order = (std::uint64_t{1} << degree) - 1;
  if (power_of_x(order, p, degree) != 1) return false;
  for (std::uint64_t q = 2, rest = order; q <= rest; ++q) {
    if (rest % q) continue;
    while (rest % q == 0) rest /= q;
    if (power_of_x(order / q, p, degree) == 1) return false;
  }
  return true;
}

json unit_cube(int dims) {
  json space = json::object();
  for (int d = 0; d < dims; ++d) {
    std::string name = "d";
    name += static_cast<char>('a' + d);
    space[name] = {{"type", "float"}, {"low", 0}, {"high", 1}};
  }
  return space;
}

}  // namespace

TEST_CASE("the sobol direction numbers come from primitive polynomials with valid initial values") {
  for (const auto& e : detail::sobol_table()) {
    INFO("degree " << e.degree << " a " << e.a);
    CHECK(primitive(e.degree, e.a));
    REQUIRE(e.m.size() == static_cast<std::size_t>(e.degree));
    for (std::size_t k = 0; k < e.m.size(); ++k) {
      CHECK(e.m[k] % 2 == 1);
      CHECK(e.m[k] < (std::uint64_t{2} << k));
    }
  }
}

TEST_CASE("the first 32 scrambled sobol points put one point in each of 32 slices of every axis") {
  const json cube = unit_cube(21);
  Space space = space_of(cube);
  auto sobol = sampler_of(space, json{{"type", "sobol"}}, 17);
  std::vector<json> points;
  for (int i = 0; i < 32; ++i) points.push_back(**sobol->ask({}, i));
  for (const auto& [name, spec] : cube.items()) {
    std::set<int> slices;
    for (const auto& p : points) slices.insert(static_cast<int>(p[name].get<double>() * 32));
    INFO(name);
    CHECK(slices.size() == 32);
  }
  // The first two dimensions form a (0, m, 2)-net: 16 points, one in each 4x4 cell.
  std::set<int> cells;
  for (int i = 0; i < 16; ++i) {
    cells.insert(static_cast<int>(points[i]["da"].get<double>() * 4) * 4 +
                 static_cast<int>(points[i]["db"].get<double>() * 4));
  }
  CHECK(cells.size() == 16);
}

TEST_CASE("unscrambled sobol starts with the textbook points") {
  Space space = space_of(unit_cube(2));
  auto sobol = sampler_of(space, json{{"type", "sobol"}, {"scramble", false}});
  std::vector<std::pair<double, double>> got;
  for (int i = 0; i < 4; ++i) {
    json c = **sobol->ask({}, i);
    got.emplace_back(c["da"].get<double>(), c["db"].get<double>());
  }
  CHECK(got ==
        std::vector<std::pair<double, double>>{{0, 0}, {0.5, 0.5}, {0.25, 0.75}, {0.75, 0.25}});
}
