// The kernels of matmul and linear: oneDNN's matmul primitive for float32, the reference loops
// of reference/dense.h for float64 (see Note [oneDNN matmul layouts] in matmul_kernel.cc).
#ifndef BACKFLOW_ENGINE_GATES_MATMUL_KERNEL_H_
#define BACKFLOW_ENGINE_GATES_MATMUL_KERNEL_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/gates/reference/dense.h"
#include "engine/ir/gate.h"

namespace backflow {

// The sizes of a product: one matmul of op(a) [m, k] and op(b) [k, n] per index of out_batch,
// a_batch and b_batch being the operands' batch dimensions padded to its rank (1 where they
// broadcast). mm.batch is the number of products.
struct ProductDims {
  reference::MatMulDims mm;
  std::vector<int64_t> out_batch, a_batch, b_batch;
};

// The kernel for a product with these sizes; with bias, inputs are x, w, bias and the product
// must be a single [m, k] x [k, n] (linear).
StatusOr<std::unique_ptr<Kernel>> CompileProduct(const CompileContext& ctx, ProductDims p,
                                                 bool bias);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_MATMUL_KERNEL_H_
