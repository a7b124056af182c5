// InferenceService: the Open Inference Protocol (KServe v2 gRPC, `inference.GRPCInferenceService`)
// beside backflow.v1 on the same port, so that clients written for KServe or Triton (tritonclient,
// perf_analyzer, stubs generated from grpc_predict_v2.proto) call backflow models unchanged.
//
// A backflow model is addressed by its id or its name (server/inference_models.h), in one version,
// "1"; its placeholders are the inputs and its graph's outputs the outputs. ModelInfer runs as
// backflow.v1 Infer does (server/inference_tensors.h): same limits, admission, deadlines,
// cancellation and token checks (the read role, and the token's model-name prefix).
// ServerLive and ServerReady are open, as grpc.health.v1 is; ServerReady turns false when the
// server drains for shutdown. docs/inference-protocol.md is the user's guide.
#ifndef BACKFLOW_SERVER_INFERENCE_SERVICE_H_
#define BACKFLOW_SERVER_INFERENCE_SERVICE_H_

#include "inference/grpc_service.grpc.pb.h"
#include "server/service_env.h"

namespace backflow::server {

class InferenceService final : public inference::GRPCInferenceService::CallbackService {
 public:
  explicit InferenceService(ServiceEnv* env);

  using Ctx = grpc::CallbackServerContext;
  using Reactor = grpc::ServerUnaryReactor;

  Reactor* ServerLive(Ctx* ctx, const inference::ServerLiveRequest* req,
                      inference::ServerLiveResponse* resp) override;
  Reactor* ServerReady(Ctx* ctx, const inference::ServerReadyRequest* req,
                       inference::ServerReadyResponse* resp) override;
  Reactor* ModelReady(Ctx* ctx, const inference::ModelReadyRequest* req,
                      inference::ModelReadyResponse* resp) override;
  Reactor* ServerMetadata(Ctx* ctx, const inference::ServerMetadataRequest* req,
                          inference::ServerMetadataResponse* resp) override;
  Reactor* ModelMetadata(Ctx* ctx, const inference::ModelMetadataRequest* req,
                         inference::ModelMetadataResponse* resp) override;
  Reactor* ModelInfer(Ctx* ctx, const inference::ModelInferRequest* req,
                      inference::ModelInferResponse* resp) override;
  Reactor* ModelConfig(Ctx* ctx, const inference::ModelConfigRequest* req,
                       inference::ModelConfigResponse* resp) override;
  Reactor* ModelStatistics(Ctx* ctx, const inference::ModelStatisticsRequest* req,
                           inference::ModelStatisticsResponse* resp) override;

 private:
  ServiceEnv* const env_;
};

// Its full name, for health and reflection.
inline constexpr char kInferenceServiceName[] = "inference.GRPCInferenceService";

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_INFERENCE_SERVICE_H_
