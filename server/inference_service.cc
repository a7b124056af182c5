#include "server/inference_service.h"

#include <memory>
#include <string>
#include <utility>

#include "server/call.h"
#include "server/caller_check.h"
#include "server/checked_method.h"
#include "server/infer_call.h"
#include "server/inference_models.h"
#include "server/inference_tensors.h"

namespace backflow::server {
namespace {

using Ctx = grpc::CallbackServerContext;
using Clock = InferenceStats::Clock;

// The model `name` addresses, if the caller's token may use it for `rpc`.
StatusOr<std::shared_ptr<Model>> Addressed(ServiceEnv& env, const Ctx* ctx, const char* rpc,
                                           const std::string& name, const std::string& version) {
  BF_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, FindModel(env.registry, name, version));
  BF_RETURN_IF_ERROR(CheckCaller(env, ctx, rpc, model->name()));
  BF_RETURN_IF_ERROR(model->CheckNotDeleted());
  return model;
}

// A call answered on the gRPC thread: `answer` fills in the response from the model.
template <typename Answer>
grpc::ServerUnaryReactor* AnswerHere(ServiceEnv* env, Ctx* ctx,
                                     const google::protobuf::MessageLite* response, const char* rpc,
                                     const std::string& name, const std::string& version,
                                     Answer answer) {
  auto* call = new UnaryCall(env, ctx, rpc, name, response);
  StatusOr<std::shared_ptr<Model>> model = Addressed(*env, ctx, rpc, name, version);
  if (model.ok()) answer(**model);
  call->Reply(model.status());
  return call;
}

// The names of the graph's outputs, in its order: ModelInfer's answer lists them so.
std::vector<std::string> OutputOrder(const Model& model) {
  const Graph& graph = model.trainer().graph();
  std::vector<std::string> names;
  for (ValueId id : graph.outputs()) names.push_back(graph.value(id).name);
  return names;
}

}  // namespace

InferenceService::InferenceService(ServiceEnv* env) : env_(env) {
  using S = InferenceService;
  const auto add = [this](std::pair<int, grpc::internal::MethodHandler*> method) {
    MarkMethodCallback(method.first, method.second);
  };
  constexpr char kService[] = "GRPCInferenceService";
  add(CheckedMethod(env, kService, "ServerLive", this, &S::ServerLive, RoleCheck::kOpen));
  add(CheckedMethod(env, kService, "ServerReady", this, &S::ServerReady, RoleCheck::kOpen));
  add(CheckedMethod(env, kService, "ModelReady", this, &S::ModelReady));
  add(CheckedMethod(env, kService, "ServerMetadata", this, &S::ServerMetadata));
  add(CheckedMethod(env, kService, "ModelMetadata", this, &S::ModelMetadata));
  add(CheckedMethod(env, kService, "ModelInfer", this, &S::ModelInfer));
  add(CheckedMethod(env, kService, "ModelConfig", this, &S::ModelConfig));
  add(CheckedMethod(env, kService, "ModelStatistics", this, &S::ModelStatistics));
}

grpc::ServerUnaryReactor* InferenceService::ServerLive(Ctx* ctx,
                                                       const inference::ServerLiveRequest*,
                                                       inference::ServerLiveResponse* resp) {
  resp->set_live(true);
  auto* call = new UnaryCall(env_, ctx, "ServerLive", "", resp);
  call->Reply(Status::Ok());
  return call;
}

grpc::ServerUnaryReactor* InferenceService::ServerReady(Ctx* ctx,
                                                        const inference::ServerReadyRequest*,
                                                        inference::ServerReadyResponse* resp) {
  resp->set_ready(!env_->admission.draining());
  auto* call = new UnaryCall(env_, ctx, "ServerReady", "", resp);
  call->Reply(Status::Ok());
  return call;
}

grpc::ServerUnaryReactor* InferenceService::ModelReady(Ctx* ctx,
                                                       const inference::ModelReadyRequest* req,
                                                       inference::ModelReadyResponse* resp) {
  auto* call = new UnaryCall(env_, ctx, "ModelReady", req->name(), resp);
  StatusOr<std::shared_ptr<Model>> model =
      Addressed(*env_, ctx, "ModelReady", req->name(), req->version());
  // Not ready, rather than an error, for a model that is missing, damaged or being deleted:
  // what a client polling for readiness expects. Malformed names, names several models share
  // and tokens that may not see the model are errors.
  const StatusCode code = model.status().code();
  const bool not_ready = (code == StatusCode::kNotFound || code == StatusCode::kDataLoss) &&
                         CheckVersion(req->name(), req->version()).ok();
  resp->set_ready(model.ok() && !env_->admission.draining());
  call->Reply(not_ready ? Status::Ok() : model.status());
  return call;
}

