#include "engine/api/gradient_reducer.h"

#include <string_view>

namespace backflow {

LossReduction LossReductionOf(const Graph& graph) {
  if (graph.loss() == kNoId) return LossReduction::kOther;
  const Value& loss = graph.value(graph.loss());
  if (loss.kind != ValueKind::kNode || loss.producer == kNoId) return LossReduction::kOther;
  const Node& node = graph.node(loss.producer);
  // The means of engine/gates/loss.h: each divides by the batch's rows (sigmoid_cross_entropy
  // by its element count, which is rows times the same row size in every shard).
  if (node.op == "softmax_cross_entropy" || node.op == "svm_hinge" ||
      node.op == "sigmoid_cross_entropy") {
    return LossReduction::kMeanOverRows;
  }
  if (node.op == "squared_error") {
    return node.attrs.GetString("reduction", "sum") == "mean" ? LossReduction::kMeanOverRows
                                                              : LossReduction::kSumOverRows;
  }
  return LossReduction::kOther;
}

Status CheckShardableLoss(const Graph& graph) {
  if (LossReductionOf(graph) != LossReduction::kOther) return Status::Ok();
  if (graph.loss() == kNoId) {
    return InvalidArgumentError("graph '" + graph.name + "' has no loss to train data-parallel");
  }
  const Value& loss = graph.value(graph.loss());
  const std::string op = loss.producer == kNoId ? "not a node" : graph.node(loss.producer).op;
  return InvalidArgumentError(
      "loss '" + loss.name + "' (" + op +
      ") cannot be split across data-parallel shards: the loss must be a loss gate "
      "(softmax_cross_entropy, svm_hinge, sigmoid_cross_entropy or squared_error)");
}

double ShardLossWeight(LossReduction reduction, int64_t rows, int64_t batch_rows) {
  if (reduction == LossReduction::kSumOverRows) return 1.0;
  if (batch_rows <= 0) return 0.0;
  return static_cast<double>(rows) / static_cast<double>(batch_rows);
}

}  // namespace backflow
