#include "engine/ir/cost.h"

#include <vector>

#include "engine/core/saturating.h"

namespace backflow {
namespace {

// `shape` for one sample: the open batch dimension counts as 1.
Shape SampleShape(const Shape& shape) {
  std::vector<int64_t> dims(shape.dims().begin(), shape.dims().end());
  for (int64_t& d : dims) d = d == kBatchDim ? 1 : (d < 0 ? 0 : d);
  return Shape(std::move(dims));
}

}  // namespace

int64_t EstimateNodeFlops(const Graph& graph, const Node& node) {
  if (node.forward_node != kNoId) return 0;
  std::vector<Shape> inputs;
  inputs.reserve(node.inputs.size());
  for (ValueId in : node.inputs) inputs.push_back(SampleShape(graph.value(in).shape));
  const Shape output = SampleShape(graph.value(node.output).shape);
  return node.gate->Flops(FlopsContext{inputs, output, node.attrs});
}

int64_t EstimateForwardFlops(const Graph& graph) {
  int64_t total = 0;
  for (const Node& node : graph.nodes()) {
    total = SaturatingAdd(total, EstimateNodeFlops(graph, node));
  }
  return total;
}

}  // namespace backflow
