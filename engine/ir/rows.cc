#include "engine/ir/rows.h"

#include "engine/ir/gate.h"
#include "engine/ir/graph.h"

namespace backflow {

bool RowsContext::AllNone() const {
  for (Rows r : inputs) {
    if (r != Rows::kNone) return false;
  }
  return true;
}

bool RowsContext::RowsAligned(size_t i) const {
  const Shape& in = input_shapes[i];
  return inputs[i] == Rows::kEach && in.rank() == output.rank() && in.rank() > 0 &&
         in.dim(0) == kBatchDim && output.dim(0) == kBatchDim;
}

Rows RowsContext::Elementwise() const {
  if (AllNone()) return Rows::kNone;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i] == Rows::kEach) {
      if (!RowsAligned(i)) return Rows::kMixed;
    } else if (inputs[i] == Rows::kNone) {
      const Shape& in = input_shapes[i];
      if (in.rank() == output.rank() && in.rank() > 0 && in.dim(0) != 1) return Rows::kMixed;
    } else {
      return Rows::kMixed;
    }
  }
  return Rows::kEach;
}

Rows RowsContext::FirstInputRows() const {
  if (AllNone()) return Rows::kNone;
  if (inputs.empty() || !RowsAligned(0)) return Rows::kMixed;
  for (size_t i = 1; i < inputs.size(); ++i) {
    if (inputs[i] != Rows::kNone) return Rows::kMixed;
  }
  return Rows::kEach;
}

int RowsContext::Axis(std::string_view name, int64_t fallback, int rank) const {
  const int64_t axis = attrs.GetInt(name, fallback);
  const int64_t normalised = axis < 0 ? axis + rank : axis;
  return normalised < 0 || normalised >= rank ? -1 : static_cast<int>(normalised);
}

std::vector<Rows> InferenceRows(const Graph& graph) {
  std::vector<Rows> rows(static_cast<size_t>(graph.num_values()), Rows::kNone);
  for (ValueId v = 0; v < graph.num_values(); ++v) {
    const Value& value = graph.value(v);
    if (value.kind == ValueKind::kPlaceholder && value.shape.rank() > 0 &&
        value.shape.dim(0) == kBatchDim) {
      rows[static_cast<size_t>(v)] = Rows::kEach;
    }
  }
  for (const Node& node : graph.nodes()) {
    std::vector<Rows> inputs;
    std::vector<Shape> shapes;
    for (ValueId in : node.inputs) {
      inputs.push_back(rows[static_cast<size_t>(in)]);
      shapes.push_back(graph.value(in).shape);
    }
    const RowsContext ctx{inputs, shapes, graph.value(node.output).shape, node.attrs};
    rows[static_cast<size_t>(node.output)] = node.gate->BatchRows(ctx);
  }
  return rows;
}

}  // namespace backflow
