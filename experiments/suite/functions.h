// The classic test functions of the suite (problems.cpp), on plain vectors. Each is written from
// its textbook definition; the comment gives the domain the suite uses and the minimum.
#pragma once

#include <vector>

namespace hpo::suite::fn {

using Vec = std::vector<double>;

double branin(const Vec& x);            // [-5,10]x[0,15]; 0.397887 (three minima)
double six_hump_camel(const Vec& x);    // [-3,3]x[-2,2]; -1.031628 (two minima, four local)
double hartmann3(const Vec& x);         // [0,1]^3; -3.862782
double hartmann6(const Vec& x);         // [0,1]^6; -3.322368
double rosenbrock(const Vec& x);        // [-5,10]^d; 0 at (1..1): a narrow curved valley
double ackley(const Vec& x);            // [-32.768,32.768]^d; 0 at 0: many shallow minima
double rastrigin(const Vec& x);         // [-5.12,5.12]^d; 0 at 0: a regular grid of minima
double styblinski_tang(const Vec& x);   // [-5,5]^d; -39.16617 d at (-2.9035..)
double levy(const Vec& x);              // [-10,10]^d; 0 at (1..1)
double ellipsoid(const Vec& x);         // axis weights 10^(6 i/(d-1)): condition number 1e6; 0 at 0

}  // namespace hpo::suite::fn
