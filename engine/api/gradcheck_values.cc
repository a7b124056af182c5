#include "engine/api/gradcheck_values.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>

#include "engine/ir/gate.h"
#include "engine/optim/initializers.h"

namespace backflow::gradcheck_internal {
namespace {

std::string Quote(const std::string& name) { return "'" + name + "'"; }

bool Feedable(const Value& value) {
  return value.kind == ValueKind::kPlaceholder || value.kind == ValueKind::kParameter ||
         value.kind == ValueKind::kState;
}

// The given values by name, float ones in float64.
StatusOr<ValueMap> ConvertGiven(const Graph& graph, const ValueMap& given) {
  ValueMap values;
  for (const auto& [name, tensor] : given) {
    std::optional<ValueId> id = graph.Find(name);
    if (!id || !Feedable(graph.value(*id))) {
      return InvalidArgumentError("value " + Quote(name) +
                                  ": not a placeholder, parameter or state of the graph");
    }
    values.emplace(name, IsInteger(tensor.dtype()) ? tensor : tensor.CastTo(DType::kFloat64));
  }
  return values;
}

// The batch size of the given values fed to placeholders with a batch dimension, else `batch`.
int64_t BatchOf(const Graph& graph, const ValueMap& given, int64_t batch) {
  for (const auto& [name, tensor] : given) {
    const Value& value = graph.value(*graph.Find(name));
    if (value.kind == ValueKind::kPlaceholder && value.shape.rank() > 0 &&
        value.shape.dim(0) == kBatchDim && tensor.shape().rank() > 0) {
      return tensor.shape().dim(0);
    }
  }
  return batch;
}

// For a placeholder of class ids or token ids: the number of ids its readers accept (the rows
// of an embedding table, the classes of a loss's scores); nullopt if it is not read as ids or
// the number cannot be told.
std::optional<int64_t> IdRange(const Graph& graph, ValueId placeholder) {
  std::optional<int64_t> range;
  for (const Node& node : graph.nodes()) {
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      if (node.inputs[k] != placeholder) continue;
      if (!node.gate->accepts_integer(static_cast<int>(k)) || k == 0) return std::nullopt;
      const Shape& scores = graph.value(node.inputs[0]).shape;
      if (scores.rank() == 0) return std::nullopt;
      const int64_t n = node.op == "embedding" ? scores.dim(0) : scores.dim(scores.rank() - 1);
      if (n <= 0) return std::nullopt;
      range = std::min(range.value_or(n), n);
    }
  }
  return range;
}

double Uniform(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;  // from the raw bits: portable
}

// The placeholder's shape with `batch`, if it holds at most `max_elements` elements.
StatusOr<Shape> DrawnShape(const Value& value, int64_t batch, int64_t max_elements) {
  int64_t per_row = 1;
  for (int64_t d : value.shape.dims()) per_row *= d == kBatchDim ? 1 : d;
  const bool batched = value.shape.rank() > 0 && value.shape.dim(0) == kBatchDim;
  if (per_row > max_elements || (batched && batch > max_elements / std::max<int64_t>(per_row, 1))) {
    return ResourceExhaustedError("placeholder " + Quote(value.name) + " drawn with batch " +
                                  std::to_string(batch) + " would hold more than " +
                                  std::to_string(max_elements) + " elements");
  }
  return value.shape.WithBatch(batch);
}

StatusOr<Tensor> DrawPlaceholder(const Graph& graph, ValueId id, int64_t batch,
                                 int64_t max_elements, std::mt19937_64& rng) {
  const Value& value = graph.value(id);
  BF_ASSIGN_OR_RETURN(const Shape shape, DrawnShape(value, batch, max_elements));
  const std::optional<int64_t> ids = IdRange(graph, id);
  if (IsInteger(value.dtype) && !ids) {
    return InvalidArgumentError("placeholder " + Quote(value.name) +
                                " is integer and its range is unknown: give it a value");
  }
  Tensor drawn(DType::kFloat64, shape);
  for (int64_t i = 0; i < drawn.num_elements(); ++i) {
    const double u = Uniform(rng);
    drawn.data<double>()[i] =
        ids ? std::min(static_cast<double>(*ids) - 1, std::floor(u * static_cast<double>(*ids)))
            : 2.0 * u - 1.0;
  }
  return IsInteger(value.dtype) ? drawn.CastTo(value.dtype) : drawn;
}

}  // namespace

StatusOr<ValueMap> CompleteValues(const Graph& graph, const std::vector<bool>& needed,
                                  const ValueMap& given, const GradCheckSpec& spec,
                                  std::vector<std::string>* drawn) {
  BF_ASSIGN_OR_RETURN(ValueMap values, ConvertGiven(graph, given));
  const int64_t batch = BatchOf(graph, given, spec.batch);
  std::mt19937_64 rng(spec.seed);
  for (ValueId v = 0; v < graph.num_values(); ++v) {
    const Value& value = graph.value(v);
    if (!needed[static_cast<size_t>(v)] || !Feedable(value) || values.count(value.name) != 0) {
      continue;
    }
    if (value.kind == ValueKind::kPlaceholder) {
      BF_ASSIGN_OR_RETURN(Tensor t, DrawPlaceholder(graph, v, batch, spec.max_tensor_elements, rng));
      values.emplace(value.name, std::move(t));
    } else {
      BF_ASSIGN_OR_RETURN(Tensor t, InitializeParameter(value, DType::kFloat64, spec.seed));
      values.emplace(value.name, std::move(t));
    }
    drawn->push_back(value.name);
  }
  std::sort(drawn->begin(), drawn->end());
  return values;
}

}  // namespace backflow::gradcheck_internal
