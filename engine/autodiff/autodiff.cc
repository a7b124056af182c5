#include "engine/autodiff/autodiff.h"

#include <string>

#include "engine/ir/gate.h"

namespace backflow {
namespace {

// What one gate's Backward sees: its node, dL/d(output), and a way to append gradient nodes.
class NodeBackward : public BackwardContext {
 public:
  NodeBackward(Graph& graph, NodeId node, ValueId output_grad, const std::vector<bool>& depends)
      : graph_(graph), node_id_(node), output_grad_(output_grad), depends_(depends) {}

  const Graph& graph() const override { return graph_; }
  // By index each time: appending nodes may reallocate the node vector.
  const Node& node() const override { return graph_.node(node_id_); }
  ValueId output_grad() const override { return output_grad_; }
  bool needs_grad(int i) const override { return depends_[static_cast<size_t>(input(i))]; }

  StatusOr<ValueId> Emit(std::string_view op, std::vector<ValueId> inputs, Attributes attrs,
                         bool reads_saved) override {
    const std::string name = graph_.UniqueName(node().name + "/grad/" + std::string(op));
    return graph_.AddNode(name, op, std::move(inputs), std::move(attrs),
                          reads_saved ? node_id_ : kNoId);
  }

  void SetGrad(int i, ValueId grad) override { grads_.emplace_back(i, grad); }
  const std::vector<std::pair<int, ValueId>>& grads() const { return grads_; }

 private:
  Graph& graph_;
  NodeId node_id_;
  ValueId output_grad_;
  const std::vector<bool>& depends_;
  std::vector<std::pair<int, ValueId>> grads_;
};

// Gradient contributions per value, summed once on first use.
// See Note [Gradient accumulation at forks].
class GradientTable {
 public:
  explicit GradientTable(Graph& graph)
      : graph_(graph),
        contributions_(static_cast<size_t>(graph.num_values())),
        total_(static_cast<size_t>(graph.num_values()), kNoId) {}

  void Add(ValueId v, ValueId grad) { contributions_[static_cast<size_t>(v)].push_back(grad); }
  bool Has(ValueId v) const { return !contributions_[static_cast<size_t>(v)].empty(); }

  StatusOr<ValueId> Total(ValueId v) {
    const size_t k = static_cast<size_t>(v);
    if (total_[k] != kNoId) return total_[k];
    const std::vector<ValueId>& parts = contributions_[k];
    if (parts.size() == 1) {
      total_[k] = parts[0];
    } else {
      BF_ASSIGN_OR_RETURN(total_[k], graph_.AddNode(graph_.UniqueName("grad/" + graph_.value(v).name),
                                                    "add_n", parts));
    }
    return total_[k];
  }

 private:
  Graph& graph_;
  std::vector<std::vector<ValueId>> contributions_;
  std::vector<ValueId> total_;
};

// depends[v]: v is in `wrt` or computed from something that is.
std::vector<bool> DependsOnWrt(const Graph& graph, std::span<const ValueId> wrt) {
  std::vector<bool> depends(static_cast<size_t>(graph.num_values()), false);
  for (ValueId v : wrt) depends[static_cast<size_t>(v)] = true;
  for (const Node& node : graph.nodes()) {
    for (ValueId in : node.inputs) {
      if (depends[static_cast<size_t>(in)]) depends[static_cast<size_t>(node.output)] = true;
    }
  }
  return depends;
}

Status CheckGradShape(const Graph& graph, const Node& node, int i, ValueId grad) {
  const Shape& want = graph.value(node.inputs[static_cast<size_t>(i)]).shape;
  const Shape& got = graph.value(grad).shape;
  if (want == got) return Status::Ok();
  return InternalError("node '" + node.name + "' (" + node.op + "): backward gave input " +
                       std::to_string(i) + " a gradient of shape " + got.ToString() +
                       ", expected " + want.ToString());
}

Status BackpropagateNode(Graph& graph, NodeId id, GradientTable& table,
                         const std::vector<bool>& depends) {
  BF_ASSIGN_OR_RETURN(ValueId dy, table.Total(graph.node(id).output));
  const Gate& gate = *graph.node(id).gate;
  if (!gate.differentiable()) {
    const Node& node = graph.node(id);
    return InvalidArgumentError("node '" + node.name + "' (" + node.op +
                                "): has no gradient, but a gradient must flow through it");
  }
  NodeBackward ctx(graph, id, dy, depends);
  BF_RETURN_IF_ERROR(gate.Backward(ctx));
  for (const auto& [i, grad] : ctx.grads()) {
    BF_RETURN_IF_ERROR(CheckGradShape(graph, graph.node(id), i, grad));
    table.Add(graph.node(id).inputs[static_cast<size_t>(i)], grad);
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::vector<ValueId>> AppendBackward(Graph& graph, ValueId target,
                                              std::span<const ValueId> wrt) {
  if (target < 0 || target >= graph.num_values()) return InvalidArgumentError("no such target");
  const Value& t = graph.value(target);
  if (!t.shape.fully_defined() || t.shape.num_elements() != 1) {
    return InvalidArgumentError("'" + t.name + "' has shape " + t.shape.ToString() +
                                ": gradients are taken of a scalar (one element)");
  }
  for (ValueId v : wrt) {
    if (v < 0 || v >= graph.num_values()) return InvalidArgumentError("no such gradient source");
    if (IsInteger(graph.value(v).dtype)) {
      return InvalidArgumentError("'" + graph.value(v).name + "' is " +
                                  std::string(DTypeName(graph.value(v).dtype)) +
                                  ": integer values have no gradient");
    }
  }
  const std::vector<bool> depends = DependsOnWrt(graph, wrt);
  const int forward_nodes = graph.num_nodes();

  GradientTable table(graph);
  BF_ASSIGN_OR_RETURN(ValueId seed, graph.AddNode(graph.UniqueName("grad/" + t.name), "fill_like",
                                                  {target}, Attributes{{"value", 1.0}}));
  table.Add(target, seed);

  // Reverse topological order: every consumer of a value is visited before its producer, so a
  // value's contributions are complete when its producer asks for their total.
  for (NodeId id = forward_nodes - 1; id >= 0; --id) {
    const ValueId out = graph.node(id).output;
    if (!depends[static_cast<size_t>(out)] || !table.Has(out)) continue;
    BF_RETURN_IF_ERROR(BackpropagateNode(graph, id, table, depends));
  }

  std::vector<ValueId> result;
  for (ValueId v : wrt) {
    if (table.Has(v)) {
      BF_ASSIGN_OR_RETURN(ValueId g, table.Total(v));
      result.push_back(g);
    } else {
      BF_ASSIGN_OR_RETURN(ValueId zero,
                          graph.AddNode(graph.UniqueName("grad/" + graph.value(v).name),
                                        "fill_like", {v}, Attributes{{"value", 0.0}}));
      result.push_back(zero);
    }
  }
  return result;
}

}  // namespace backflow
