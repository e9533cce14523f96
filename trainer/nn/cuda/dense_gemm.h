// The three cuBLAS products of a dense layer, as plain numbers so that a host test can run
// them through a reference column-major GEMM and compare with the CPU backend.
//
// Row-major Y[N,U] = X[N,K] W[U,K]^T + b. cuBLAS is column-major, where a row-major [R,C] matrix
// reads as its [C,R] transpose, so each product is written for the transposes:
//   forward:         Y^T[U,N]  = op(W^T[K,U] stored) * X^T[K,N]     A = W,  B = X,  C = Y
//   weights grad:    dW^T[K,U] = X^T[K,N] * op(dY^T[U,N] stored)    A = X,  B = dY, C = dW
//   data grad:       dX^T[K,N] = W^T[K,U] * dY^T[U,N]               A = W,  B = dY, C = dX
// C = A' B' with beta 0 (backward overwrites, backend.h).
#pragma once

namespace hpo::nn::gpu {

struct Gemm {
  bool transpose_a = false;
  bool transpose_b = false;
  int m = 0, n = 0, k = 0;        // C is m x n, the inner dimension k
  int lda = 0, ldb = 0, ldc = 0;  // leading dimensions (column-major)
};

inline Gemm dense_forward_gemm(int batch, int inputs, int units) {
  return {true, false, units, batch, inputs, inputs, inputs, units};
}
inline Gemm dense_weights_gemm(int batch, int inputs, int units) {
  return {false, true, inputs, units, batch, inputs, units, inputs};
}
inline Gemm dense_data_gemm(int batch, int inputs, int units) {
  return {false, false, inputs, batch, units, inputs, units, inputs};
}

}  // namespace hpo::nn::gpu
