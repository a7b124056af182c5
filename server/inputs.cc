#include "server/inputs.h"

namespace backflow::server {
namespace {

// The placeholders `value` depends on that `fed` lacks, for choosing outputs.
std::vector<std::string> MissingInputs(const Graph& graph, ValueId value, const TensorMap& fed) {
  std::vector<std::string> missing = PlaceholdersNeeded(graph, value);
  std::erase_if(missing, [&](const std::string& name) { return fed.count(name) > 0; });
  return missing;
}

}  // namespace

std::vector<std::string> PlaceholdersNeeded(const Graph& graph, ValueId value) {
  std::vector<std::string> needed;
  std::vector<bool> seen(static_cast<size_t>(graph.num_values()), false);
  std::vector<ValueId> stack = {value};
  while (!stack.empty()) {
    const ValueId v = stack.back();
    stack.pop_back();
    if (seen[static_cast<size_t>(v)]) continue;
    seen[static_cast<size_t>(v)] = true;
    const Value& val = graph.value(v);
    if (val.kind == ValueKind::kPlaceholder) needed.push_back(val.name);
    if (val.kind == ValueKind::kNode) {
      for (ValueId input : graph.node(val.producer).inputs) stack.push_back(input);
    }
  }
  return needed;
}

Status CheckFeeds(const Graph& graph, const TensorMap& inputs, std::string_view what) {
  for (const auto& [name, _] : inputs) {
    std::optional<ValueId> id = graph.Find(name);
    const std::string where = std::string(what) + " '" + name + "'";
    if (!id) return InvalidArgumentError(where + ": not a placeholder of the graph");
    if (graph.value(*id).kind == ValueKind::kParameter) {
      return InvalidArgumentError(where + ": is a parameter; the model supplies it");
    }
    if (graph.value(*id).kind == ValueKind::kState) {
      return InvalidArgumentError(where + ": is running state; the model supplies it");
    }
    if (graph.value(*id).kind != ValueKind::kPlaceholder) {
      return InvalidArgumentError(where + ": not a placeholder of the graph");
    }
  }
  return Status::Ok();
}

StatusOr<std::vector<std::string>> DefaultOutputs(const Graph& graph, const TensorMap& inputs) {
  std::vector<std::string> names;
  std::string missing;
  for (ValueId id : graph.outputs()) {
    std::vector<std::string> lacking = MissingInputs(graph, id, inputs);
    if (lacking.empty()) {
      names.push_back(graph.value(id).name);
    } else if (missing.empty()) {
      missing = "output '" + graph.value(id).name + "' needs input '" + lacking.front() + "'";
    }
  }
  if (names.empty()) {
    return InvalidArgumentError("no output of the graph can be computed from the inputs given" +
                                (missing.empty() ? std::string() : ": " + missing));
  }
  return names;
}

StatusOr<TensorMap> DecodeInputs(const WireTensorMap& wire, const Graph& graph, DType dtype,
                                 int64_t max_elements, std::string_view what) {
  BF_ASSIGN_OR_RETURN(TensorMap inputs, DecodeTensors(wire, what, max_elements, std::nullopt));
  for (const auto& [name, tensor] : inputs) {
    // An integer placeholder takes its own dtype; every other input the model's.
    const std::optional<ValueId> id = graph.Find(name);
    const bool ids = id && IsInteger(graph.value(*id).dtype);
    const DType expected = ids ? graph.value(*id).dtype : dtype;
    if (tensor.dtype() != expected) {
      return InvalidArgumentError(std::string(what) + " '" + name + "': dtype " +
                                  std::string(DTypeName(tensor.dtype())) +
                                  (ids ? ", the placeholder is " : ", the model computes in ") +
                                  std::string(DTypeName(expected)));
    }
  }
  BF_RETURN_IF_ERROR(CheckFeeds(graph, inputs, what));
  return inputs;
}

}  // namespace backflow::server
