// Trainer: one model's graph, parameters and optimizer, and the step that ties them together.
//
// Create() appends the backward pass for every parameter to the graph once; a Step() runs
// forward and backward on one batch as a single plan, then applies the optimizer to the
// parameters the loss reaches. A parameter the loss does not depend on has no gradient in
// torch.optim's sense: the step leaves it as it is (no weight decay, no optimizer state), as
// PyTorch skips a parameter whose .grad is None; ComputeGradients reports zeros for it.
//
// Note [Parameter snapshots]
// Parameters live in an immutable, shared ParameterSnapshot. Infer() and ComputeGradients() read
// whichever snapshot is current when they start, and keep it alive while they run; Step()
// computes on the current snapshot, applies the optimizer to a copy, and publishes the copy as
// the new snapshot. So a reader never sees half an update, and readers never wait for a step.
//
// Note [Running state]
// Running state (ValueKind::kState: batch norm's running mean and variance) lives in the
// snapshot beside the parameters, so inference never sees the parameters of one step with the
// state of another. A Step fetches, with the loss and gradients, the next state that the gates
// reading it compute (engine/autodiff/state_updates.h), and publishes it in the same snapshot as
// the updated parameters; the optimizer never sees state. ComputeGradients reads state but does
// not advance it (it publishes nothing), and Infer reads it in inference mode. SetParameters
// writes state by name like a parameter; checkpoints carry it.
//
// Thread safety: Infer, ComputeGradients, parameters() and step() may be called from any number
// of threads, also while a Step runs. Step and SetParameters serialise among themselves
// (steps apply in the order they take the step lock).
#ifndef BACKFLOW_ENGINE_API_TRAINER_H_
#define BACKFLOW_ENGINE_API_TRAINER_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/api/gradient_reducer.h"
#include "engine/core/status.h"
#include "engine/core/tensor.h"
#include "engine/exec/program.h"
#include "engine/ir/graph.h"
#include "engine/optim/optimizer.h"

namespace backflow {

struct ParameterSnapshot {
  int64_t step = 0;  // optimizer steps applied to reach these values
  ParameterMap values;
  ParameterMap state;  // running state (Note [Running state])
};

// OK when `if_step` is unset or is `current`'s step, else FailedPrecondition saying both: what
// Step and SetParameters answer for a stale if_step (StepOptions::if_step).
Status CheckIfStep(const ParameterSnapshot& current, std::optional<int64_t> if_step);

struct TrainerOptions {
  DType dtype = DType::kFloat32;
  uint64_t seed = 0;  // parameter initialisation
  OptimizerConfig optimizer;
  // Scalar tensors of the graph fetched with every step and reported by name (accuracy, say).
  std::vector<std::string> metrics;
};

struct StepOptions {
  bool return_gradients = false;
  std::optional<double> learning_rate;  // overrides the optimizer's rate for this step
  // Step only if the parameters are at this step (else FailedPrecondition, nothing run), so a
  // client that does not know whether its earlier try was applied can retry safely.
  std::optional<int64_t> if_step;
  RunOptions run;
  // For one shard of a data-parallel step: joins this shard's loss, metrics, gradients and
  // running state with the other shards' before the optimizer runs (Note [Data-parallel steps]
  // in engine/api/gradient_reducer.h). The reducer's error is the step's; nothing is applied.
  GradientReducer* reducer = nullptr;
  // With `reducer`: this worker's shard of the batch is empty (a batch of fewer rows than
  // workers). Nothing runs; the reducer gets zeros for this shard, and the step applies what
  // the other shards sum to. `batch` is not read.
  bool empty_shard = false;
};

struct StepResult {
  int64_t step = 0;  // the step number after this step (ComputeGradients: the snapshot's)
  double loss = 0.0;
  std::unordered_map<std::string, double> metrics;
  ParameterMap gradients;  // when asked for
};

class Trainer {
 public:
  // Takes a forward graph (from ImportGraph). A graph without a loss can only Infer.
  static StatusOr<std::unique_ptr<Trainer>> Create(Graph graph, const TrainerOptions& options);

