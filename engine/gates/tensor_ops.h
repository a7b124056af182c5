// Gates that move elements without arithmetic. dy is dL/dy; every gradient has its input's shape.
//
//   flatten    y = x viewed as [d0 * ... * d(axis-1), d(axis) * ... * d(r-1)]
//              dL/dx = dy viewed as x's shape                      (internal gate reshape_like)
//   transpose  y[i0, ..., i(r-1)] = x[j] with j[perm[k]] = ik, i.e. dimension k of y is
//              dimension perm[k] of x
//              dL/dx = transpose(dy) with the inverse permutation
//   concat     y = x1, x2, ..., xn joined along `axis`
//              dL/dxi = the part of dy that xi was copied into      (internal gate concat_grad)
//
// Attributes:
//   flatten    axis (int, default 1): in [-r, r], negative counting from the end; axis 0 gives
//              [1, all], axis r gives [all, 1] (ONNX Flatten).
//   transpose  perm (ints): a permutation of 0..r-1; absent or empty reverses the dimensions.
//   concat     axis (int, required): in [-r, r-1]. Inputs must have one rank and agree on every
//              other dimension.
//
// Open batch dimensions carry through transpose as they are. A flatten group or a concat axis
// that holds an open dimension is recorded as open, though a run's size is then a multiple of
// the batch (flatten of [N, 3] at axis 0 gives [1, 3N]): as for reshape, the rule is re-run on
// concrete shapes when a plan is compiled, and later gates see the concrete sizes there. An open
// dimension agrees only with another open one.
//
// concat_grad (internal; inputs dy, x1, ..., xn; attributes axis, normalised, and index i) cuts
// xi's part out of dy. It takes every x so that the offset of xi's part is known from concrete
// shapes even when the parts' sizes depend on the batch.
#ifndef BACKFLOW_ENGINE_GATES_TENSOR_OPS_H_
#define BACKFLOW_ENGINE_GATES_TENSOR_OPS_H_

namespace backflow {

class GateRegistry;
void RegisterTensorGates(GateRegistry& registry);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_TENSOR_OPS_H_
