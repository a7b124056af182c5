// Dense matrix products. dy is dL/dy; op(a) is a, or a^T when transpose_a = 1 (likewise b).
//
//   matmul  y = op(a) op(b)
//           dL/da = dy op(b)^T     (transpose_a = 0)     dL/db = op(a)^T dy   (transpose_b = 0)
//           dL/da = op(b) dy^T     (transpose_a = 1)     dL/db = dy^T op(a)   (transpose_b = 1)
//   linear  y = x w + b            dL/dx = dy w^T,  dL/dw = x^T dy,  dL/db = dy summed over rows
//
// matmul takes operands of rank 2 or more, op(a) [..., M, K] and op(b) [..., K, N], giving
// [..., M, N]: one product per batch index, the batch dimensions (all but the last two)
// broadcast as NumPy's matmul (right-aligned, each pair equal or one of them 1; the shorter
// operand padded with 1s). Transposes swap the last two dimensions. Attributes: transpose_a,
// transpose_b (int 0 or 1, default 0). linear takes x [..., in] (rank 2 or more, every leading
// index a row), w [in, out] and optionally b [out], giving [..., out].
//
// Open batch dimensions may stand anywhere, typically as the rows of a or x. An open dimension
// matches only another open dimension (the two are the same batch size by definition); matching
// one with a known size is rejected, so that every gradient has exactly its input's shape.
// Shape errors name the node and both operands: "node 'h': inner dimensions differ:
// [N, 784] x [785, 256]".
//
// The backward is made of ordinary nodes: matmul nodes with the transposes above (no copies of
// transposed operands are made), a reduce_like summing a gradient over the batch dimensions its
// operand was broadcast along, for linear with x of rank > 2 flatten nodes so that dw contracts
// over every row, and for linear's bias a "sum" over all leading axes.
//
// Kernels: float32 runs one oneDNN matmul primitive built at compile time (see Note [oneDNN
// matmul layouts] in matmul_kernel.cc); float64 runs the reference loops of reference/dense.h.
#ifndef BACKFLOW_ENGINE_GATES_MATMUL_H_
#define BACKFLOW_ENGINE_GATES_MATMUL_H_

namespace backflow {

class GateRegistry;
void RegisterMatMulGates(GateRegistry& registry);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_MATMUL_H_
