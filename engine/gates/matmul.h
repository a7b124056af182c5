// Dense matrix products. dy is dL/dy; op(a) is a, or a^T when transpose_a = 1 (likewise b).
//
//   matmul  y = op(a) op(b)
//           dL/da = dy op(b)^T     (transpose_a = 0)     dL/db = op(a)^T dy   (transpose_b = 0)
//           dL/da = op(b) dy^T     (transpose_a = 1)     dL/db = dy^T op(a)   (transpose_b = 1)
//   linear  y = x w + b            dL/dx = dy w^T,  dL/dw = x^T dy,  dL/db = dy summed over rows
//
// matmul takes two 2-D operands, op(a) [M, K] and op(b) [K, N] giving [M, N], or two 3-D
// operands, [B, M, K] and [B, K, N] giving [B, M, N] (one product per leading index; transposes
// swap the last two dimensions). Attributes: transpose_a, transpose_b (int 0 or 1, default 0).
// linear takes x [rows, in], w [in, out] and optionally b [out], giving [rows, out].
//
// Open batch dimensions may stand anywhere, typically as the rows of a or x. An open dimension
// matches only another open dimension (the two are the same batch size by definition); matching
// one with a known size is rejected, so that every gradient has exactly its input's shape.
// Shape errors name the node and both operands: "node 'h': inner dimensions differ:
// [N, 784] x [785, 256]".
//
// The backward is made of ordinary nodes: matmul nodes with the transposes above (no copies of
// transposed operands are made), and for linear's bias a "sum" over axis 0.
//
// Kernels: float32 runs one oneDNN matmul primitive built at compile time (see Note [oneDNN
// matmul layouts] in matmul.cc); float64 runs the reference loops of reference/dense.h.
#ifndef BACKFLOW_ENGINE_GATES_MATMUL_H_
#define BACKFLOW_ENGINE_GATES_MATMUL_H_

namespace backflow {

class GateRegistry;
void RegisterMatMulGates(GateRegistry& registry);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_MATMUL_H_
