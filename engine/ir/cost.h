// Cost: a static estimate of the floating-point work in one forward pass of a graph.
//
// The figure is for ONE sample: the open batch dimension (kBatchDim) counts as 1, so the number
// is what a batch of N costs divided by N, and can be compared with published per-image FLOPs.
// It is a model, not a measurement; it exists so that a server can report "how big is this
// graph" and budget work before running anything.
//
// The model: each forward node costs what its gate's Flops rule says (engine/ir/gate.h), on the
// node's shapes with the batch dimension as 1. The rules live with the gates; in short:
//   matmul, linear        2 * out * K (K the contracted dimension; a multiply-add counts 2, as
//                         the usual FLOPs figures for LeNet-5 and AlexNet do), plus out for a bias
//   conv2d                2 * out * C * KH * KW, plus out for a bias
//   max_pool2d, avg_pool2d
//                         out * KH * KW (one comparison or addition per tap)
//   losses, accuracy      5 per element of the first input (kLossFlopsPerElement in
//                         engine/gates/loss.h): a handful of exp/log/compare/add steps each
//   anything else         out: one FLOP per output element (elementwise math, reductions, and
//                         also pure data movement such as flatten, which keeps the rule uniform)
//
// Only forward nodes count: a node with Node::forward_node != kNoId reads a forward node's
// saved state and is backward, and is skipped. Pass the graph as ImportGraph made it (before
// AppendBackward), since other backward nodes cannot be told apart from forward ones.
//
// Arithmetic saturates: every product and sum is capped at INT64_MAX, so an absurdly large
// graph reports INT64_MAX rather than overflowing.
#ifndef BACKFLOW_ENGINE_IR_COST_H_
#define BACKFLOW_ENGINE_IR_COST_H_

#include <cstdint>

#include "engine/ir/gate.h"
#include "engine/ir/graph.h"

namespace backflow {

// FLOPs of one forward pass for one sample, under the model above. Never negative.
int64_t EstimateForwardFlops(const Graph& graph);

// The cost of one node under the same model (0 for a backward node).
int64_t EstimateNodeFlops(const Graph& graph, const Node& node);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_IR_COST_H_
