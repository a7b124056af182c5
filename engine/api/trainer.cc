#include "engine/api/trainer.h"

#include "engine/autodiff/autodiff.h"
#include "engine/autodiff/state_updates.h"
#include "engine/optim/initializers.h"

namespace backflow {
namespace {

StatusOr<std::vector<ValueId>> FindAll(const Graph& graph, const std::vector<std::string>& names,
                                       const char* what) {
  std::vector<ValueId> ids;
  for (const std::string& name : names) {
    std::optional<ValueId> id = graph.Find(name);
    if (!id) return InvalidArgumentError(std::string(what) + " '" + name + "' is not in the graph");
    ids.push_back(*id);
  }
  return ids;
}

// A checkpoint's tensors of one kind (parameters or state) against the model's: the same names,
// shapes and dtypes.
Status CheckSameNamesAndShapes(const ParameterMap& model, const ParameterMap& checkpoint,
                               const std::string& kind) {
  for (const auto& [name, tensor] : model) {
    auto it = checkpoint.find(name);
    if (it == checkpoint.end()) {
      return InvalidArgumentError("checkpoint lacks " + kind + " '" + name + "'");
    }
    if (it->second.shape() != tensor.shape() || it->second.dtype() != tensor.dtype()) {
      return InvalidArgumentError("checkpoint " + kind + " '" + name + "': got " +
                                  std::string(DTypeName(it->second.dtype())) +
                                  it->second.shape().ToString() + ", expected " +
                                  std::string(DTypeName(tensor.dtype())) +
                                  tensor.shape().ToString());
    }
  }
  for (const auto& [name, _] : checkpoint) {
    if (!model.count(name)) {
      return InvalidArgumentError("checkpoint has unknown " + kind + " '" + name + "'");
    }
  }
  return Status::Ok();
}

}  // namespace

Status CheckIfStep(const ParameterSnapshot& current, std::optional<int64_t> if_step) {
  if (!if_step || *if_step == current.step) return Status::Ok();
  return FailedPreconditionError("parameters are at step " + std::to_string(current.step) +
                                 ", not " + std::to_string(*if_step));
}

StatusOr<std::unique_ptr<Trainer>> Trainer::Create(Graph graph, const TrainerOptions& options) {
  std::unique_ptr<Trainer> trainer(new Trainer());
  trainer->options_ = options;
  BF_ASSIGN_OR_RETURN(trainer->optimizer_, Optimizer::Create(options.optimizer));
  BF_RETURN_IF_ERROR(ValidateOptimizerForDType(options.optimizer, options.dtype));
  BF_ASSIGN_OR_RETURN(ParameterMap initial, InitializeParameters(graph, options.dtype, options.seed));
  BF_ASSIGN_OR_RETURN(ParameterMap state, InitializeParameters(graph, options.dtype, options.seed,
                                                               ValueKind::kState));
  const NodeId forward_nodes = graph.num_nodes();
  const std::vector<ValueId> params = graph.ValuesOfKind(ValueKind::kParameter);
  for (ValueId p : params) trainer->parameter_names_.push_back(graph.value(p).name);
  BF_ASSIGN_OR_RETURN(trainer->metric_ids_, FindAll(graph, options.metrics, "metric"));
  for (ValueId m : trainer->metric_ids_) {
    if (graph.value(m).shape.num_elements() != 1 || !graph.value(m).shape.fully_defined()) {
      return InvalidArgumentError("metric '" + graph.value(m).name + "' is not a scalar");
    }
  }
  if (graph.loss() != kNoId && !params.empty()) {
    const ValueId loss[] = {graph.loss()};
    const std::vector<bool> needed = ValuesNeededFor(graph, loss);
    for (ValueId p : params) trainer->reached_.push_back(needed[static_cast<size_t>(p)]);
    trainer->backward_begin_ = graph.num_nodes();
    BF_ASSIGN_OR_RETURN(trainer->gradient_ids_, AppendBackward(graph, graph.loss(), params));
    trainer->backward_end_ = graph.num_nodes();
  }
  if (graph.loss() != kNoId) {
    BF_ASSIGN_OR_RETURN(const auto updates, AppendStateUpdates(graph, forward_nodes));
    for (const auto& [state_id, next] : updates) {
      trainer->state_updates_.emplace_back(graph.value(state_id).name, next);
    }
  }
  trainer->program_ = std::make_unique<Program>(std::make_shared<const Graph>(std::move(graph)));
  trainer->snapshot_ = std::make_shared<const ParameterSnapshot>(
      ParameterSnapshot{.step = 0, .values = std::move(initial), .state = std::move(state)});
  return trainer;
}

StatusOr<StepResult> Trainer::Run(const FeedMap& batch, const ParameterSnapshot& params,
                                  bool with_gradients, const RunOptions& run,
                                  ParameterMap* next_state) const {
  const Graph& g = graph();
  if (g.loss() == kNoId) {
    return FailedPreconditionError("graph '" + g.name + "' has no loss: it can only infer");
  }
  FeedMap feeds = batch;
  for (const auto& [name, tensor] : params.values) {
    if (feeds.count(name)) {
      return InvalidArgumentError("feed '" + name + "' is a parameter; the model supplies it");
    }
    feeds[name] = &tensor;
  }
  for (const auto& [name, tensor] : params.state) {
    if (!feeds.emplace(name, &tensor).second) {
      return InvalidArgumentError("feed '" + name + "' is running state; the model supplies it");
    }
  }
  std::vector<ValueId> fetches = {g.loss()};
  fetches.insert(fetches.end(), metric_ids_.begin(), metric_ids_.end());
  if (with_gradients) fetches.insert(fetches.end(), gradient_ids_.begin(), gradient_ids_.end());
  if (next_state != nullptr) {
    for (const auto& [name, id] : state_updates_) fetches.push_back(id);
  }
  // Loss and gradients are taken in training mode (Note [Training and inference mode]).
  RunOptions training = run;
  training.info = RunInfo{.training = true, .seed = options_.seed, .step = params.step};
  BF_ASSIGN_OR_RETURN(std::vector<Tensor> out, program_->Run(feeds, fetches, training));
  if (run.profile != nullptr) run.profile->MarkBackward(backward_begin_, backward_end_);

  StepResult result{.step = params.step, .loss = out[0].at(0)};
  size_t k = 1;
  for (const std::string& name : options_.metrics) result.metrics[name] = out[k++].at(0);
  if (with_gradients) {
    for (const std::string& name : parameter_names_) result.gradients[name] = std::move(out[k++]);
  }
  if (next_state != nullptr) {
    *next_state = params.state;
    for (const auto& [name, id] : state_updates_) next_state->at(name) = std::move(out[k++]);
  }
  return result;
}

StatusOr<StepResult> Trainer::Step(const FeedMap& batch, const StepOptions& options) {
  std::lock_guard<std::mutex> lock(step_mu_);
  RunProfile* profile = options.run.profile;
  if (profile != nullptr) profile->Begin();
  std::shared_ptr<const ParameterSnapshot> current = parameters();
  BF_RETURN_IF_ERROR(CheckIfStep(*current, options.if_step));
  ParameterMap next_state;
  BF_ASSIGN_OR_RETURN(StepResult result, RunShard(batch, *current, options, &next_state));
  // Only the parameters the loss reaches are the optimizer's (see the top of trainer.h).
  std::unordered_map<std::string, const Tensor*> grads;
  for (size_t i = 0; i < parameter_names_.size(); ++i) {
    if (reached_[i]) grads[parameter_names_[i]] = &result.gradients.at(parameter_names_[i]);
  }
  // The optimizer writes every updated parameter of the next snapshot from the current one in
  // one pass; a parameter without a gradient is copied.
  const RunProfile::Clock::time_point optimizing =
      profile != nullptr ? RunProfile::Clock::now() : RunProfile::Clock::time_point{};
  auto next = std::make_shared<ParameterSnapshot>();
  for (const auto& [name, value] : current->values) {
    next->values.emplace(name, grads.count(name) ? Tensor::Uninitialized(value.dtype(), value.shape())
                                                 : value);
  }
  // On error nothing is published and the optimizer is as it was (Note [Non-finite updates]).
  BF_RETURN_IF_ERROR(optimizer_->Step(current->values, next->values, grads, options.learning_rate)
                         .WithPrefix("step " + std::to_string(current->step + 1)));
  if (profile != nullptr) ProfileOptimizer(profile, optimizing, grads);
  next->state = std::move(next_state);
  next->step = current->step + 1;
  result.step = next->step;
  if (!options.return_gradients) result.gradients.clear();
  Publish(std::move(next));
  if (profile != nullptr) profile->End();
  return result;
}

StatusOr<StepResult> Trainer::RunShard(const FeedMap& batch, const ParameterSnapshot& params,
                                       const StepOptions& options, ParameterMap* next_state) const {
  GradientReducer* reducer = options.reducer;
  if (reducer == nullptr) {
    return Run(batch, params, /*with_gradients=*/true, options.run, next_state);
  }
  if (options.empty_shard) {
    StepResult none{.step = params.step};
    for (const std::string& name : options_.metrics) none.metrics[name] = 0.0;
    for (const std::string& name : parameter_names_) {
      const Tensor& value = params.values.at(name);
      none.gradients.emplace(name, Tensor(value.dtype(), value.shape()));
    }
    if (next_state != nullptr) *next_state = params.state;
    BF_RETURN_IF_ERROR(reducer->Reduce(Status::Ok(), &none, next_state));
    return none;
  }
  // Run fetches the loss, the metrics, then the gradients in parameter order.
  const size_t first = 1 + metric_ids_.size();
  const size_t count = parameter_names_.size();
  RunOptions run = options.run;
  run.on_fetch_ready = [reducer, first, count](size_t fetch, const Tensor& value) {
    if (fetch >= first && fetch - first < count) reducer->GradientReady(fetch - first, value);
  };
  StatusOr<StepResult> ran = Run(batch, params, /*with_gradients=*/true, run, next_state);
  BF_RETURN_IF_ERROR(reducer->Reduce(ran.status(), ran.ok() ? &*ran : nullptr, next_state));
  return ran;
}

void Trainer::ProfileOptimizer(RunProfile* profile, RunProfile::Clock::time_point began,
                               const std::unordered_map<std::string, const Tensor*>& grads) const {
  static constexpr const char* kKinds[] = {"sgd", "adam", "adamw"};
  const int64_t start = profile->Since(began);
  int64_t bytes = 0;
  for (const auto& [name, gradient] : grads) bytes += static_cast<int64_t>(gradient->byte_size());
  profile->nodes.push_back(
      NodeProfile{.name = "optimizer",
                  .op = kKinds[static_cast<size_t>(options_.optimizer.kind)],
                  .phase = ProfilePhase::kOptimizer,
                  .start_ns = start,
                  .duration_ns = profile->Since(RunProfile::Clock::now()) - start,
                  .output_bytes = bytes});
}

StatusOr<StepResult> Trainer::ComputeGradients(const FeedMap& batch, const RunOptions& run) const {
  std::shared_ptr<const ParameterSnapshot> current = parameters();
  return Run(batch, *current, /*with_gradients=*/true, run);
}

StatusOr<StepResult> Trainer::ComputeShardGradients(const FeedMap& batch,
                                                    const StepOptions& options) const {
  std::shared_ptr<const ParameterSnapshot> current = parameters();
  BF_ASSIGN_OR_RETURN(StepResult result,
                      RunShard(batch, *current, options, /*next_state=*/nullptr));
  result.step = current->step;
  return result;
}

StatusOr<std::vector<Tensor>> Trainer::Infer(const FeedMap& batch,
                                             const std::vector<std::string>& names,
                                             const RunOptions& run) const {
  std::shared_ptr<const ParameterSnapshot> current = parameters();
  return Infer(*current, batch, names, run);
}

StatusOr<std::vector<Tensor>> Trainer::Infer(const ParameterSnapshot& params,
                                             const FeedMap& batch,
                                             const std::vector<std::string>& names,
                                             const RunOptions& run) const {
  FeedMap feeds = batch;
  for (const auto& [name, tensor] : params.values) {
    if (!feeds.emplace(name, &tensor).second) {
      return InvalidArgumentError("input '" + name + "' is a parameter; the model supplies it");
    }
  }
  for (const auto& [name, tensor] : params.state) {
    if (!feeds.emplace(name, &tensor).second) {
      return InvalidArgumentError("input '" + name + "' is running state; the model supplies it");
    }
  }
  RunOptions inference = run;
  inference.info = RunInfo{.training = false, .seed = options_.seed, .step = params.step};
  return program_->Run(feeds, names, inference);
}

std::shared_ptr<const ParameterSnapshot> Trainer::parameters() const {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  return snapshot_;
}

Status Trainer::SetParameters(const ParameterMap& values, std::optional<int64_t> if_step) {
  std::lock_guard<std::mutex> lock(step_mu_);
  std::shared_ptr<const ParameterSnapshot> current = parameters();
  BF_RETURN_IF_ERROR(CheckIfStep(*current, if_step));
  auto next = std::make_shared<ParameterSnapshot>(*current);
  for (const auto& [name, tensor] : values) {
    const bool is_state = next->state.count(name) != 0;
    ParameterMap& kind = is_state ? next->state : next->values;
    auto it = kind.find(name);
    if (it == kind.end()) return NotFoundError("no parameter or state '" + name + "'");
    if (tensor.shape() != it->second.shape() || tensor.dtype() != it->second.dtype()) {
      return InvalidArgumentError(std::string(is_state ? "state '" : "parameter '") + name +
                                  "': got " +
                                  std::string(DTypeName(tensor.dtype())) +
                                  tensor.shape().ToString() + ", expected " +
                                  std::string(DTypeName(it->second.dtype())) +
                                  it->second.shape().ToString());
    }
    it->second = tensor;
  }
  Publish(std::move(next));
  return Status::Ok();
}

Trainer::Checkpoint Trainer::TakeCheckpoint() {
  std::lock_guard<std::mutex> lock(step_mu_);
  return Checkpoint{.parameters = parameters(),
                    .optimizer_state = optimizer_->State(),
                    .optimizer_steps = optimizer_->steps()};
}

Status Trainer::RestoreCheckpoint(const Checkpoint& checkpoint) {
  if (checkpoint.parameters == nullptr) return InvalidArgumentError("checkpoint has no parameters");
  std::lock_guard<std::mutex> lock(step_mu_);
  std::shared_ptr<const ParameterSnapshot> current = parameters();
  BF_RETURN_IF_ERROR(CheckSameNamesAndShapes(current->values, checkpoint.parameters->values,
                                             "parameter"));
  BF_RETURN_IF_ERROR(CheckSameNamesAndShapes(current->state, checkpoint.parameters->state, "state"));
  if (checkpoint.parameters->step < 0) return InvalidArgumentError("checkpoint step is negative");
  BF_RETURN_IF_ERROR(
      optimizer_->RestoreState(checkpoint.optimizer_state, checkpoint.optimizer_steps));
  Publish(checkpoint.parameters);
  return Status::Ok();
}

void Trainer::Publish(std::shared_ptr<const ParameterSnapshot> snapshot) {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  snapshot_ = std::move(snapshot);
}

}  // namespace backflow
