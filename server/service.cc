#include "server/service.h"

#include <utility>

#include "engine/api/evaluate.h"
#include "server/call.h"
#include "server/convert.h"
#include "server/inputs.h"
#include "server/train_stream.h"

namespace backflow::server {
namespace {

using Ctx = grpc::CallbackServerContext;

GraphLimits LimitsFor(const ServerConfig& config) {
  GraphLimits limits;
  limits.max_nodes = config.limits.max_nodes;
  limits.max_tensor_elements = config.limits.max_tensor_elements;
  return limits;
}

StatusOr<TensorMap> DecodeBatch(const ServiceEnv& env, const Model& model,
                                const WireTensorMap& wire, std::string_view what) {
  return DecodeInputs(wire, model.trainer().graph(), model.dtype(),
                      env.config.limits.max_tensor_elements, what);
}

enum class Lane { kConcurrent, kSerial };

using WireTensors = google::protobuf::Map<std::string, v1::Tensor>;

// Note [Tiny requests run where they arrive] in server/work_queue.h.
constexpr int64_t kInlineFlops = 4096;

// True if running the model on `batch` is estimated at no more than kInlineFlops.
bool Tiny(const Model& model, const WireTensors& batch) {
  int64_t rows = 1;
  for (const auto& [name, tensor] : batch) {
    if (tensor.shape_size() > 0) rows = std::max<int64_t>(rows, tensor.shape(0));
  }
  const int64_t flops = model.flops_per_sample();
  return flops >= 0 && rows <= kInlineFlops && flops <= kInlineFlops / rows;
}

// The common shape of a model RPC: find the model, take an admission slot, and run `body` on
// the compute pool (reads) or the model's queue (writes), replying with what it returns.
// With `batch` (a compute request's tensors), a tiny request may run right here instead.
template <typename Body>
grpc::ServerUnaryReactor* OnModel(ServiceEnv* env, Ctx* ctx, const char* rpc,
                                  const std::string& model_id, Lane lane, Body body,
                                  const WireTensors* batch = nullptr) {
  auto* call = new UnaryCall(env, ctx, rpc, model_id);
  StatusOr<std::shared_ptr<Model>> model = env->registry.Get(model_id);
  if (!model.ok()) {
    call->Reply(model.status());
    return call;
  }
  if (Status admitted = env->Admit(); !admitted.ok()) {
    call->Reply(admitted);
    return call;
  }
  std::shared_ptr<Model> target = *model;
  auto job = [call, target, body]() {
    call->RunAndReply(
        [&]() -> Status {
          BF_RETURN_IF_ERROR(target->CheckNotDeleted());
          return body(*target, call->run());
        },
        /*admitted=*/true);
  };
  const bool tiny = batch != nullptr && Tiny(*target, *batch);
  if (lane == Lane::kSerial) {
    if (!tiny || !target->queue().RunHereIfIdle(job)) target->queue().Post(std::move(job));
  } else if (tiny) {
    job();
  } else {
    env->pool->Submit(std::move(job));
  }
  return call;
}

// The same for RPCs that need no model.
template <typename Body>
grpc::ServerUnaryReactor* OnPool(ServiceEnv* env, Ctx* ctx, const char* rpc, Body body) {
  auto* call = new UnaryCall(env, ctx, rpc, "");
  if (Status admitted = env->Admit(); !admitted.ok()) {
    call->Reply(admitted);
    return call;
  }
  env->pool->Submit([call, body]() {
    call->RunAndReply([&] { return body(call->run()); }, /*admitted=*/true);
  });
  return call;
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status CreateModelNow(ServiceEnv& env, const v1::CreateModelRequest& request,
                      v1::ModelInfo* response) {
  v1::ModelRecord record;
  record.set_id(env.registry.NewId());
  *record.mutable_request() = request;
  record.set_created_unix_ms(NowUnixMs());
  BF_ASSIGN_OR_RETURN(std::shared_ptr<Model> model,
                      Model::Create(std::move(record), env.graph_limits,
                                    env.config.limits.max_tensor_elements, env.pool));
  BF_RETURN_IF_ERROR(env.store->CreateModel(model->record()));
  BF_RETURN_IF_ERROR(env.registry.Add(model));
  *response = model->Info();
  return Status::Ok();
}

}  // namespace

ServiceEnv::ServiceEnv(const ServerConfig& config, CheckpointStore* store, ComputePool* pool)
    : config(config),
      graph_limits(LimitsFor(config)),
      registry(config.limits.max_models),
      store(store),
      pool(pool) {}

Status ServiceEnv::Admit() {
  if (draining.load()) return UnavailableError("the server is shutting down");
  if (pending.fetch_add(1) >= config.limits.max_pending_requests) {
    pending.fetch_sub(1);
    return ResourceExhaustedError("more than " +
                                  std::to_string(config.limits.max_pending_requests) +
                                  " requests in flight (--max-pending-requests); retry later");
  }
  return Status::Ok();
}

void ServiceEnv::Release() { pending.fetch_sub(1); }

StatusOr<v1::SaveCheckpointResponse> ServiceEnv::SaveCheckpoint(Model& model) {
  const int64_t generation = model.generation();
  v1::CheckpointRecord record = model.TakeCheckpoint();
  BF_ASSIGN_OR_RETURN(int64_t bytes, store->SaveCheckpoint(model.id(), record));
  model.MarkSaved(generation, record.step());
  v1::SaveCheckpointResponse response;
  response.set_step(record.step());
  response.set_bytes(bytes);
  return response;
}

StatusOr<TensorMap> DecodeTrainBatch(const ServiceEnv& env, const Model& model,
                                     const v1::TrainStepRequest& request) {
  return DecodeBatch(env, model, request.batch(), "batch");
}

Status RunTrainStep(const ServiceEnv& env, Model& model, const v1::TrainStepRequest& request,
                    const RunOptions& run, v1::TrainStepResponse* response) {
  BF_RETURN_IF_ERROR(model.CheckNotDeleted());
  return RunDecodedTrainStep(model, request, DecodeTrainBatch(env, model, request), run, response);
}

Status RunDecodedTrainStep(Model& model, const v1::TrainStepRequest& request,
                           const StatusOr<TensorMap>& decoded, const RunOptions& run,
                           v1::TrainStepResponse* response) {
  BF_RETURN_IF_ERROR(model.CheckNotDeleted());
  if (!decoded.ok()) return decoded.status();
  const TensorMap& batch = *decoded;
  StepOptions options{.return_gradients = request.return_gradients(), .run = run};
  if (request.has_learning_rate()) options.learning_rate = request.learning_rate();
  BF_ASSIGN_OR_RETURN(StepResult result, model.trainer().Step(Feeds(batch), options));
  model.MarkChanged();
  response->set_step(result.step);
  response->set_loss(result.loss);
  EncodeMetrics(result.metrics, response->mutable_metrics());
  EncodeTensors(result.gradients, response->mutable_gradients());
  if (request.return_parameters()) {
    // Only this queue publishes snapshots, so the current one is this step's.
    EncodeTensors(model.trainer().parameters()->values, response->mutable_parameters());
  }
  return Status::Ok();
}

grpc::ServerUnaryReactor* BackflowService::CreateModel(Ctx* ctx, const v1::CreateModelRequest* req,
                                                       v1::ModelInfo* resp) {
  auto* call = new UnaryCall(env_, ctx, "CreateModel", "");
  if (Status reserved = env_->registry.Reserve(); !reserved.ok()) {
    call->Reply(reserved);
    return call;
  }
  if (Status admitted = env_->Admit(); !admitted.ok()) {
    env_->registry.CancelReservation();
    call->Reply(admitted);
    return call;
  }
  ServiceEnv* env = env_;
  env_->pool->Submit([env, call, req, resp] {
    call->RunAndReply(
        [&] {
          Status created = CreateModelNow(*env, *req, resp);
          if (!created.ok()) env->registry.CancelReservation();
          return created;
        },
        /*admitted=*/true);
  });
  return call;
}

grpc::ServerUnaryReactor* BackflowService::GetModel(Ctx* ctx, const v1::GetModelRequest* req,
                                                    v1::ModelInfo* resp) {
  auto* call = new UnaryCall(env_, ctx, "GetModel", req->model_id());
  StatusOr<std::shared_ptr<Model>> model = env_->registry.Get(req->model_id());
  if (model.ok()) *resp = (*model)->Info();
  call->Reply(model.status());
  return call;
}

grpc::ServerUnaryReactor* BackflowService::ListModels(Ctx* ctx, const v1::ListModelsRequest* req,
                                                      v1::ListModelsResponse* resp) {
  auto* call = new UnaryCall(env_, ctx, "ListModels", "");
  for (const std::shared_ptr<Model>& model : env_->registry.All()) {
    *resp->add_models() = model->Info();
  }
  call->Reply(Status::Ok());
  return call;
}

grpc::ServerUnaryReactor* BackflowService::DeleteModel(Ctx* ctx, const v1::DeleteModelRequest* req,
                                                       v1::DeleteModelResponse* resp) {
  auto* call = new UnaryCall(env_, ctx, "DeleteModel", req->model_id());
  // Out of the registry first, so no new work reaches it; its queue finishes what it holds.
  StatusOr<std::shared_ptr<Model>> model = env_->registry.Remove(req->model_id());
  if (!model.ok()) {
    call->Reply(model.status());
    return call;
  }
  ServiceEnv* env = env_;
  std::shared_ptr<Model> doomed = *model;
  doomed->queue().Post([env, call, doomed] {
    call->RunAndReply(
        [&] {
          doomed->MarkDeleted();
          return env->store->DeleteModel(doomed->id());
        },
        /*admitted=*/false);
  });
  return call;
}

grpc::ServerUnaryReactor* BackflowService::Infer(Ctx* ctx, const v1::InferRequest* req,
                                                 v1::InferResponse* resp) {
  const ServiceEnv* env = env_;
  return OnModel(env_, ctx, "Infer", req->model_id(), Lane::kConcurrent,
                 [env, req, resp](Model& model, const RunOptions& run) -> Status {
                   BF_ASSIGN_OR_RETURN(TensorMap inputs,
                                       DecodeBatch(*env, model, req->inputs(), "input"));
                   const Graph& graph = model.trainer().graph();
                   std::vector<std::string> names(req->outputs().begin(), req->outputs().end());
                   if (names.empty()) {
                     BF_ASSIGN_OR_RETURN(names, DefaultOutputs(graph, inputs));
                   }
                   for (const std::string& name : names) {
                     if (!graph.Find(name)) {
                       return InvalidArgumentError("output '" + name + "' is not in the graph");
                     }
                   }
                   std::shared_ptr<const ParameterSnapshot> snapshot =
                       model.trainer().parameters();
                   BF_ASSIGN_OR_RETURN(
                       std::vector<Tensor> outputs,
                       model.trainer().Infer(*snapshot, Feeds(inputs), names, run));
                   for (size_t i = 0; i < names.size(); ++i) {
                     TensorToProto(outputs[i], &(*resp->mutable_outputs())[names[i]]);
                   }
                   resp->set_step(snapshot->step);
                   return Status::Ok();
                 },
                 &req->inputs());
}

grpc::ServerUnaryReactor* BackflowService::ComputeGradients(
    Ctx* ctx, const v1::ComputeGradientsRequest* req, v1::ComputeGradientsResponse* resp) {
  const ServiceEnv* env = env_;
  return OnModel(env_, ctx, "ComputeGradients", req->model_id(), Lane::kConcurrent,
                 [env, req, resp](Model& model, const RunOptions& run) -> Status {
                   BF_ASSIGN_OR_RETURN(TensorMap batch,
                                       DecodeBatch(*env, model, req->batch(), "batch"));
                   BF_ASSIGN_OR_RETURN(StepResult result,
                                       model.trainer().ComputeGradients(Feeds(batch), run));
                   resp->set_step(result.step);
                   resp->set_loss(result.loss);
                   EncodeMetrics(result.metrics, resp->mutable_metrics());
                   EncodeTensors(result.gradients, resp->mutable_gradients());
                   return Status::Ok();
                 },
                 &req->batch());
}

grpc::ServerUnaryReactor* BackflowService::TrainStep(Ctx* ctx, const v1::TrainStepRequest* req,
                                                     v1::TrainStepResponse* resp) {
  const ServiceEnv* env = env_;
  return OnModel(env_, ctx, "TrainStep", req->model_id(), Lane::kSerial,
                 [env, req, resp](Model& model, const RunOptions& run) {
                   return RunTrainStep(*env, model, *req, run, resp);
                 },
                 &req->batch());
}

grpc::ServerBidiReactor<v1::TrainStepRequest, v1::TrainStepResponse>* BackflowService::Train(
    Ctx* ctx) {
  return new TrainStream(env_, ctx);
}

grpc::ServerUnaryReactor* BackflowService::GetParameters(Ctx* ctx,
                                                         const v1::GetParametersRequest* req,
                                                         v1::GetParametersResponse* resp) {
  return OnModel(env_, ctx, "GetParameters", req->model_id(), Lane::kConcurrent,
                 [req, resp](Model& model, const RunOptions&) -> Status {
                   std::shared_ptr<const ParameterSnapshot> snapshot =
                       model.trainer().parameters();
                   resp->set_step(snapshot->step);
                   if (req->names().empty()) {
                     EncodeTensors(snapshot->values, resp->mutable_parameters());
                     return Status::Ok();
                   }
                   for (const std::string& name : req->names()) {
                     auto it = snapshot->values.find(name);
                     if (it == snapshot->values.end()) {
                       return NotFoundError("parameter '" + name + "' not found");
                     }
                     TensorToProto(it->second, &(*resp->mutable_parameters())[name]);
                   }
                   return Status::Ok();
                 });
}

grpc::ServerUnaryReactor* BackflowService::SetParameters(Ctx* ctx,
                                                         const v1::SetParametersRequest* req,
                                                         v1::SetParametersResponse* resp) {
  const ServiceEnv* env = env_;
  return OnModel(
      env_, ctx, "SetParameters", req->model_id(), Lane::kSerial,
      [env, req, resp](Model& model, const RunOptions&) -> Status {
        BF_ASSIGN_OR_RETURN(TensorMap values,
                            DecodeTensors(req->parameters(), "parameter",
                                          env->config.limits.max_tensor_elements, model.dtype()));
        std::optional<int64_t> if_step;
        if (req->has_if_step()) if_step = req->if_step();
        BF_RETURN_IF_ERROR(model.trainer().SetParameters(values, if_step));
        model.MarkChanged();
        resp->set_step(model.trainer().parameters()->step);
        return Status::Ok();
      });
}

grpc::ServerUnaryReactor* BackflowService::SaveCheckpoint(Ctx* ctx,
                                                          const v1::SaveCheckpointRequest* req,
                                                          v1::SaveCheckpointResponse* resp) {
  ServiceEnv* env = env_;
  return OnModel(env_, ctx, "SaveCheckpoint", req->model_id(), Lane::kSerial,
                 [env, resp](Model& model, const RunOptions&) -> Status {
                   BF_ASSIGN_OR_RETURN(*resp, env->SaveCheckpoint(model));
                   return Status::Ok();
                 });
}

grpc::ServerUnaryReactor* BackflowService::RestoreCheckpoint(
    Ctx* ctx, const v1::RestoreCheckpointRequest* req, v1::RestoreCheckpointResponse* resp) {
  ServiceEnv* env = env_;
  return OnModel(env_, ctx, "RestoreCheckpoint", req->model_id(), Lane::kSerial,
                 [env, resp](Model& model, const RunOptions&) -> Status {
                   StatusOr<v1::CheckpointRecord> record = env->store->LoadCheckpoint(model.id());
                   if (record.status().code() == StatusCode::kNotFound) {
                     return FailedPreconditionError("model '" + model.id() +
                                                    "' has no checkpoint");
                   }
                   BF_RETURN_IF_ERROR(record.status());
                   BF_RETURN_IF_ERROR(model.RestoreCheckpoint(
                       *record, env->config.limits.max_tensor_elements));
                   model.MarkChanged();
                   model.MarkSaved(model.generation(), record->step());
                   resp->set_step(record->step());
                   return Status::Ok();
                 });
}

grpc::ServerUnaryReactor* BackflowService::Evaluate(Ctx* ctx, const v1::EvaluateRequest* req,
                                                    v1::EvaluateResponse* resp) {
  const ServiceEnv* env = env_;
  return OnPool(env_, ctx, "Evaluate", [env, req, resp](const RunOptions& run) -> Status {
    BF_ASSIGN_OR_RETURN(Graph graph, ImportGraph(req->graph(), env->graph_limits));
    BF_ASSIGN_OR_RETURN(TensorMap values,
                        DecodeTensors(req->values(), "value",
                                      env->config.limits.max_tensor_elements, std::nullopt));
    EvaluateSpec spec;
    spec.outputs.assign(req->outputs().begin(), req->outputs().end());
    spec.target = req->target();
    spec.wrt.assign(req->wrt().begin(), req->wrt().end());
    spec.seed = req->seed();
    if (req->dtype() != v1::DATA_TYPE_UNSPECIFIED) {
      BF_ASSIGN_OR_RETURN(spec.dtype, DecodeDType(req->dtype(), "dtype"));
    }
    BF_ASSIGN_OR_RETURN(EvaluateResult result,
                        backflow::Evaluate(std::move(graph), values, spec, run));
    for (const auto& [name, tensor] : result.outputs) {
      TensorToProto(tensor, &(*resp->mutable_outputs())[name]);
    }
    for (const auto& [name, tensor] : result.gradients) {
      TensorToProto(tensor, &(*resp->mutable_gradients())[name]);
    }
    return Status::Ok();
  });
}

}  // namespace backflow::server
