// The OpenMP team one node's oneDNN primitives get: the gate states its work (Gate::Flops,
// Gate::compute_bound) and the runtime decides (Note [Team size per primitive] in
// engine/runtime/dnnl_runtime.h). The plan compiles each node's kernel inside a TeamScope of
// this size.
#ifndef BACKFLOW_ENGINE_EXEC_TEAM_H_
#define BACKFLOW_ENGINE_EXEC_TEAM_H_

#include <span>

#include "engine/core/shape.h"
#include "engine/ir/attributes.h"
#include "engine/ir/gate.h"

namespace backflow {

// 1, or every core of CoreBudget::Global(), for one application of `gate` on concrete shapes.
int TeamForNode(const Gate& gate, std::span<const Shape> inputs, const Shape& output,
                const Attributes& attrs);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_EXEC_TEAM_H_
