#include "engine/gates/reference/dense.h"

namespace backflow::reference {

template <typename T>
void MatMul(const MatMulDims& d, const T* a, const T* b, T* c) {
  // Element (i, p) of op(A) and (p, j) of op(B), through the strides of the stored arrays.
  const int64_t a_row = d.transpose_a ? 1 : d.k;
  const int64_t a_col = d.transpose_a ? d.m : 1;
  const int64_t b_row = d.transpose_b ? 1 : d.n;
  const int64_t b_col = d.transpose_b ? d.k : 1;
  for (int64_t s = 0; s < d.batch; ++s) {
    const T* as = a + s * d.m * d.k;
    const T* bs = b + s * d.k * d.n;
    T* cs = c + s * d.m * d.n;
    for (int64_t i = 0; i < d.m; ++i) {
      for (int64_t j = 0; j < d.n; ++j) {
        double acc = 0.0;
        for (int64_t p = 0; p < d.k; ++p) {
          acc += static_cast<double>(as[i * a_row + p * a_col]) *
                 static_cast<double>(bs[p * b_row + j * b_col]);
        }
        cs[i * d.n + j] = static_cast<T>(acc);
      }
    }
  }
}

template <typename T>
void Linear(int64_t rows, int64_t in, int64_t out, const T* x, const T* w, const T* bias, T* y) {
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < out; ++j) {
      double acc = bias != nullptr ? static_cast<double>(bias[j]) : 0.0;
      for (int64_t p = 0; p < in; ++p) {
        acc += static_cast<double>(x[i * in + p]) * static_cast<double>(w[p * out + j]);
      }
      y[i * out + j] = static_cast<T>(acc);
    }
  }
}

template void MatMul<float>(const MatMulDims&, const float*, const float*, float*);
template void MatMul<double>(const MatMulDims&, const double*, const double*, double*);
template void Linear<float>(int64_t, int64_t, int64_t, const float*, const float*, const float*,
                            float*);
template void Linear<double>(int64_t, int64_t, int64_t, const double*, const double*, const double*,
                             double*);

}  // namespace backflow::reference
