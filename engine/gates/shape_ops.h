// Gates that change a tensor's shape but not its elements (row-major order is kept).
//
//   reshape  y = x viewed as `shape`                 dL/dx = dy viewed as x's shape
//
// "shape" (ints, required) follows ONNX Reshape: 0 copies the input's dimension at that index,
// one -1 is inferred from the element count, and no other negative value is allowed. When x
// holds the open batch dimension, a copied open dimension stays open, and so does a -1 whose
// size depends on the batch (for [N, 6] -> [-1] the graph records [N] though a run yields 6N:
// the rule is re-run on concrete shapes when a plan is compiled, and the concrete sizes are what
// later gates see there).
//
// The backward is the internal gate "reshape_like" (inputs dy, x): dy copied into x's shape.
#ifndef BACKFLOW_ENGINE_GATES_SHAPE_OPS_H_
#define BACKFLOW_ENGINE_GATES_SHAPE_OPS_H_

namespace backflow {

class GateRegistry;
void RegisterShapeGates(GateRegistry& registry);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_SHAPE_OPS_H_
