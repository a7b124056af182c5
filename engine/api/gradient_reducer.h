// GradientReducer: what joins the shards of one data-parallel training step.
//
// Note [Data-parallel steps]
// A data-parallel job splits each training batch along its rows into shards, one per worker
// (an MPI rank: server/data_parallel/), and every worker runs Trainer::Step on its own shard,
// on its own copy of the same parameters, with a GradientReducer that joins the workers'
// results before the optimizer runs: the step's loss, metrics and gradients become the whole
// batch's, so every worker applies the same update and the copies stay bitwise equal.
//
// How shards combine follows from the loss (LossReductionOf). A loss that is a mean over the
// batch's rows (softmax_cross_entropy, svm_hinge, sigmoid_cross_entropy, squared_error with
// reduction "mean") has the whole batch's loss and gradients as the sum over shards of
// rows_i / rows x shard i's; a loss that sums over rows (squared_error's default "sum"), the
// plain sum. The sum is exact up to rounding: shard i's mean over its rows, weighted by its
// share of them, is its part of the batch's mean. Any other loss (a graph whose loss node is
// not a loss gate) cannot be split this way and is refused for data-parallel training. Metrics
// are weighted by rows (a fraction such as accuracy then comes out exact). Running state (batch
// norm's statistics) is computed by each worker on its shard, as PyTorch's
// DistributedDataParallel does, and every worker keeps the first worker's (DDP's
// broadcast_buffers), so the copies stay equal there too.
//
// The reducer sees each gradient as soon as the plan step that computes it finishes
// (RunOptions::on_fetch_ready), so it can send gradients in buckets while backward still runs,
// and then, after the run, its outcome: a shard can fail where the others do not (a label out
// of range in one shard), and either every worker applies the step or none does.
#ifndef BACKFLOW_ENGINE_API_GRADIENT_REDUCER_H_
#define BACKFLOW_ENGINE_API_GRADIENT_REDUCER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "engine/core/status.h"
#include "engine/core/tensor.h"
#include "engine/ir/graph.h"

namespace backflow {

struct StepResult;
using ParameterMap = std::unordered_map<std::string, Tensor>;

// How a graph's loss is built from its batch's rows (Note [Data-parallel steps]).
enum class LossReduction {
  kMeanOverRows,
  kSumOverRows,
  kOther,  // no loss, or a loss node that is not a loss gate
};
LossReduction LossReductionOf(const Graph& graph);
// OK, or InvalidArgument naming the loss node and its op, for a graph whose loss cannot be split
// into shards (kOther).
Status CheckShardableLoss(const Graph& graph);
// What a shard of `rows` of a batch of `batch_rows` multiplies its loss and gradients by before
// the shards are summed: rows / batch_rows for a mean (0 for an empty batch), 1 for a sum.
double ShardLossWeight(LossReduction reduction, int64_t rows, int64_t batch_rows);

class GradientReducer {
 public:
  virtual ~GradientReducer() = default;

  // Called on a plan thread as soon as the gradient of parameter `index` (in
  // Trainer::parameter_names() order) is computed; may run concurrently for different indices.
  // Called at most once per index and run; a gradient not reported (the run failed before it)
  // is the reducer's to handle in Reduce.
  virtual void GradientReady(size_t index, const Tensor& gradient) = 0;

  // After the run, on the thread that called Trainer::Step (or ComputeShardGradients). `run` is
  // the shard's outcome; when it is OK, `result` holds the shard's loss, metrics and gradients
  // and `next_state` its running state (null for ComputeShardGradients, which keeps none), and
  // Reduce replaces them with the whole batch's. Not OK: no worker applies the step; the status
  // says why (for a shard that failed, its error).
  virtual Status Reduce(const Status& run, StepResult* result, ParameterMap* next_state) = 0;
};

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_API_GRADIENT_REDUCER_H_
