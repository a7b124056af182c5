#include "engine/autodiff/state_updates.h"

#include <string>
#include <utility>
#include <vector>

#include "engine/ir/gate.h"

namespace backflow {
namespace {

class UpdateContext : public StateUpdateContext {
 public:
  UpdateContext(Graph& graph, NodeId node, std::unordered_map<ValueId, ValueId>& updates)
      : graph_(graph), node_(node), updates_(updates) {}

  const Graph& graph() const override { return graph_; }
  const Node& node() const override { return graph_.node(node_); }

  StatusOr<ValueId> Emit(std::string_view op, std::vector<ValueId> inputs,
                         Attributes attrs) override {
    const std::string name = graph_.UniqueName(node().name + "/" + std::string(op));
    return graph_.AddNode(name, op, std::move(inputs), std::move(attrs));
  }

  Status SetUpdate(int i, ValueId next) override {
    if (!is_state(i)) {
      return InvalidArgumentError("node '" + node().name + "': input " + std::to_string(i) +
                                  " is not running state");
    }
    const ValueId state = input(i);
    if (!updates_.emplace(state, next).second) {
      return InvalidArgumentError("node '" + node().name + "': state '" +
                                  graph_.value(state).name +
                                  "' is already updated by another node; give each its own");
    }
    return Status::Ok();
  }

 private:
  Graph& graph_;
  NodeId node_;
  std::unordered_map<ValueId, ValueId>& updates_;
};

}  // namespace

StatusOr<std::unordered_map<ValueId, ValueId>> AppendStateUpdates(Graph& graph,
                                                                  NodeId forward_nodes) {
  std::unordered_map<ValueId, ValueId> updates;
  for (NodeId n = 0; n < forward_nodes; ++n) {
    UpdateContext ctx(graph, n, updates);
    BF_RETURN_IF_ERROR(graph.node(n).gate->AppendStateUpdates(ctx));
  }
  return updates;
}

}  // namespace backflow
