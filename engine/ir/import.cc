#include "engine/ir/import.h"

#include <algorithm>
#include <functional>
#include <queue>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/ir/gate.h"
#include "engine/ir/gate_registry.h"
#include "engine/ir/import_internal.h"

namespace backflow {
namespace {

namespace v1 = backflow::v1;
using import_internal::Quote;

// One import: the proto being read, the Graph being built and the lookup tables in between.
// Checks run cheapest first and whole-graph checks (names, undefined inputs) before the sort, so
// a client sees the most basic fault of its graph.
class Importer {
 public:
  Importer(const v1::Graph& proto, const GateRegistry& gates, const GraphLimits& limits)
      : proto_(proto),
        limits_(limits),
        graph_(gates),
        attrs_(static_cast<size_t>(proto.nodes_size())) {}

  StatusOr<Graph> Run();

 private:
  Status CheckSizeAndNames();
  Status RegisterName(const char* kind, int index, const std::string& name);
  Status CheckRank(size_t rank, const std::string& what) const;
  Status CheckShapeLimits(std::span<const int64_t> dims, const std::string& what) const;
  Status ImportPlaceholders();
  Status ImportParameter(const v1::Parameter& param, ValueKind kind);
  Status ImportConstants();
  Status CheckNode(int index);
  StatusOr<std::vector<int>> SortNodes() const;
  Status CycleError(const std::vector<int>& pending) const;
  Status AddNodes(const std::vector<int>& order);
  Status SetOutputsAndLoss();

  const v1::Graph& proto_;
  const GraphLimits& limits_;
  Graph graph_;
  std::unordered_map<std::string, const char*> kind_of_;  // every declared name -> its kind
  std::unordered_map<std::string, int> node_index_;       // node name -> position in the proto
  std::vector<Attributes> attrs_;                         // converted attributes, by node position
  int64_t total_parameter_elements_ = 0;
};

StatusOr<Graph> Importer::Run() {
  graph_.name = proto_.name();
  BF_RETURN_IF_ERROR(CheckSizeAndNames());
  BF_RETURN_IF_ERROR(ImportPlaceholders());
  for (const v1::Parameter& param : proto_.parameters()) {
    BF_RETURN_IF_ERROR(ImportParameter(param, ValueKind::kParameter));
  }
  for (const v1::Parameter& state : proto_.states()) {
    BF_RETURN_IF_ERROR(ImportParameter(state, ValueKind::kState));
  }
  BF_RETURN_IF_ERROR(ImportConstants());
  for (int i = 0; i < proto_.nodes_size(); ++i) BF_RETURN_IF_ERROR(CheckNode(i));
  BF_ASSIGN_OR_RETURN(const std::vector<int> order, SortNodes());
  BF_RETURN_IF_ERROR(AddNodes(order));
  BF_RETURN_IF_ERROR(SetOutputsAndLoss());
  return std::move(graph_);
}

Status Importer::CheckSizeAndNames() {
  if (proto_.nodes_size() > limits_.max_nodes) {
    return ResourceExhaustedError(
        "graph " + Quote(proto_.name()) + ": " + std::to_string(proto_.nodes_size()) +
        " nodes, more than the limit of " + std::to_string(limits_.max_nodes));
  }
  if (proto_.name().size() > limits_.max_name_length) {
    return ResourceExhaustedError(
        "graph " + Quote(proto_.name()) + ": name is " + std::to_string(proto_.name().size()) +
        " bytes, longer than the limit of " + std::to_string(limits_.max_name_length));
  }
  for (int i = 0; i < proto_.placeholders_size(); ++i) {
    BF_RETURN_IF_ERROR(RegisterName("placeholder", i, proto_.placeholders(i).name()));
  }
  for (int i = 0; i < proto_.parameters_size(); ++i) {
    BF_RETURN_IF_ERROR(RegisterName("parameter", i, proto_.parameters(i).name()));
  }
  for (int i = 0; i < proto_.states_size(); ++i) {
    BF_RETURN_IF_ERROR(RegisterName("state", i, proto_.states(i).name()));
  }
  for (int i = 0; i < proto_.constants_size(); ++i) {
    BF_RETURN_IF_ERROR(RegisterName("constant", i, proto_.constants(i).name()));
  }
  for (int i = 0; i < proto_.nodes_size(); ++i) {
    BF_RETURN_IF_ERROR(RegisterName("node", i, proto_.nodes(i).name()));
    node_index_.emplace(proto_.nodes(i).name(), i);
  }
  return Status::Ok();
}

Status Importer::RegisterName(const char* kind, int index, const std::string& name) {
  const std::string where = std::string(kind) + " " + Quote(name);
  if (name.empty()) {
    return InvalidArgumentError(std::string(kind) + " #" + std::to_string(index) +
                                " has an empty name");
  }
  if (name.size() > limits_.max_name_length) {
    return ResourceExhaustedError(where + ": name is " + std::to_string(name.size()) +
                                  " bytes, longer than the limit of " +
                                  std::to_string(limits_.max_name_length));
  }
  auto [it, inserted] = kind_of_.emplace(name, kind);
  if (!inserted) {
    return InvalidArgumentError(where + ": duplicate name (already used by a " +
                                std::string(it->second) + ")");
  }
  return Status::Ok();
}

Status Importer::CheckRank(size_t rank, const std::string& what) const {
  if (rank <= static_cast<size_t>(limits_.max_rank)) return Status::Ok();
  return ResourceExhaustedError(what + ": rank " + std::to_string(rank) +
                                " is more than the limit of " + std::to_string(limits_.max_rank));
}

Status Importer::CheckShapeLimits(std::span<const int64_t> dims, const std::string& what) const {
  BF_RETURN_IF_ERROR(CheckRank(dims.size(), what));
  return CheckedElementCount(dims, limits_.max_tensor_elements, what).status();
}

Status Importer::ImportPlaceholders() {
  for (const v1::Placeholder& p : proto_.placeholders()) {
    const std::span<const int64_t> dims(p.shape().data(), static_cast<size_t>(p.shape_size()));
    const std::string where = "placeholder " + Quote(p.name());
    BF_RETURN_IF_ERROR(CheckRank(dims.size(), where));
    // AddPlaceholder rejects bad dimensions, so the element count sees only positive sizes and
    // the open batch dimension.
    BF_ASSIGN_OR_RETURN(const DType dtype, DTypeFromProto(p.dtype(), where));
    BF_RETURN_IF_ERROR(graph_.AddPlaceholder(p.name(), Shape(dims), dtype).status());
    BF_RETURN_IF_ERROR(CheckShapeLimits(dims, where));
  }
  return Status::Ok();
}

// A parameter or a running state (the two count together toward the parameter limit).
Status Importer::ImportParameter(const v1::Parameter& param, ValueKind kind) {
  const std::span<const int64_t> dims(param.shape().data(),
                                      static_cast<size_t>(param.shape_size()));
  const std::string kind_name(ValueKindName(kind));
  const std::string where = kind_name + " " + Quote(param.name());
  BF_RETURN_IF_ERROR(CheckRank(dims.size(), where));
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] <= 0) {
      return InvalidArgumentError(where + ": dimension " + std::to_string(i) + " is " +
                                  std::to_string(dims[i]) +
                                  " (" + kind_name + "s need a fully defined shape)");
    }
  }
  BF_ASSIGN_OR_RETURN(const int64_t n,
                      CheckedElementCount(dims, limits_.max_tensor_elements, where));
  // Compared by subtraction: the sum could overflow with limits near INT64_MAX.
  if (n > limits_.max_total_parameter_elements - total_parameter_elements_) {
    return ResourceExhaustedError(where + ": brings the parameters to " +
                                  std::to_string(static_cast<uint64_t>(total_parameter_elements_) +
                                                 static_cast<uint64_t>(n)) +
                                  " elements, more than the limit of " +
                                  std::to_string(limits_.max_total_parameter_elements) +
                                  " for all parameters together");
  }
  total_parameter_elements_ += n;
  BF_ASSIGN_OR_RETURN(InitializerSpec init,
                      import_internal::ConvertInitializer(param.init(), where, Shape(dims),
                                                          limits_.max_tensor_elements));
  return (kind == ValueKind::kState ? graph_.AddState(param.name(), Shape(dims), std::move(init))
                                    : graph_.AddParameter(param.name(), Shape(dims), std::move(init)))
      .status();
}

