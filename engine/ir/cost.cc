#include "engine/ir/cost.h"

#include <array>
#include <limits>
#include <string_view>

namespace backflow {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// Saturating arithmetic on non-negative counts.
int64_t SatMul(int64_t a, int64_t b) {
  int64_t r = 0;
  return __builtin_mul_overflow(a, b, &r) ? kMax : r;
}
int64_t SatAdd(int64_t a, int64_t b) {
  int64_t r = 0;
  return __builtin_add_overflow(a, b, &r) ? kMax : r;
}

// A dimension for one sample: the open batch dimension counts as 1.
int64_t SampleDim(int64_t d) { return d == kBatchDim ? 1 : (d < 0 ? 0 : d); }

int64_t SampleElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape.dims()) n = SatMul(n, SampleDim(d));
  return n;
}

const Shape& InputShape(const Graph& graph, const Node& node, size_t i) {
  return graph.value(node.inputs[i]).shape;
}

int64_t OutputElements(const Graph& graph, const Node& node) {
  return SampleElements(graph.value(node.output).shape);
}

// 2 * out * K, K being a's last dimension (or its next-to-last when transposed).
int64_t MatMulFlops(const Graph& graph, const Node& node) {
  const Shape& a = InputShape(graph, node, 0);
  if (a.rank() < 2) return OutputElements(graph, node);
  const bool transpose_a = node.attrs.GetInt("transpose_a", 0) == 1;
  const int64_t k = SampleDim(a.dim(transpose_a ? a.rank() - 2 : a.rank() - 1));
  return SatMul(2, SatMul(OutputElements(graph, node), k));
}

// 2 * out * in, + out for the bias: x is [rows, in].
int64_t LinearFlops(const Graph& graph, const Node& node) {
  const Shape& x = InputShape(graph, node, 0);
  const int64_t out = OutputElements(graph, node);
  const int64_t in = x.rank() > 0 ? SampleDim(x.dim(x.rank() - 1)) : 1;
  const int64_t bias = node.inputs.size() > 2 ? out : 0;
  return SatAdd(SatMul(2, SatMul(out, in)), bias);
}

// 2 * out * C * KH * KW, + out for the bias: w is [O, C, KH, KW].
int64_t Conv2dFlops(const Graph& graph, const Node& node) {
  const Shape& w = InputShape(graph, node, 1);
  const int64_t out = OutputElements(graph, node);
  if (w.rank() != 4) return out;
  const int64_t taps =
      SatMul(SampleDim(w.dim(1)), SatMul(SampleDim(w.dim(2)), SampleDim(w.dim(3))));
  const int64_t bias = node.inputs.size() > 2 ? out : 0;
  return SatAdd(SatMul(2, SatMul(out, taps)), bias);
}

// out * KH * KW.
int64_t PoolFlops(const Graph& graph, const Node& node) {
  int64_t taps = 1;
  for (int64_t k : node.attrs.GetInts("kernel", {})) taps = SatMul(taps, SampleDim(k));
  return SatMul(OutputElements(graph, node), taps);
}

// kLossFlopsPerElement per element of the first input (the loss itself is a scalar).
int64_t LossFlops(const Graph& graph, const Node& node) {
  if (node.inputs.empty()) return OutputElements(graph, node);
  return SatMul(kLossFlopsPerElement, SampleElements(InputShape(graph, node, 0)));
}

struct CostRule {
  std::string_view op;
  int64_t (*flops)(const Graph&, const Node&);
};

// The ops whose cost is not one FLOP per output element.
constexpr std::array<CostRule, 10> kRules = {{
    {"matmul", MatMulFlops},
    {"linear", LinearFlops},
    {"conv2d", Conv2dFlops},
    {"max_pool2d", PoolFlops},
    {"avg_pool2d", PoolFlops},
    {"squared_error", LossFlops},
    {"softmax_cross_entropy", LossFlops},
    {"svm_hinge", LossFlops},
    {"sigmoid_cross_entropy", LossFlops},
    {"accuracy", LossFlops},
}};

}  // namespace

int64_t EstimateNodeFlops(const Graph& graph, const Node& node) {
  if (node.forward_node != kNoId) return 0;
  for (const CostRule& rule : kRules) {
    if (rule.op == node.op) return rule.flops(graph, node);
  }
  return OutputElements(graph, node);
}

int64_t EstimateForwardFlops(const Graph& graph) {
  int64_t total = 0;
  for (const Node& node : graph.nodes()) total = SatAdd(total, EstimateNodeFlops(graph, node));
  return total;
}

}  // namespace backflow