grpc::ServerUnaryReactor* InferenceService::ServerMetadata(
    Ctx* ctx, const inference::ServerMetadataRequest*, inference::ServerMetadataResponse* resp) {
  resp->set_name("backflow");
  resp->set_version(BACKFLOW_VERSION);
  resp->add_extensions("model_configuration");
  resp->add_extensions("statistics");
  auto* call = new UnaryCall(env_, ctx, "ServerMetadata", "", resp);
  call->Reply(Status::Ok());
  return call;
}

grpc::ServerUnaryReactor* InferenceService::ModelMetadata(
    Ctx* ctx, const inference::ModelMetadataRequest* req, inference::ModelMetadataResponse* resp) {
  return AnswerHere(
      env_, ctx, resp, "ModelMetadata", req->name(), req->version(),
      [req, resp](const Model& model) { *resp = server::ModelMetadata(model, req->name()); });
}

grpc::ServerUnaryReactor* InferenceService::ModelConfig(Ctx* ctx,
                                                        const inference::ModelConfigRequest* req,
                                                        inference::ModelConfigResponse* resp) {
  const ServiceEnv* env = env_;
  return AnswerHere(
      env_, ctx, resp, "ModelConfig", req->name(), req->version(),
      [env, req, resp](const Model& model) {
        *resp->mutable_config() =
            server::ModelConfig(model, req->name(), env->config.limits.max_tensor_elements,
                                env->BatchSettingsFor(model));
      });
}

grpc::ServerUnaryReactor* InferenceService::ModelStatistics(
    Ctx* ctx, const inference::ModelStatisticsRequest* req,
    inference::ModelStatisticsResponse* resp) {
  if (!req->name().empty()) {
    return AnswerHere(env_, ctx, resp, "ModelStatistics", req->name(), req->version(),
                      [req, resp](const Model& model) {
                        *resp->add_model_stats() = server::ModelStatistics(model, req->name());
                      });
  }
  // Every model the token may see, under its name (its id when it has none).
  auto* call = new UnaryCall(env_, ctx, "ModelStatistics", "", resp);
  const auto visible = VisibleModels(*env_, ctx);
  for (const std::shared_ptr<Model>& model : env_->registry.All()) {
    if (!visible(model->name())) continue;
    const std::string& name = model->name().empty() ? model->id() : model->name();
    *resp->add_model_stats() = server::ModelStatistics(*model, name);
  }
  call->Reply(Status::Ok());
  return call;
}

grpc::ServerUnaryReactor* InferenceService::ModelInfer(Ctx* ctx,
                                                       const inference::ModelInferRequest* req,
                                                       inference::ModelInferResponse* resp) {
  InferTiming timing{.arrived = Clock::now()};
  StatusOr<std::shared_ptr<Model>> model =
      Addressed(*env_, ctx, "ModelInfer", req->model_name(), req->model_version());
  auto request = std::make_shared<v1::InferRequest>();
  if (model.ok()) {
    StatusOr<v1::InferRequest> converted =
        ToInferRequest(*req, (*model)->id(), env_->config.limits.max_tensor_elements);
    if (converted.ok()) {
      *request = std::move(*converted);
    } else {
      (*model)->inference_stats().RecordFailure(timing.arrived);
      model = converted.status();
    }
  }
  timing.input = Clock::now() - timing.arrived;
  const std::string log_id = model.ok() ? (*model)->id() : req->model_name();
  return ServeInfer(env_, ctx, resp, "ModelInfer", log_id, std::move(model), std::move(request),
                    timing, [req, resp](const Model& target, v1::InferResponse& answer) {
                      resp->set_model_name(req->model_name());
                      resp->set_model_version(kModelVersion);
                      ToInferResponse(*req, answer, OutputOrder(target), resp);
                    });
}

}  // namespace backflow::server