Status Importer::ImportConstants() {
  for (const v1::Constant& c : proto_.constants()) {
    const std::string where = "constant " + Quote(c.name());
    const std::span<const int64_t> dims(c.value().shape().data(),
                                        static_cast<size_t>(c.value().shape_size()));
    BF_RETURN_IF_ERROR(CheckRank(dims.size(), where));
    BF_ASSIGN_OR_RETURN(Tensor value,
                        TensorFromProto(c.value(), where, limits_.max_tensor_elements));
    BF_RETURN_IF_ERROR(CheckAllFinite(value, where));
    BF_RETURN_IF_ERROR(graph_.AddConstant(c.name(), std::move(value)).status());
  }
  return Status::Ok();
}

Status Importer::CheckNode(int index) {
  const v1::Node& node = proto_.nodes(index);
  const std::string where = "node " + Quote(node.name());
  StatusOr<const Gate*> gate = graph_.registry().Lookup(node.op());
  if (!gate.ok()) return gate.status().WithPrefix(where);
  if ((*gate)->internal()) {
    return InvalidArgumentError(where + ": op " + Quote(node.op()) +
                                " is internal to autodiff; graphs may not use it");
  }
  if (node.inputs_size() > limits_.max_inputs_per_node) {
    return ResourceExhaustedError(where + ": " + std::to_string(node.inputs_size()) +
                                  " inputs, more than the limit of " +
                                  std::to_string(limits_.max_inputs_per_node));
  }
  for (const std::string& input : node.inputs()) {
    if (!kind_of_.count(input)) {
      return InvalidArgumentError(where + ": input " + Quote(input) + " is not defined");
    }
  }
  BF_ASSIGN_OR_RETURN(attrs_[static_cast<size_t>(index)],
                      import_internal::ConvertAttributes(node, where, limits_.max_name_length));
  return Status::Ok();
}

