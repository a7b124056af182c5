// Reference dense linear algebra: the oracle for the oneDNN kernels.
//
// Plain triple loops, written to be obviously correct rather than fast. They are the float64
// kernels of matmul and linear (oneDNN on Debian computes float32 only) and, in tests, the
// values the float32 oneDNN kernels are compared with. Every dot product accumulates in double
// in increasing order of the inner index, whatever T is, so a result depends only on the
// operands and is reproducible bit for bit.
//
// All arrays are dense and row-major; "transposed" means the operand is stored as the
// transpose of its logical shape (a [K, M] array used as an [M, K] matrix).
#ifndef BACKFLOW_ENGINE_GATES_REFERENCE_DENSE_H_
#define BACKFLOW_ENGINE_GATES_REFERENCE_DENSE_H_

#include <cstdint>

namespace backflow::reference {

// The sizes of C[b] = op(A[b]) op(B[b]) for b < batch, op(A) [m, k], op(B) [k, n], C [m, n].
struct MatMulDims {
  int64_t batch = 1;
  int64_t m = 0;
  int64_t k = 0;
  int64_t n = 0;
  bool transpose_a = false;  // A[b] is stored [k, m]
  bool transpose_b = false;  // B[b] is stored [n, k]
};

// Writes every element of c (batch * m * n elements); a, b and c must not overlap.
template <typename T>
void MatMul(const MatMulDims& dims, const T* a, const T* b, T* c);

// y = x w + bias: x [rows, in], w [in, out], bias [out] or null, y [rows, out].
template <typename T>
void Linear(int64_t rows, int64_t in, int64_t out, const T* x, const T* w, const T* bias, T* y);

extern template void MatMul<float>(const MatMulDims&, const float*, const float*, float*);
extern template void MatMul<double>(const MatMulDims&, const double*, const double*, double*);
extern template void Linear<float>(int64_t, int64_t, int64_t, const float*, const float*,
                                   const float*, float*);
extern template void Linear<double>(int64_t, int64_t, int64_t, const double*, const double*,
                                    const double*, double*);

}  // namespace backflow::reference

#endif  // BACKFLOW_ENGINE_GATES_REFERENCE_DENSE_H_
