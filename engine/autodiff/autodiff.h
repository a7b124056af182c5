// Reverse-mode automatic differentiation by graph expansion.
//
// Note [Backward is graph nodes]
// Backward is not a second engine. AppendBackward walks the forward nodes in reverse topological
// order and asks each gate to append its vector-Jacobian product to the same Graph as ordinary
// nodes (mul, relu_grad, reduce_like, ...). The one executor then runs forward and backward
// alike, schedules independent gradient branches concurrently, and prunes whatever a run does
// not fetch. (ggml's ggml_build_backward_expand takes the same approach.)
//
// Note [Gradient accumulation at forks]
// A value read by several nodes receives one gradient contribution from each. They are summed by
// one explicit add_n node (the multivariable chain rule; micrograd's `+=`), created only when
// there is more than one contribution, before the gradient flows on to the value's producer.
//
// Only what needs a gradient gets one: a node's backward is emitted only if its output both
// reaches the target and depends on something in `wrt`, and a gate is asked only for the inputs
// that lead back to `wrt`.
#ifndef BACKFLOW_ENGINE_AUTODIFF_AUTODIFF_H_
#define BACKFLOW_ENGINE_AUTODIFF_AUTODIFF_H_

#include <span>
#include <vector>

#include "engine/core/status.h"
#include "engine/ir/graph.h"

namespace backflow {

// Appends to `graph` the nodes computing d(target)/d(v) for every v in `wrt`, and returns the
// value ids holding those gradients, in the order of `wrt` (each shaped like its v). `target`
// must hold exactly one element. A v that does not influence target gets a zero gradient.
// Fails with InvalidArgument naming the node if a gradient must flow through a gate that has
// none. On failure the graph may hold some of the appended nodes: discard it.
StatusOr<std::vector<ValueId>> AppendBackward(Graph& graph, ValueId target,
                                              std::span<const ValueId> wrt);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_AUTODIFF_AUTODIFF_H_
