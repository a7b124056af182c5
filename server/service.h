// BackflowService: the backflow.v1.Backflow handlers (gRPC callback API).
//
// A handler is reactor glue: it creates the call's reactor (server/call.h; the Train stream's is
// server/train_stream.h), answers cheap lookups inline, and hands everything else, with an
// admission slot (server/admission.h), to the ComputePool or the model's SerialQueue (Note
// [Serving threads]), where the operation of server/operations.h runs and the reactor replies.
// Handlers never block. A call's reactor turns the client's cancellation and deadline into the
// engine's RunOptions, so abandoned work stops between two nodes.
#ifndef BACKFLOW_SERVER_SERVICE_H_
#define BACKFLOW_SERVER_SERVICE_H_

#include "backflow/v1/service.grpc.pb.h"
#include "server/service_env.h"

namespace backflow::server {

class BackflowService final : public v1::Backflow::CallbackService {
 public:
  // Every unary method answers an undecodable request with INVALID_ARGUMENT (Note
  // [Undecodable requests] in server/decode_errors.h).
  explicit BackflowService(ServiceEnv* env);

  using Ctx = grpc::CallbackServerContext;
  using Reactor = grpc::ServerUnaryReactor;

  Reactor* CreateModel(Ctx* ctx, const v1::CreateModelRequest* req, v1::ModelInfo* resp) override;
  Reactor* GetModel(Ctx* ctx, const v1::GetModelRequest* req, v1::ModelInfo* resp) override;
  Reactor* ListModels(Ctx* ctx, const v1::ListModelsRequest* req,
                      v1::ListModelsResponse* resp) override;
  Reactor* DeleteModel(Ctx* ctx, const v1::DeleteModelRequest* req,
                       v1::DeleteModelResponse* resp) override;
  Reactor* Infer(Ctx* ctx, const v1::InferRequest* req, v1::InferResponse* resp) override;
  Reactor* ComputeGradients(Ctx* ctx, const v1::ComputeGradientsRequest* req,
                            v1::ComputeGradientsResponse* resp) override;
  Reactor* TrainStep(Ctx* ctx, const v1::TrainStepRequest* req,
                     v1::TrainStepResponse* resp) override;
  grpc::ServerBidiReactor<v1::TrainStepRequest, v1::TrainStepResponse>* Train(Ctx* ctx) override;
  Reactor* GetParameters(Ctx* ctx, const v1::GetParametersRequest* req,
                         v1::GetParametersResponse* resp) override;
  Reactor* SetParameters(Ctx* ctx, const v1::SetParametersRequest* req,
                         v1::SetParametersResponse* resp) override;
  Reactor* SaveCheckpoint(Ctx* ctx, const v1::SaveCheckpointRequest* req,
                          v1::SaveCheckpointResponse* resp) override;
  Reactor* RestoreCheckpoint(Ctx* ctx, const v1::RestoreCheckpointRequest* req,
                             v1::RestoreCheckpointResponse* resp) override;
  Reactor* ListCheckpoints(Ctx* ctx, const v1::ListCheckpointsRequest* req,
                           v1::ListCheckpointsResponse* resp) override;
  Reactor* DeleteCheckpoint(Ctx* ctx, const v1::DeleteCheckpointRequest* req,
                            v1::DeleteCheckpointResponse* resp) override;
  grpc::ServerWriteReactor<v1::CheckpointChunk>* DownloadCheckpoint(
      Ctx* ctx, const v1::DownloadCheckpointRequest* req) override;
  grpc::ServerReadReactor<v1::CheckpointChunk>* UploadCheckpoint(Ctx* ctx,
                                                                 v1::ModelInfo* resp) override;
  Reactor* Evaluate(Ctx* ctx, const v1::EvaluateRequest* req, v1::EvaluateResponse* resp) override;
  Reactor* CheckGradients(Ctx* ctx, const v1::CheckGradientsRequest* req,
                          v1::CheckGradientsResponse* resp) override;
  Reactor* ExportModel(Ctx* ctx, const v1::ExportModelRequest* req,
                       v1::ExportModelResponse* resp) override;

 private:
  template <typename Request, typename Response>
  void CheckDecoding(const char* rpc, Reactor* (BackflowService::*method)(Ctx*, const Request*,
                                                                         Response*));
  ServiceEnv* const env_;
};

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_SERVICE_H_
