// Helpers shared by the trainer/nn tests: tensors from host vectors, deterministic random data,
// and tests/support's temporary directories.
#pragma once

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"
#include "trainer/nn/backend.h"

namespace hpo::nn::test {

using hpo::test::TempDir;

inline std::vector<float> random_vector(size_t n, uint64_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

inline Tensor tensor(Backend& b, const TensorDesc& desc, const std::vector<float>& host) {
  auto t = b.alloc(desc);
  REQUIRE(t.has_value());
  REQUIRE(host.size() == size_t(desc.count()));
  b.upload(*t, host.data());
  return std::move(*t);
}

inline Tensor zeros(Backend& b, const TensorDesc& desc) {
  auto t = b.alloc(desc);
  REQUIRE(t.has_value());
  return std::move(*t);
}

inline std::vector<float> host(Backend& b, const Tensor& t) {
  std::vector<float> v(size_t(t.desc().count()));
  b.download(t, v.data());
  return v;
}

inline double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * b[i];
  return s;
}

// Every element of `got` within atol + rtol * |want|.
inline void require_close(const std::vector<float>& got, const std::vector<float>& want,
                          double atol = 1e-4, double rtol = 1e-3) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
    REQUIRE(std::abs(double(got[i]) - want[i]) <= atol + rtol * std::abs(double(want[i])));
  }
}

}  // namespace hpo::nn::test