// Kahn's algorithm. The ready set is a min-heap of proto positions, so among nodes whose
// inputs are all available the earliest in the proto goes first: a graph already in order
// keeps its order exactly.
StatusOr<std::vector<int>> Importer::SortNodes() const {
  const size_t n = static_cast<size_t>(proto_.nodes_size());
  std::vector<int> pending(n, 0);  // inputs produced by nodes not yet placed
  std::vector<std::vector<int>> consumers(n);
  for (size_t i = 0; i < n; ++i) {
    for (const std::string& input : proto_.nodes(static_cast<int>(i)).inputs()) {
      auto it = node_index_.find(input);
      if (it == node_index_.end()) continue;  // a placeholder, parameter or constant
      ++pending[i];
      consumers[static_cast<size_t>(it->second)].push_back(static_cast<int>(i));
    }
  }
  std::priority_queue<int, std::vector<int>, std::greater<>> ready;
  for (size_t i = 0; i < n; ++i) {
    if (pending[i] == 0) ready.push(static_cast<int>(i));
  }
  std::vector<int> order;
  order.reserve(n);
  while (!ready.empty()) {
    const int i = ready.top();
    ready.pop();
    order.push_back(i);
    for (int c : consumers[static_cast<size_t>(i)]) {
      if (--pending[static_cast<size_t>(c)] == 0) ready.push(c);
    }
  }
  if (order.size() < n) return CycleError(pending);
  return order;
}

// Every unplaced node has an unplaced input node, so walking from one unplaced node to such an
// input must come back to a node already visited; the walk from that node on is a cycle.
Status Importer::CycleError(const std::vector<int>& pending) const {
  int cur = static_cast<int>(
      std::find_if(pending.begin(), pending.end(), [](int p) { return p > 0; }) - pending.begin());
  std::vector<int> walk;
  std::unordered_map<int, size_t> position;
  while (!position.count(cur)) {
    position.emplace(cur, walk.size());
    walk.push_back(cur);
    for (const std::string& input : proto_.nodes(cur).inputs()) {
      auto it = node_index_.find(input);
      if (it != node_index_.end() && pending[static_cast<size_t>(it->second)] > 0) {
        cur = it->second;
        break;
      }
    }
  }
  // The walk went from each node to one of its inputs; reversed, each node feeds the next.
  std::vector<int> cycle(walk.begin() + static_cast<std::ptrdiff_t>(position[cur]), walk.end());
  std::reverse(cycle.begin(), cycle.end());
  std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
  std::string path;
  for (int i : cycle) path += proto_.nodes(i).name() + " -> ";
  path += proto_.nodes(cycle.front()).name();
  return InvalidArgumentError("node " + Quote(proto_.nodes(cycle.front()).name()) +
                              ": is on a cycle: " + path);
}

Status Importer::AddNodes(const std::vector<int>& order) {
  for (int i : order) {
    const v1::Node& node = proto_.nodes(i);
    std::vector<ValueId> inputs;
    inputs.reserve(static_cast<size_t>(node.inputs_size()));
    for (const std::string& input : node.inputs()) inputs.push_back(*graph_.Find(input));
    BF_ASSIGN_OR_RETURN(const ValueId out,
                        graph_.AddNode(node.name(), node.op(), std::move(inputs),
                                       std::move(attrs_[static_cast<size_t>(i)])));
    // Shape rules can grow tensors (broadcasting, reshape), so the limits apply to outputs too.
    BF_RETURN_IF_ERROR(CheckShapeLimits(graph_.value(out).shape.dims(),
                                        "node " + Quote(node.name()) + ": output"));
  }
  return Status::Ok();
}

Status Importer::SetOutputsAndLoss() {
  for (const std::string& name : proto_.outputs()) {
    const std::optional<ValueId> id = graph_.Find(name);
    if (!id) return InvalidArgumentError("output " + Quote(name) + " is not defined");
    const std::vector<ValueId>& outputs = graph_.outputs();
    if (std::find(outputs.begin(), outputs.end(), *id) != outputs.end()) {
      return InvalidArgumentError("output " + Quote(name) + " is listed twice");
    }
    graph_.AddOutput(*id);
  }
  if (proto_.loss().empty()) return Status::Ok();
  const std::optional<ValueId> loss = graph_.Find(proto_.loss());
  if (!loss) return InvalidArgumentError("loss " + Quote(proto_.loss()) + " is not defined");
  const Shape& shape = graph_.value(*loss).shape;
  if (!shape.fully_defined() || shape.num_elements() != 1) {
    return InvalidArgumentError("loss " + Quote(proto_.loss()) + ": has shape " + shape.ToString() +
                                "; a loss must be a scalar (one element, no batch dimension)");
  }
  graph_.set_loss(*loss);
  return Status::Ok();
}

}  // namespace

StatusOr<Graph> ImportGraph(const backflow::v1::Graph& proto, const GateRegistry& gates,
                            const GraphLimits& limits) {
  return Importer(proto, gates, limits).Run();
}

}  // namespace backflow
