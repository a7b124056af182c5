// Loops over broadcast operands, shared by the elementwise kernels.
#ifndef BACKFLOW_ENGINE_GATES_BROADCAST_H_
#define BACKFLOW_ENGINE_GATES_BROADCAST_H_

#include <cstdint>
#include <vector>

#include "engine/core/shape.h"

namespace backflow {

// Calls body(i, off_a, off_b) for every element i of `out` in row-major order, where off_a and
// off_b are the offsets of the elements of operands shaped `a` and `b` that broadcast to i.
// The innermost dimension runs as a tight loop with constant strides.
template <typename Body>
void ForEachBroadcast(const Shape& out, const Shape& a, const Shape& b, Body&& body) {
  const int rank = out.rank();
  const int64_t total = out.num_elements();
  if (a == out && b == out) {
    for (int64_t i = 0; i < total; ++i) body(i, i, i);
    return;
  }
  const std::vector<int64_t> sa = BroadcastStrides(a, out);
  const std::vector<int64_t> sb = BroadcastStrides(b, out);
  if (rank == 0) {
    body(0, 0, 0);
    return;
  }
  const int64_t inner = out.dim(rank - 1);
  const int64_t ia = sa[static_cast<size_t>(rank - 1)];
  const int64_t ib = sb[static_cast<size_t>(rank - 1)];
  std::vector<int64_t> index(static_cast<size_t>(rank), 0);
  int64_t base_a = 0, base_b = 0;
  for (int64_t i = 0; i < total; i += inner) {
    for (int64_t j = 0; j < inner; ++j) body(i + j, base_a + j * ia, base_b + j * ib);
    // Advance the outer multi-index (all but the innermost dimension).
    for (int d = rank - 2; d >= 0; --d) {
      const size_t k = static_cast<size_t>(d);
      ++index[k];
      base_a += sa[k];
      base_b += sb[k];
      if (index[k] < out.dim(d)) break;
      base_a -= sa[k] * index[k];
      base_b -= sb[k] * index[k];
      index[k] = 0;
    }
  }
}

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_BROADCAST_H_
