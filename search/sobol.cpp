// Scrambled Sobol' sequence (Joe & Kuo 2008 direction numbers, first 21
// dimensions; random linear matrix scrambling plus a random digital shift,
// as in SciPy's scrambled Sobol). Trial `number` is point `number` of the
// sequence; coordinate j is the j-th decision of the walk. Decisions beyond
// the table's 21 dimensions are padded with seeded uniform draws (use
// "halton", which has no dimension limit, for very large spaces).
#include <array>
#include <random>
#include <vector>

#include "search/internal.h"
#include "search/sampler.h"

namespace hpo::search::detail {

const std::vector<SobolDirection>& sobol_table() {
  // new-joe-kuo-6.21201, dimensions 2..21: degree s, inner coefficients a, m_1..m_s.
  static const std::vector<SobolDirection> table = {
      {1, 0, {1}},
      {2, 1, {1, 3}},
      {3, 1, {1, 3, 1}},
      {3, 2, {1, 1, 1}},
      {4, 1, {1, 1, 3, 3}},
      {4, 4, {1, 3, 5, 13}},
      {5, 2, {1, 1, 5, 5, 17}},
      {5, 4, {1, 1, 5, 5, 5}},
      {5, 7, {1, 1, 7, 11, 19}},
      {5, 11, {1, 1, 5, 1, 1}},
      {5, 13, {1, 1, 1, 3, 11}},
      {5, 14, {1, 3, 5, 5, 31}},
      {6, 1, {1, 3, 3, 9, 7, 49}},
      {6, 13, {1, 1, 1, 15, 21, 21}},
      {6, 16, {1, 3, 1, 13, 27, 49}},
      {6, 19, {1, 1, 1, 15, 7, 5}},
      {6, 22, {1, 3, 1, 15, 13, 25}},
      {6, 25, {1, 1, 5, 5, 19, 61}},
      {7, 1, {1, 3, 7, 11, 23, 15, 103}},
      {7, 4, {1, 3, 7, 13, 13, 15, 69}},
  };
  return table;
}

namespace {

constexpr int kBits = 52;  // bits per coordinate (a double has 53)

// Direction numbers v_1..v_kBits of one dimension, as kBits-bit integers.
std::array<std::uint64_t, kBits> directions(std::size_t dim) {
  std::array<std::uint64_t, kBits> v{};
  std::array<std::uint64_t, kBits + 1> m{};
  if (dim == 0) {
    for (int k = 1; k <= kBits; ++k) m[k] = 1;
  } else {
    const SobolDirection& e = sobol_table()[dim - 1];
    for (int k = 1; k <= e.degree; ++k) m[k] = e.m[static_cast<std::size_t>(k - 1)];
    for (int k = e.degree + 1; k <= kBits; ++k) {
      std::uint64_t x = m[k - e.degree] ^ (m[k - e.degree] << e.degree);
      for (int i = 1; i < e.degree; ++i) {
        if ((e.a >> (e.degree - 1 - i)) & 1u) x ^= m[k - i] << i;
      }
      m[k] = x;
    }
  }
  for (int k = 1; k <= kBits; ++k) v[k - 1] = m[k] << (kBits - k);
  return v;
}

class SobolSampler : public Sampler {
 public:
  SobolSampler(Space space, bool scramble, std::uint64_t seed)
      : space_(std::move(space)), scramble_(scramble), seed_(seed) {}

  Result<std::optional<nlohmann::json>> ask(const History&, std::int64_t number) override {
    struct SobolDecider : Decider {
      SobolSampler& self;
      std::uint64_t index;
      std::mt19937_64 padding;
      std::size_t next = 0;
      SobolDecider(SobolSampler& s, std::int64_t number)
          : self(s),
            index(static_cast<std::uint64_t>(number)),
            padding(make_rng(s.seed_, number, 0x9add)) {}
      double decide(const Dimension& d) override {
        std::size_t j = next++;
        if (j > sobol_table().size()) return from_unit(d, uniform01(padding));
        return from_unit(d, self.coordinate(j, index));
      }
    } decider(*this, number);
    return space_.sample(decider);
  }
  std::string name() const override { return "sobol"; }

 private:
  double coordinate(std::size_t dim, std::uint64_t index) {
    while (dims_.size() <= dim) dims_.push_back(scrambled(dims_.size()));
    const auto& [v, shift] = dims_[dim];
    std::uint64_t x = shift;
    for (std::size_t k = 0; index != 0 && k < kBits; ++k, index >>= 1) {
      if (index & 1u) x ^= v[k];
    }
    return static_cast<double>(x) * 0x1.0p-52;
  }

  // Linear matrix scrambling (Matousek): output digit r is input digit r
  // XOR a random subset of the more significant input digits; it is linear,
  // so it applies to the direction numbers. Then a random digital shift.
  std::pair<std::array<std::uint64_t, kBits>, std::uint64_t> scrambled(std::size_t dim) const {
    auto v = directions(dim);
    if (!scramble_) return {v, 0};
    auto rng = make_rng(seed_, static_cast<std::int64_t>(dim), 0x50b01ull);
    constexpr std::uint64_t kAll = (std::uint64_t{1} << kBits) - 1;
    std::array<std::uint64_t, kBits> rows{};
    for (int r = 0; r < kBits; ++r) {
      const std::uint64_t digit = std::uint64_t{1} << (kBits - 1 - r);
      const std::uint64_t more_significant = kAll & ~((digit << 1) - 1);
      rows[static_cast<std::size_t>(r)] = digit | (rng() & more_significant);
    }
    for (auto& x : v) {
      std::uint64_t y = 0;
      for (int r = 0; r < kBits; ++r) {
        if (__builtin_parityll(x & rows[static_cast<std::size_t>(r)])) {
          y |= std::uint64_t{1} << (kBits - 1 - r);
        }
      }
      x = y;
    }
    return {v, rng() & kAll};
  }

  Space space_;
  bool scramble_;
  std::uint64_t seed_;
  std::vector<std::pair<std::array<std::uint64_t, kBits>, std::uint64_t>> dims_;  // cache only
};

}  // namespace

std::unique_ptr<Sampler> make_sobol(const Space& space, bool scramble, std::uint64_t seed) {
  return std::make_unique<SobolSampler>(space, scramble, seed);
}

}  // namespace hpo::search::detail
