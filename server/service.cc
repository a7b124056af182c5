#include "server/service.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>

#include "server/call.h"
#include "server/caller_check.h"
#include "server/checked_method.h"
#include "server/checkpoint_stream.h"
#include "server/decode_errors.h"
#include "server/grpc_status.h"
#include "server/infer_call.h"
#include "server/model_call.h"
#include "server/operations.h"
#include "server/train_stream.h"

namespace backflow::server {
namespace {

using Ctx = grpc::CallbackServerContext;

}  // namespace

template <typename Request, typename Response>
void BackflowService::CheckDecoding(const char* rpc,
                                    Reactor* (BackflowService::*method)(Ctx*, const Request*,
                                                                        Response*)) {
  auto [index, handler] = CheckedMethod(env_, "Backflow", rpc, this, method);
  MarkMethodCallback(index, handler);
}

BackflowService::BackflowService(ServiceEnv* env) : env_(env) {
  CheckDecoding("CreateModel", &BackflowService::CreateModel);
  CheckDecoding("GetModel", &BackflowService::GetModel);
  CheckDecoding("ListModels", &BackflowService::ListModels);
  CheckDecoding("DeleteModel", &BackflowService::DeleteModel);
  CheckDecoding("Infer", &BackflowService::Infer);
  CheckDecoding("ComputeGradients", &BackflowService::ComputeGradients);
  CheckDecoding("TrainStep", &BackflowService::TrainStep);
  CheckDecoding("GetParameters", &BackflowService::GetParameters);
  CheckDecoding("SetParameters", &BackflowService::SetParameters);
  CheckDecoding("SaveCheckpoint", &BackflowService::SaveCheckpoint);
  CheckDecoding("RestoreCheckpoint", &BackflowService::RestoreCheckpoint);
  CheckDecoding("ListCheckpoints", &BackflowService::ListCheckpoints);
  CheckDecoding("DeleteCheckpoint", &BackflowService::DeleteCheckpoint);
  CheckDecoding("Evaluate", &BackflowService::Evaluate);
  CheckDecoding("CheckGradients", &BackflowService::CheckGradients);
  CheckDecoding("ExportModel", &BackflowService::ExportModel);
}

grpc::ServerUnaryReactor* BackflowService::CreateModel(Ctx* ctx, const v1::CreateModelRequest* req,
                                                       v1::ModelInfo* resp) {
  auto* call = new UnaryCall(env_, ctx, "CreateModel", "", resp);
  // The name it asks for must carry the token's prefix (admin tokens have none).
  if (Status allowed = CheckCaller(*env_, ctx, "CreateModel", req->name()); !allowed.ok()) {
    call->Reply(allowed);
    return call;
  }
  const ModelQuota quota = CallerModelQuota(*env_, ctx);
  StatusOr<ModelRegistry::Reservation> reserved =
      env_->registry.Reserve(quota.owner, quota.max_models);
  if (!reserved.ok()) {
    call->Reply(reserved.status());
    return call;
  }
  if (Status admitted = call->Admit(); !admitted.ok()) {
    call->Reply(admitted);
    return call;  // `reserved` gives its place back here
  }
  // Held by the job until it ends: a creation that fails, throws or is cancelled before it
  // runs gives the place back when the job is destroyed.
  auto reservation = std::make_shared<ModelRegistry::Reservation>(std::move(*reserved));
  ServiceEnv* env = env_;
  env_->pool->Submit([env, call, req, resp, reservation] {
    call->RunAndReply([&] { return ops::CreateModel(*env, *req, *reservation, resp); });
  });
  return call;
}

grpc::ServerWriteReactor<v1::CheckpointChunk>* BackflowService::DownloadCheckpoint(
    Ctx* ctx, const v1::DownloadCheckpointRequest* req) {
  return NewDownloadStream(env_, ctx, req);
}

grpc::ServerReadReactor<v1::CheckpointChunk>* BackflowService::UploadCheckpoint(
    Ctx* ctx, v1::ModelInfo* resp) {
  return NewUploadStream(env_, ctx, resp);
}

grpc::ServerUnaryReactor* BackflowService::GetModel(Ctx* ctx, const v1::GetModelRequest* req,
                                                    v1::ModelInfo* resp) {
  auto* call = new UnaryCall(env_, ctx, "GetModel", req->model_id(), resp);
  StatusOr<std::shared_ptr<Model>> model = env_->registry.Get(req->model_id());
  if (model.ok()) {
    if (Status allowed = CheckCaller(*env_, ctx, "GetModel", (*model)->name()); !allowed.ok()) {
      model = allowed;
    }
  }
  if (model.ok()) *resp = (*model)->Info(req->history());
  call->Reply(model.status());
  return call;
}

grpc::ServerUnaryReactor* BackflowService::ListModels(Ctx* ctx, const v1::ListModelsRequest* req,
                                                      v1::ListModelsResponse* resp) {
  auto* call = new UnaryCall(env_, ctx, "ListModels", "", resp);
  const std::function<bool(std::string_view)> visible = VisibleModels(*env_, ctx);
  for (const std::shared_ptr<Model>& model : env_->registry.All()) {
    if (visible(model->name())) *resp->add_models() = model->Info();
  }
  // Damaged models stay listed (id only, checkpoint_step -1); every call on one answers its
  // DATA_LOSS, which says what is damaged.
  // Their names cannot be read: only a token that is not limited to a prefix sees them.
  for (const auto& [id, damage] :
       visible("") ? env_->registry.Damaged() : decltype(env_->registry.Damaged()){}) {
    v1::ModelInfo* info = resp->add_models();
    info->set_id(id);
    info->set_checkpoint_step(-1);
  }
  std::sort(resp->mutable_models()->begin(), resp->mutable_models()->end(),
            [](const v1::ModelInfo& a, const v1::ModelInfo& b) { return a.id() < b.id(); });
  call->Reply(Status::Ok());
  return call;
}

grpc::ServerUnaryReactor* BackflowService::DeleteModel(Ctx* ctx, const v1::DeleteModelRequest* req,
                                                       v1::DeleteModelResponse* resp) {
  auto* call = new UnaryCall(env_, ctx, "DeleteModel", req->model_id(), resp);
  // No admission slot: deleting must work however busy the server is. The model leaves the
  // registry only once its files are gone (ops::DeleteModel), so a failed delete changes
  // nothing; work queued behind the delete finds it deleted.
  ServiceEnv* env = env_;
  if (env_->registry.IsDamaged(req->model_id())) {
    env_->pool->Submit([env, call, id = req->model_id()] {
      call->RunAndReply([&] { return ops::DeleteDamagedModel(*env, id); });
    });
    return call;
  }
  StatusOr<std::shared_ptr<Model>> model = env_->registry.Get(req->model_id());
  if (!model.ok()) {
    call->Reply(model.status());
    return call;
  }
  std::shared_ptr<Model> doomed = *model;
  doomed->queue().Post([env, call, doomed] {
    call->RunAndReply([&] { return ops::DeleteModel(*env, *doomed); });
  });
  return call;
}

grpc::ServerUnaryReactor* BackflowService::Infer(Ctx* ctx, const v1::InferRequest* req,
                                                 v1::InferResponse* resp) {
  const InferTiming timing{.arrived = InferenceStats::Clock::now()};
  // gRPC keeps the request until the call replies: shared without a copy or an owner.
  std::shared_ptr<const v1::InferRequest> request(req, [](const v1::InferRequest*) {});
  return ServeInfer(env_, ctx, resp, "Infer", req->model_id(), env_->registry.Get(req->model_id()),
                    std::move(request), timing,
                    [resp](const Model&, v1::InferResponse& answer) { resp->Swap(&answer); });
}

grpc::ServerUnaryReactor* BackflowService::ComputeGradients(
    Ctx* ctx, const v1::ComputeGradientsRequest* req, v1::ComputeGradientsResponse* resp) {
  const ServiceEnv* env = env_;
  return OnModel(
      env_, ctx, resp, "ComputeGradients", req->model_id(), Lane::kConcurrent,
      [env, req, resp](Model& model, const RunOptions& run) {
        return ops::ComputeGradients(*env, model, *req, run, resp);
      },
      &req->batch());
}

grpc::ServerUnaryReactor* BackflowService::TrainStep(Ctx* ctx, const v1::TrainStepRequest* req,
                                                     v1::TrainStepResponse* resp) {
  const ServiceEnv* env = env_;
  return OnModel(
      env_, ctx, resp, "TrainStep", req->model_id(), Lane::kSerial,
      [env, req, resp](Model& model, const RunOptions& run) {
        return ops::TrainStep(*env, model, *req, run, resp);
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
  return OnModel(env_, ctx, resp, "GetParameters", req->model_id(), Lane::kConcurrent,
                 [req, resp](Model& model, const RunOptions&) {
                   return ops::GetParameters(model, *req, resp);
                 });
}

grpc::ServerUnaryReactor* BackflowService::SetParameters(Ctx* ctx,
                                                         const v1::SetParametersRequest* req,
                                                         v1::SetParametersResponse* resp) {
  const ServiceEnv* env = env_;
  return OnModel(env_, ctx, resp, "SetParameters", req->model_id(), Lane::kSerial,
                 [env, req, resp](Model& model, const RunOptions&) {
                   return ops::SetParameters(*env, model, *req, resp);
                 });
}

grpc::ServerUnaryReactor* BackflowService::SaveCheckpoint(Ctx* ctx,
                                                          const v1::SaveCheckpointRequest* req,
                                                          v1::SaveCheckpointResponse* resp) {
  const ServiceEnv* env = env_;
  return OnModel(env_, ctx, resp, "SaveCheckpoint", req->model_id(), Lane::kSerial,
                 [env, req, resp](Model& model, const RunOptions&) -> Status {
                   BF_ASSIGN_OR_RETURN(
                       *resp, ops::SaveCheckpoint(*env, model, req->name(), req->replace()));
                   return Status::Ok();
                 });
}

grpc::ServerUnaryReactor* BackflowService::RestoreCheckpoint(
    Ctx* ctx, const v1::RestoreCheckpointRequest* req, v1::RestoreCheckpointResponse* resp) {
  const ServiceEnv* env = env_;
  return OnModel(env_, ctx, resp, "RestoreCheckpoint", req->model_id(), Lane::kSerial,
                 [env, req, resp](Model& model, const RunOptions&) {
                   return ops::RestoreCheckpoint(*env, model, *req, resp);
                 });
}

grpc::ServerUnaryReactor* BackflowService::ListCheckpoints(Ctx* ctx,
                                                           const v1::ListCheckpointsRequest* req,
                                                           v1::ListCheckpointsResponse* resp) {
  const ServiceEnv* env = env_;
  return OnModel(env_, ctx, resp, "ListCheckpoints", req->model_id(), Lane::kSerial,
                 [env, resp](Model& model, const RunOptions&) {
                   return ops::ListCheckpoints(*env, model, resp);
                 });
}

grpc::ServerUnaryReactor* BackflowService::DeleteCheckpoint(Ctx* ctx,
                                                            const v1::DeleteCheckpointRequest* req,
                                                            v1::DeleteCheckpointResponse* resp) {
  const ServiceEnv* env = env_;
  return OnModel(env_, ctx, resp, "DeleteCheckpoint", req->model_id(), Lane::kSerial,
                 [env, req](Model& model, const RunOptions&) {
                   return ops::DeleteCheckpoint(*env, model, req->name());
                 });
}

grpc::ServerUnaryReactor* BackflowService::Evaluate(Ctx* ctx, const v1::EvaluateRequest* req,
                                                    v1::EvaluateResponse* resp) {
  const ServiceEnv* env = env_;
  return OnPool(env_, ctx, resp, "Evaluate", [env, req, resp](const RunOptions& run) {
    return ops::Evaluate(*env, *req, run, resp);
  });
}

grpc::ServerUnaryReactor* BackflowService::CheckGradients(Ctx* ctx,
                                                          const v1::CheckGradientsRequest* req,
                                                          v1::CheckGradientsResponse* resp) {
  const ServiceEnv* env = env_;
  if (req->has_model_id()) {
    return OnModel(env_, ctx, resp, "CheckGradients", req->model_id(), Lane::kConcurrent,
                   [env, req, resp](Model& model, const RunOptions& run) {
                     return ops::CheckGradients(*env, &model, *req, run, resp);
                   });
  }
  return OnPool(env_, ctx, resp, "CheckGradients", [env, req, resp](const RunOptions& run) {
    return ops::CheckGradients(*env, nullptr, *req, run, resp);
  });
}

grpc::ServerUnaryReactor* BackflowService::ExportModel(Ctx* ctx,
                                                       const v1::ExportModelRequest* req,
                                                       v1::ExportModelResponse* resp) {
  const ServiceEnv* env = env_;
  return OnModel(env_, ctx, resp, "ExportModel", req->model_id(), Lane::kConcurrent,
                 [env, req, resp](Model& model, const RunOptions&) {
                   return ops::ExportModel(*env, model, *req, resp);
                 });
}

}  // namespace backflow::server