  // Forward, backward and one optimizer step on `batch` (every placeholder the loss needs).
  StatusOr<StepResult> Step(const FeedMap& batch, const StepOptions& options = {});
  // Loss and gradients for `batch` on the current parameters, without an update.
  StatusOr<StepResult> ComputeGradients(const FeedMap& batch, const RunOptions& run = {}) const;
  // ComputeGradients for one shard of a data-parallel batch: `options.reducer` joins the shards'
  // loss, metrics and gradients into the whole batch's (Note [Data-parallel steps]), with
  // `options.empty_shard` and `options.run` as for Step; the other options are not read.
  StatusOr<StepResult> ComputeShardGradients(const FeedMap& batch,
                                             const StepOptions& options) const;
  // The named tensors (outputs, or any value of the forward graph) for `batch`.
  StatusOr<std::vector<Tensor>> Infer(const FeedMap& batch, const std::vector<std::string>& names,
                                      const RunOptions& run = {}) const;
  // The same on a snapshot the caller took with parameters(), so it knows which step it read.
  StatusOr<std::vector<Tensor>> Infer(const ParameterSnapshot& params, const FeedMap& batch,
                                      const std::vector<std::string>& names,
                                      const RunOptions& run = {}) const;

  std::shared_ptr<const ParameterSnapshot> parameters() const;
  // Replaces the named parameters and state (a subset is fine); shapes and dtype must match. With
  // `if_step`, only if the current snapshot is at that step (else FailedPrecondition), so a
  // client can write back values it read without undoing a step that came in between.
  Status SetParameters(const ParameterMap& values, std::optional<int64_t> if_step = std::nullopt);

  // Everything needed to resume bit-exactly, taken atomically with respect to Step.
  struct Checkpoint {
    std::shared_ptr<const ParameterSnapshot> parameters;
    std::unordered_map<std::string, Tensor> optimizer_state;  // Optimizer::State()
    int64_t optimizer_steps = 0;
  };
  Checkpoint TakeCheckpoint();
  // Replaces parameters (all of them), optimizer state and step. InvalidArgument, changing
  // nothing, if a parameter is missing, unknown or mis-shaped, or the state does not fit.
  Status RestoreCheckpoint(const Checkpoint& checkpoint);

  const Graph& graph() const { return program_->graph(); }
  // Every parameter's name, in the order of GradientReducer::GradientReady's index.
  const std::vector<std::string>& parameter_names() const { return parameter_names_; }
  // How each value of graph() depends on the batch's rows (Note [Independent rows]).
  Rows rows(ValueId v) const { return program_->rows(v); }
  // The compiled plans this trainer's runs keep, and how often a run found its plan there.
  Program::CacheStats plan_cache_stats() const { return program_->cache_stats(); }
  Optimizer& optimizer() { return *optimizer_; }
  const TrainerOptions& options() const { return options_; }

 private:
  Trainer() = default;
  // `next_state`: also computes the step's next running state into it.
  StatusOr<StepResult> Run(const FeedMap& batch, const ParameterSnapshot& params,
                           bool with_gradients, const RunOptions& run,
                           ParameterMap* next_state = nullptr) const;
  // Run for Step: with options.reducer, this shard's results joined with the other shards'.
  // `next_state` null: no running state (ComputeGradients keeps none).
  StatusOr<StepResult> RunShard(const FeedMap& batch, const ParameterSnapshot& params,
                                const StepOptions& options, ParameterMap* next_state) const;
  void Publish(std::shared_ptr<const ParameterSnapshot> snapshot);
  // Adds the optimizer's entry, from `began` until now, to a profiled step.
  void ProfileOptimizer(RunProfile* profile, RunProfile::Clock::time_point began,
                        const std::unordered_map<std::string, const Tensor*>& grads) const;

  TrainerOptions options_;
  std::unique_ptr<Program> program_;
  std::vector<std::string> parameter_names_;
  std::vector<ValueId> gradient_ids_;  // in parameter_names_ order
  std::vector<bool> reached_;  // in parameter_names_ order: the loss depends on it
  // Node ids of the backward pass AppendBackward added (Note [Run profiles]).
  NodeId backward_begin_ = 0;
  NodeId backward_end_ = 0;
  std::vector<ValueId> metric_ids_;
  std::vector<std::pair<std::string, ValueId>> state_updates_;  // state name -> its next value
  std::unique_ptr<Optimizer> optimizer_;  // GUARDED_BY(step_mu_)

  std::mutex step_mu_;  // serialises Step and SetParameters
  mutable std::mutex snapshot_mu_;
  std::shared_ptr<const ParameterSnapshot> snapshot_;  // GUARDED_BY(snapshot_mu_)
};

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_API_TRAINER_H_
