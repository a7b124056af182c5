#include "engine/ir/graph.h"

#include "engine/ir/gate.h"
#include "engine/ir/gate_registry.h"

namespace backflow {
namespace {

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

}  // namespace

Graph::Graph(const GateRegistry& gates) : registry_(&gates) {}

StatusOr<ValueId> Graph::AddValue(Value value) {
  if (value.name.empty()) return InvalidArgumentError("a tensor has an empty name");
  if (by_name_.count(value.name)) {
    return InvalidArgumentError("node " + Quote(value.name) + ": duplicate name");
  }
  const ValueId id = static_cast<ValueId>(values_.size());
  by_name_.emplace(value.name, id);
  values_.push_back(std::move(value));
  return id;
}

StatusOr<ValueId> Graph::AddPlaceholder(std::string name, Shape shape, DType dtype) {
  for (int i = 0; i < shape.rank(); ++i) {
    if (shape.dim(i) == kBatchDim && i == 0) continue;
    if (shape.dim(i) <= 0) {
      return InvalidArgumentError("placeholder " + Quote(name) + ": dimension " +
                                  std::to_string(i) + " is " + std::to_string(shape.dim(i)) +
                                  " (only dimension 0 may be -1, the batch)");
    }
  }
  return AddValue(Value{.name = std::move(name), .kind = ValueKind::kPlaceholder,
                        .shape = std::move(shape),
                        .dtype = IsInteger(dtype) ? dtype : DType::kFloat32});
}

namespace {

Status CheckModelValue(std::string_view kind, const std::string& name,
                                  const Shape& shape, const InitializerSpec& init) {
  for (int i = 0; i < shape.rank(); ++i) {
    if (shape.dim(i) <= 0) {
      return InvalidArgumentError(std::string(kind) + " " + Quote(name) + ": dimension " +
                                  std::to_string(i) + " is " + std::to_string(shape.dim(i)) +
                                  " (" + std::string(kind) + "s need a fully defined shape)");
    }
  }
  if (init.kind == InitializerSpec::Kind::kValue && (!init.value || init.value->shape() != shape)) {
    return InvalidArgumentError(std::string(kind) + " " + Quote(name) +
                                ": initial value has shape " +
                                (init.value ? init.value->shape().ToString() : "none") +
                                ", expected " + shape.ToString());
  }
  return Status::Ok();
}

}  // namespace

std::string_view ValueKindName(ValueKind kind) {
  switch (kind) {
    case ValueKind::kPlaceholder: return "placeholder";
    case ValueKind::kParameter: return "parameter";
    case ValueKind::kConstant: return "constant";
    case ValueKind::kNode: return "node";
    case ValueKind::kState: return "state";
  }
  return "value";
}

StatusOr<ValueId> Graph::AddParameter(std::string name, Shape shape, InitializerSpec init) {
  BF_RETURN_IF_ERROR(CheckModelValue("parameter", name, shape, init));
  return AddValue(Value{.name = std::move(name), .kind = ValueKind::kParameter,
                        .shape = std::move(shape), .init = std::move(init)});
}

StatusOr<ValueId> Graph::AddState(std::string name, Shape shape, InitializerSpec init) {
  BF_RETURN_IF_ERROR(CheckModelValue("state", name, shape, init));
  return AddValue(Value{.name = std::move(name), .kind = ValueKind::kState,
                        .shape = std::move(shape), .init = std::move(init)});
}

StatusOr<ValueId> Graph::AddConstant(std::string name, Tensor value) {
  Shape shape = value.shape();
  return AddValue(Value{.name = std::move(name), .kind = ValueKind::kConstant,
                        .shape = std::move(shape),
                        .constant = std::make_shared<const Tensor>(std::move(value))});
}

StatusOr<ValueId> Graph::AddNode(std::string name, std::string_view op,
                                 std::vector<ValueId> inputs, Attributes attrs,
                                 NodeId forward_node) {
  const std::string where = "node " + Quote(name);
  if (name.empty()) return InvalidArgumentError("a node of op " + Quote(op) + " has no name");
  if (by_name_.count(name)) return InvalidArgumentError(where + ": duplicate name");
  StatusOr<const Gate*> found = registry_->Lookup(op);
  if (!found.ok()) return found.status().WithPrefix(where);
  const Gate* gate = *found;
  std::vector<Shape> shapes;
  for (ValueId in : inputs) {
    if (in < 0 || in >= num_values()) return InvalidArgumentError(where + ": bad input id");
    const int position = static_cast<int>(shapes.size());
    if (IsInteger(value(in).dtype) && !gate->accepts_integer(position)) {
      return InvalidArgumentError(where + ": input " + std::to_string(position) + " (" +
                                  Quote(value(in).name) + ") is " +
                                  std::string(DTypeName(value(in).dtype)) + ", but op " +
                                  Quote(op) + " takes a float tensor there");
    }
    shapes.push_back(value(in).shape);
  }
  BF_ASSIGN_OR_RETURN(Shape shape, gate->CheckAndInferShape(name, op, shapes, attrs));

  const NodeId node_id = static_cast<NodeId>(nodes_.size());
  BF_ASSIGN_OR_RETURN(ValueId out, AddValue(Value{.name = name, .kind = ValueKind::kNode,
                                                  .shape = std::move(shape),
                                                  .producer = node_id}));
  nodes_.push_back(Node{.name = std::move(name), .op = std::string(op), .gate = gate,
                        .inputs = std::move(inputs), .output = out, .attrs = std::move(attrs),
                        .forward_node = forward_node});
  return out;
}

std::optional<ValueId> Graph::Find(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) return std::nullopt;
  return it->second;
}

std::string Graph::UniqueName(std::string_view base) const {
  std::string name(base);
  for (int k = 1; by_name_.count(name); ++k) name = std::string(base) + "_" + std::to_string(k);
  return name;
}

std::vector<ValueId> Graph::ValuesOfKind(ValueKind kind) const {
  std::vector<ValueId> ids;
  for (ValueId i = 0; i < num_values(); ++i) {
    if (value(i).kind == kind) ids.push_back(i);
  }
  return ids;
}

std::vector<bool> ValuesNeededFor(const Graph& graph, std::span<const ValueId> fetches) {
  std::vector<bool> needed(static_cast<size_t>(graph.num_values()), false);
  std::vector<ValueId> stack(fetches.begin(), fetches.end());
  while (!stack.empty()) {
    const ValueId v = stack.back();
    stack.pop_back();
    if (needed[static_cast<size_t>(v)]) continue;
    needed[static_cast<size_t>(v)] = true;
    const NodeId producer = graph.value(v).producer;
    if (producer == kNoId) continue;
    const Node& node = graph.node(producer);
    stack.insert(stack.end(), node.inputs.begin(), node.inputs.end());
    if (node.forward_node != kNoId) stack.push_back(graph.node(node.forward_node).output);
  }
  return needed;
}

}  // namespace backflow
