// The evolution strategy of the CMA-ES sampler (cmaes.cpp): the standard
// (mu/mu_w, lambda)-CMA-ES of Hansen, "The CMA Evolution Strategy: A
// Tutorial" (2016), in the unit cube [0,1]^n, with IPOP restarts. Internal to
// search/. Pure: a state is changed only by cma_tell, and the only randomness
// is the generator passed to cma_sample.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace hpo::search::detail {

struct CmaState {
  std::size_t n = 0;            // dimensions
  std::size_t lambda = 0;       // population size of the next generation
  int restarts = 0;             // IPOP restarts so far (each doubles lambda)
  std::int64_t generation = 0;  // generations since the last (re)start
  double sigma = 0;             // step size
  std::vector<double> mean, p_sigma, p_c;
  // C = B diag(D)^2 B^T, row-major n x n; D holds the square roots of C's eigenvalues.
  std::vector<double> C, B, D;
};

// 4 + floor(3 ln n): the tutorial's default population size.
std::size_t cma_default_popsize(std::size_t n);

// A fresh state: mean at the centre of the cube, C = I.
CmaState cma_start(std::size_t n, std::size_t lambda, double sigma0, int restarts = 0);

// One generation: `best_first` holds state.lambda points (n coordinates in
// [0,1] each), ranked best first. A point need not have been drawn from this
// state (parallel asks draw from older ones): its step y = (x - mean)/sigma is
// shortened to a Mahalanobis norm of sqrt(n) + 2n/(n+2), as pycma does for
// injected solutions. Restarts from the centre with twice the population
// (IPOP) when the search collapsed (sigma * max D < 1e-8, all points of the
// generation equal), diverged (sigma * max D > 1e4) or C is ill-conditioned
// (condition number > 1e14).
void cma_tell(CmaState& state, const std::vector<const std::vector<double>*>& best_first,
              double sigma0);

// A draw mean + sigma B D z, z standard normal from `rng`; redrawn up to 100
// times until inside [0,1]^n, then clipped.
std::vector<double> cma_sample(const CmaState& state, std::mt19937_64& rng);

// Eigendecomposition of the symmetric n x n matrix `a` (row-major) by cyclic
// Jacobi rotations: a = V diag(values) V^T, V row-major with eigenvectors as
// columns.
void symmetric_eigen(std::vector<double> a, std::size_t n, std::vector<double>& vectors,
                     std::vector<double>& values);

}  // namespace hpo::search::detail
