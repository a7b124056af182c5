#include "server/operations.h"

#include <google/protobuf/io/coded_stream.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/data_parallel/replica.h"
#include "server/inputs.h"
#include "server/model_io.h"
#include "server/names.h"
#include "server/run_profile_proto.h"

namespace backflow::server::ops {
namespace {

StatusOr<TensorMap> DecodeBatch(const ServiceEnv& env, const Model& model,
                                const WireTensorMap& wire, std::string_view what) {
  return DecodeInputs(wire, model.trainer().graph(), model.dtype(),
                      env.config.limits.max_tensor_elements, what);
}

// The outputs an Infer request names, or by default those `inputs` determine; InvalidArgument
// for a name that is not in the graph.
StatusOr<std::vector<std::string>> OutputNames(const Graph& graph, const v1::InferRequest& request,
                                               const TensorMap& inputs) {
  BF_RETURN_IF_ERROR(CheckLengths("output", request.outputs(), kMaxNameBytes));
  std::vector<std::string> names(request.outputs().begin(), request.outputs().end());
  if (names.empty()) {
    BF_ASSIGN_OR_RETURN(names, DefaultOutputs(graph, inputs));
  }
  for (const std::string& name : names) {
    if (!graph.Find(name)) {
      return InvalidArgumentError("output " + Quoted(name) + " is not in the graph");
    }
  }
  return names;
}

// The encoded size of `tensors` as a map<string, Tensor> field numbered below 16, from names,
// shapes and dtypes alone: elements travel as raw bytes, so their values do not change it.
int64_t TensorMapBytes(const std::unordered_map<std::string, Tensor>& tensors) {
  using google::protobuf::io::CodedOutputStream;
  auto field = [](size_t length) {  // a one-byte tag, the length, the contents
    return 1 + CodedOutputStream::VarintSize64(length) + length;
  };
  size_t total = 0;
  for (const auto& [name, tensor] : tensors) {
    size_t dims = 0;
    for (int64_t d : tensor.shape().dims()) dims += CodedOutputStream::VarintSize64(d);
    const size_t message = (dims > 0 ? field(dims) : 0) + 2 /* dtype */ +
                           (tensor.byte_size() > 0 ? field(tensor.byte_size()) : 0);
    total += field(field(name.size()) + field(message));
  }
  return static_cast<int64_t>(total);
}

// ResourceExhausted, before the step runs, when its answer could exceed --max-message-bytes:
// gRPC would refuse to send it after the step was applied. An upper bound (a loss of exactly 0
// is 9 bytes shorter).
Status CheckStepAnswerSize(const ServiceEnv& env, const Model& model,
                           const v1::TrainStepRequest& request, const ParameterSnapshot& current) {
  if (!request.return_gradients() && !request.return_parameters() && !request.profile()) {
    return Status::Ok();
  }
  v1::TrainStepResponse skeleton;
  skeleton.set_step(current.step + 1);
  skeleton.set_loss(1.0);
  for (const std::string& name : model.trainer().options().metrics) {
    (*skeleton.mutable_metrics())[name] = 1.0;
  }
  const int64_t each = TensorMapBytes(current.values);  // gradients have the parameters' shapes
  const int64_t bytes = static_cast<int64_t>(skeleton.ByteSizeLong()) +
                        (request.return_gradients() ? each : 0) +
                        (request.return_parameters() ? each : 0) +
                        (request.profile() ? ProfileBytesBound(model.trainer().graph()) : 0);
  if (bytes <= env.config.limits.max_message_bytes) return Status::Ok();
  return ResourceExhaustedError(
      "the answer would be " + std::to_string(bytes) + " bytes, over the server's " +
      "--max-message-bytes of " + std::to_string(env.config.limits.max_message_bytes) +
      "; the step was not applied (ask for fewer of gradients, parameters and profile)");
}

}  // namespace

Status CreateModel(ServiceEnv& env, const v1::CreateModelRequest& request,
                   ModelRegistry::Reservation& reservation, v1::ModelInfo* response) {
  v1::ModelRecord record;
  record.set_id(env.registry.NewId());
  *record.mutable_request() = request;
  BF_RETURN_IF_ERROR(ResolveOnnxRequest(env.graph_limits, record.mutable_request()));
  record.set_created_unix_ms(NowUnixMs());
  record.set_owner(reservation.owner());
  BF_ASSIGN_OR_RETURN(std::shared_ptr<Model> model,
                      Model::Create(std::move(record), env.graph_limits,
                                    env.config.limits.max_tensor_elements, env.pool, &env.memory));
  if (env.data_parallel != nullptr) BF_RETURN_IF_ERROR(env.data_parallel->ShareNewModel(*model));
  Status added = env.store->CreateModel(model->record());
  if (added.ok()) added = env.registry.Add(model, &reservation);
  if (!added.ok() && env.data_parallel != nullptr) (void)env.data_parallel->DropModel(model->id());
  BF_RETURN_IF_ERROR(added);
  *response = model->Info();
  return Status::Ok();
}

Status DeleteModel(ServiceEnv& env, Model& model) {
  BF_RETURN_IF_ERROR(model.CheckNotDeleted());
  {
    // An automatic write in flight finishes first; one still to come sees the model deleted
    // and skips (Note [Automatic checkpoints] in server/autosave.h).
    std::lock_guard<std::mutex> file_lock(model.checkpoint_mu());
    BF_RETURN_IF_ERROR(env.store->DeleteModel(model.id()));
    model.MarkDeleted();
  }
  // Its share of --max-memory is free for the next model now, not when the last request still
  // holding a reference lets go (those end soon: the model is marked deleted).
  model.HoldMemory(MemoryBudget::Hold());
  if (env.data_parallel != nullptr) (void)env.data_parallel->DropModel(model.id());
  return env.registry.Remove(model.id()).status();
}

Status DeleteDamagedModel(ServiceEnv& env, const std::string& id) {
  // Damaged models have no queue to order their deletes; they are rare, so one at a time.
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  if (!env.registry.IsDamaged(id)) return NotFoundError("model '" + id + "' not found");
  BF_RETURN_IF_ERROR(env.store->DeleteModel(id));
  env.registry.ForgetDamaged(id);
  return Status::Ok();
}

StatusOr<InferWork> PrepareInfer(const ServiceEnv& env, const Model& model,
                                 const v1::InferRequest& request) {
  InferWork work;
  BF_ASSIGN_OR_RETURN(work.inputs, DecodeBatch(env, model, request.inputs(), "input"));
  BF_ASSIGN_OR_RETURN(work.outputs, OutputNames(model.trainer().graph(), request, work.inputs));
  return work;
}

void EncodeInferResponse(const std::vector<std::string>& names, const std::vector<Tensor>& outputs,
                         int64_t step, v1::InferResponse* response) {
  for (size_t i = 0; i < names.size(); ++i) {
    TensorToProto(outputs[i], &(*response->mutable_outputs())[names[i]]);
  }
  response->set_step(step);
}

Status Infer(const ServiceEnv& env, const Model& model, const v1::InferRequest& request,
             const RunOptions& run, v1::InferResponse* response) {
  BF_ASSIGN_OR_RETURN(InferWork work, PrepareInfer(env, model, request));
  std::shared_ptr<const ParameterSnapshot> snapshot = model.trainer().parameters();
  RunProfile profile;
  BF_ASSIGN_OR_RETURN(std::vector<Tensor> outputs,
                      model.trainer().Infer(*snapshot, Feeds(work.inputs), work.outputs,
                                            WithProfile(run, request.profile(), &profile)));
  EncodeInferResponse(work.outputs, outputs, snapshot->step, response);
  if (request.profile()) ProfileToProto(profile, response->mutable_profile());
  return Status::Ok();
}

Status ComputeGradients(const ServiceEnv& env, const Model& model,
                        const v1::ComputeGradientsRequest& request, const RunOptions& run,
                        v1::ComputeGradientsResponse* response) {
  BF_ASSIGN_OR_RETURN(TensorMap batch, DecodeBatch(env, model, request.batch(), "batch"));
  RunProfile profile;
  const RunOptions options = WithProfile(run, request.profile(), &profile);
  BF_ASSIGN_OR_RETURN(StepResult result,
                      env.data_parallel != nullptr
                          ? env.data_parallel->ComputeGradients(model, batch, options)
                          : model.trainer().ComputeGradients(Feeds(batch), options));
  response->set_step(result.step);
  response->set_loss(result.loss);
  EncodeMetrics(result.metrics, response->mutable_metrics());
  EncodeTensors(result.gradients, response->mutable_gradients());
  if (request.profile()) ProfileToProto(profile, response->mutable_profile());
  return Status::Ok();
}

Status TrainStep(const ServiceEnv& env, Model& model, const v1::TrainStepRequest& request,
                 const RunOptions& run, v1::TrainStepResponse* response) {
  BF_RETURN_IF_ERROR(model.CheckNotDeleted());
  return TrainStepOnBatch(env, model, request, DecodeTrainBatch(env, model, request), run,
                          response);
}

StatusOr<TensorMap> DecodeTrainBatch(const ServiceEnv& env, const Model& model,
                                     const v1::TrainStepRequest& request) {
  return DecodeBatch(env, model, request.batch(), "batch");
}

Status TrainStepOnBatch(const ServiceEnv& env, Model& model, const v1::TrainStepRequest& request,
                        const StatusOr<TensorMap>& batch, const RunOptions& run,
                        v1::TrainStepResponse* response) {
  BF_RETURN_IF_ERROR(model.CheckNotDeleted());
  if (!batch.ok()) return batch.status();
  // Only this queue publishes snapshots, so the step runs on this one.
  BF_RETURN_IF_ERROR(CheckStepAnswerSize(env, model, request, *model.trainer().parameters()));
  RunProfile profile;
  StepOptions options{.return_gradients = request.return_gradients(),
                      .run = WithProfile(run, request.profile(), &profile)};
  if (request.has_learning_rate()) options.learning_rate = request.learning_rate();
  if (request.has_if_step()) options.if_step = request.if_step();
  const auto started = std::chrono::steady_clock::now();
  BF_ASSIGN_OR_RETURN(StepResult result, env.data_parallel != nullptr
                                             ? env.data_parallel->Step(model, *batch, options)
                                             : model.trainer().Step(Feeds(*batch), options));
  const auto ended = std::chrono::steady_clock::now();
  model.training_stats().RecordStep({.step = result.step,
                                     .loss = result.loss,
                                     .metrics = model.MetricValues(result.metrics),
                                     .rows = BatchRows(request.batch()),
                                     .time = ended - started,
                                     .ended = ended,
                                     .ended_unix_ms = NowUnixMs()});
  model.MarkChanged();
  env.autosave->AfterStep(model);
  response->set_step(result.step);
  response->set_loss(result.loss);
  EncodeMetrics(result.metrics, response->mutable_metrics());
  EncodeTensors(result.gradients, response->mutable_gradients());
  if (request.return_parameters()) {
    // Only this queue publishes snapshots, so the current one is this step's.
    EncodeTensors(model.trainer().parameters()->values, response->mutable_parameters());
  }
  if (request.profile()) ProfileToProto(profile, response->mutable_profile());
  return Status::Ok();
}

Status GetParameters(const Model& model, const v1::GetParametersRequest& request,
                     v1::GetParametersResponse* response) {
  BF_RETURN_IF_ERROR(CheckLengths("parameter", request.names(), kMaxNameBytes));
  std::shared_ptr<const ParameterSnapshot> snapshot = model.trainer().parameters();
  response->set_step(snapshot->step);
  if (request.names().empty()) {
    EncodeTensors(snapshot->values, response->mutable_parameters());
    EncodeTensors(snapshot->state, response->mutable_state());
    return Status::Ok();
  }
  for (const std::string& name : request.names()) {
    if (auto it = snapshot->values.find(name); it != snapshot->values.end()) {
      TensorToProto(it->second, &(*response->mutable_parameters())[name]);
    } else if (auto st = snapshot->state.find(name); st != snapshot->state.end()) {
      TensorToProto(st->second, &(*response->mutable_state())[name]);
    } else {
      return NotFoundError("parameter " + Quoted(name) + " not found");
    }
  }
  return Status::Ok();
}

Status SetParameters(const ServiceEnv& env, Model& model, const v1::SetParametersRequest& request,
                     v1::SetParametersResponse* response) {
  BF_ASSIGN_OR_RETURN(TensorMap values,
                      DecodeTensors(request.parameters(), "parameter",
                                    env.config.limits.max_tensor_elements, model.dtype()));
  std::optional<int64_t> if_step;
  if (request.has_if_step()) if_step = request.if_step();
  BF_RETURN_IF_ERROR(model.trainer().SetParameters(values, if_step));
  model.MarkChanged();
  if (env.data_parallel != nullptr) BF_RETURN_IF_ERROR(env.data_parallel->ShareModel(model));
  response->set_step(model.trainer().parameters()->step);
  return Status::Ok();
}

StatusOr<CheckpointSelector> SelectCheckpoint(const std::string& name,
                                              std::optional<int64_t> step) {
  if (!name.empty() && step.has_value()) {
    return InvalidArgumentError("give a checkpoint's name or its step, not both");
  }
  return CheckpointSelector{.name = name, .step = step};
}

Status NoCheckpointIsPrecondition(const Status& status, const CheckpointSelector& selector,
                                  const std::string& id) {
  if (status.code() == StatusCode::kNotFound && selector.name.empty() && !selector.step) {
    return FailedPreconditionError("model '" + id + "' has no checkpoint");
  }
  return status;
}

void CheckpointInfoToProto(const StoredCheckpoint& stored, v1::CheckpointInfo* info) {
  info->set_name(stored.name);
  info->set_step(stored.step);
  info->set_saved_unix_ms(stored.saved_unix_ms);
  info->set_bytes(stored.bytes);
  info->set_current(stored.current);
  info->set_sequence(stored.sequence);
  info->set_damage(stored.damage);
}

StatusOr<v1::SaveCheckpointResponse> SaveCheckpoint(const ServiceEnv& env, Model& model,
                                                    const std::string& name, bool replace) {
  const int64_t generation = model.generation();
  v1::CheckpointRecord record = model.TakeCheckpoint();
  model.schedule().Restart(record.step(), CheckpointSchedule::Clock::now());
  std::lock_guard<std::mutex> file_lock(model.checkpoint_mu());
  BF_ASSIGN_OR_RETURN(const StoredCheckpoint saved,
                      env.store->SaveCheckpoint(model.id(), record, name, replace));
  model.MarkSaved(generation, record.step());
  v1::SaveCheckpointResponse response;
  response.set_step(record.step());
  response.set_bytes(saved.bytes);
  CheckpointInfoToProto(saved, response.mutable_checkpoint());
  return response;
}

Status RestoreCheckpoint(const ServiceEnv& env, Model& model,
                         const v1::RestoreCheckpointRequest& request,
                         v1::RestoreCheckpointResponse* response) {
  BF_ASSIGN_OR_RETURN(
      const CheckpointSelector selector,
      SelectCheckpoint(request.name(),
                       request.has_step() ? std::optional<int64_t>(request.step()) : std::nullopt));
  // After any automatic write in flight: the latest checkpoint is the one restored.
  std::lock_guard<std::mutex> file_lock(model.checkpoint_mu());
  StatusOr<LoadedCheckpoint> loaded = env.store->LoadCheckpoint(model.id(), selector);
  BF_RETURN_IF_ERROR(NoCheckpointIsPrecondition(loaded.status(), selector, model.id()));
  // Kept until the restored checkpoint is the current one on disk too: if that fails, the model
  // goes back to this state, so memory and what a restart loads never disagree.
  std::optional<Trainer::Checkpoint> before;
  v1::TrainingHistory history_before;
  if (!loaded->info.current) {
    before = model.trainer().TakeCheckpoint();
    history_before = model.training_stats().History();
  }
  BF_RETURN_IF_ERROR(model.RestoreCheckpoint(loaded->record, env.config.limits.max_tensor_elements)
                         .WithPrefix(loaded->info.path));
  if (before.has_value()) {
    if (Status made_current = env.store->SetCurrent(model.id(), loaded->info.path);
        !made_current.ok()) {
      // The state was the model's a moment ago, so it fits. Should going back fail anyway, the
      // model keeps the restored state, marked changed so the next save writes it, and the
      // answer says both.
      const Status back = model.trainer().RestoreCheckpoint(*before);
      if (back.ok()) {
        model.training_stats().Restore(&history_before, before->parameters->step);
        return made_current;
      }
      model.MarkChanged();
      return InternalError(made_current.message() +
                           "; and going back to the state before failed: " + back.message());
    }
    loaded->info.current = true;
  }
  model.MarkChanged();
  model.MarkSaved(model.generation(), loaded->record.step());
  model.schedule().Restart(loaded->record.step(), CheckpointSchedule::Clock::now());
  if (env.data_parallel != nullptr) BF_RETURN_IF_ERROR(env.data_parallel->ShareModel(model));
  response->set_step(loaded->record.step());
  CheckpointInfoToProto(loaded->info, response->mutable_checkpoint());
  return Status::Ok();
}

Status ListCheckpoints(const ServiceEnv& env, Model& model, v1::ListCheckpointsResponse* response) {
  std::lock_guard<std::mutex> file_lock(model.checkpoint_mu());
  BF_ASSIGN_OR_RETURN(const std::vector<StoredCheckpoint> checkpoints,
                      env.store->ListCheckpoints(model.id()));
  for (const StoredCheckpoint& checkpoint : checkpoints) {
    CheckpointInfoToProto(checkpoint, response->add_checkpoints());
  }
  return Status::Ok();
}

Status DeleteCheckpoint(const ServiceEnv& env, Model& model, const std::string& name) {
  std::lock_guard<std::mutex> file_lock(model.checkpoint_mu());
  return env.store->DeleteCheckpoint(model.id(), name);
}

}  // namespace backflow::server::ops
