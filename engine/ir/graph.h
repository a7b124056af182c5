// Graph: the engine's intermediate representation of a computation.
//
// Plain data: values (placeholders, parameters, constants, node outputs) and nodes (one gate
// application each, producing one value). Nodes are kept in topological order by construction:
// AddNode only accepts inputs that already exist, so `nodes()` is always a valid schedule.
// Backward gates appended by autodiff are ordinary nodes of the same graph.
//
// Thread safety: a Graph is not synchronised. Build it on one thread, then share it as const.
#ifndef BACKFLOW_ENGINE_IR_GRAPH_H_
#define BACKFLOW_ENGINE_IR_GRAPH_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/core/shape.h"
#include "engine/core/status.h"
#include "engine/core/tensor.h"
#include "engine/ir/attributes.h"

namespace backflow {

class Gate;
class GateRegistry;

using ValueId = int32_t;
using NodeId = int32_t;
inline constexpr int32_t kNoId = -1;

// kState: running state (batch norm's running mean and variance): a model value that is not
// trained. The optimizer never touches it; a training step replaces it with what the gates'
// state updates compute (Gate::AppendStateUpdates, Note [Running state] in
// engine/api/trainer.h). It is fed like a parameter and drawn from its initializer like one.
enum class ValueKind { kPlaceholder, kParameter, kConstant, kNode, kState };

// "parameter", "state", ...: how errors name a value's kind.
std::string_view ValueKindName(ValueKind kind);

// How a parameter's first value is drawn (see engine/optim/initializers.h).
struct InitializerSpec {
  enum class Kind { kZeros, kConstant, kUniform, kNormal, kGlorot, kHe, kValue };
  Kind kind = Kind::kZeros;
  double a = 0.0;  // constant: value; uniform: low; normal: mean; glorot: gain
  double b = 0.0;  // uniform: high; normal: stddev
  bool normal = false;  // glorot, he: draw from a normal rather than a uniform distribution
  std::shared_ptr<const Tensor> value;  // kValue
};

struct Value {
  std::string name;
  ValueKind kind = ValueKind::kNode;
  Shape shape;  // may hold kBatchDim for placeholders and what depends on them
  NodeId producer = kNoId;  // kNode only
  InitializerSpec init;  // kParameter and kState only
  std::shared_ptr<const Tensor> constant;  // kConstant only
  // kInt32 or kInt64 for a placeholder of labels or ids (never differentiable). Every other
  // value is float and computes in the plan's dtype; this field then stays kFloat32.
  DType dtype = DType::kFloat32;
};

struct Node {
  std::string name;  // also the name of its output value
  std::string op;
  const Gate* gate = nullptr;
  std::vector<ValueId> inputs;
  ValueId output = kNoId;
  Attributes attrs;
  // For backward gates that read what their forward gate saved while running (a pooling
  // workspace, say): that forward node. The executor orders the two.
  NodeId forward_node = kNoId;
};

class Graph {
 public:
  // A graph whose nodes may use the gates of `gates` (which must outlive the graph and its
  // copies): BuiltinGates() from engine/gates/builtin.h, or a registry of one's own.
  explicit Graph(const GateRegistry& gates);

  // `dtype` kInt32 or kInt64 declares a placeholder of ids; a float dtype, one fed in the
  // plan's float dtype.
  StatusOr<ValueId> AddPlaceholder(std::string name, Shape shape, DType dtype = DType::kFloat32);
  StatusOr<ValueId> AddParameter(std::string name, Shape shape, InitializerSpec init = {});
  // Running state: as a parameter (fully defined shape, an initializer), but not trained.
  StatusOr<ValueId> AddState(std::string name, Shape shape, InitializerSpec init = {});
  StatusOr<ValueId> AddConstant(std::string name, Tensor value);

  // Appends a node. Fails with InvalidArgument naming the node if the name is taken, the op is
  // unknown, the arity or an attribute is wrong, or the gate's shape rule rejects the inputs.
  StatusOr<ValueId> AddNode(std::string name, std::string_view op, std::vector<ValueId> inputs,
                            Attributes attrs = {}, NodeId forward_node = kNoId);

  const Value& value(ValueId id) const { return values_[static_cast<size_t>(id)]; }
  const Node& node(NodeId id) const { return nodes_[static_cast<size_t>(id)]; }
  const std::vector<Value>& values() const { return values_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  int num_values() const { return static_cast<int>(values_.size()); }
  int num_nodes() const { return static_cast<int>(nodes_.size()); }

  std::optional<ValueId> Find(std::string_view name) const;
  // `base` if no value has that name yet, else `base` with the lowest free "_k" suffix.
  std::string UniqueName(std::string_view base) const;

  std::vector<ValueId> ValuesOfKind(ValueKind kind) const;

  const std::vector<ValueId>& outputs() const { return outputs_; }
  void AddOutput(ValueId id) { outputs_.push_back(id); }
  ValueId loss() const { return loss_; }
  void set_loss(ValueId id) { loss_ = id; }

  const GateRegistry& registry() const { return *registry_; }
  std::string name;

 private:
  StatusOr<ValueId> AddValue(Value value);

  const GateRegistry* registry_;
  std::vector<Value> values_;
  std::vector<Node> nodes_;
  std::unordered_map<std::string, ValueId> by_name_;
  std::vector<ValueId> outputs_;
  ValueId loss_ = kNoId;
};

// needed[v] for every value v of `graph`: computing `fetches` reads v, directly or through the
// nodes that produce them (a backward node also reads the forward node whose saved state it
// uses). The executor compiles only these nodes; Evaluate initialises only these parameters.
std::vector<bool> ValuesNeededFor(const Graph& graph, std::span<const ValueId> fetches);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_IR_GRAPH_H_
