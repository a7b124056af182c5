// The plumbing gates autodiff and backward rules are built from.
//
//   add_n        y = x1 + x2 + ... (same shapes)        dL/dxi = dy
//                The explicit sum of gradients at a fork (Note [Gradient accumulation at forks]).
//   fill_like    y = value, shaped like x (internal)     seeds dL/dL = 1
//   reduce_like  y = g summed over the dimensions along which `ref` broadcast to g's shape,
//                shaped like ref (internal)
#ifndef BACKFLOW_ENGINE_GATES_GRADIENT_OPS_H_
#define BACKFLOW_ENGINE_GATES_GRADIENT_OPS_H_

#include "engine/core/status.h"
#include "engine/ir/gate.h"

namespace backflow {

class GateRegistry;
void RegisterGradientGates(GateRegistry& registry);

// `grad` summed back to the shape of `ref` when the forward pass broadcast `ref`; `grad` itself
// when the shapes already agree.
StatusOr<ValueId> SumToShapeOf(BackwardContext& ctx, ValueId grad, ValueId ref);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_GRADIENT_OPS_H_
