// BackflowService: the backflow.v1.Backflow handlers (gRPC callback API).
//
// Every handler returns at once: cheap lookups answer inline, everything else becomes a job on
// the ComputePool or the model's SerialQueue (Note [Serving threads]) that finishes the call.
// A call's reactor turns the client's cancellation and deadline into the engine's RunOptions,
// so abandoned work stops between two nodes.
#ifndef BACKFLOW_SERVER_SERVICE_H_
#define BACKFLOW_SERVER_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "backflow/v1/service.grpc.pb.h"
#include "engine/api/import.h"
#include "server/config.h"
#include "server/convert.h"
#include "server/model.h"
#include "server/storage/checkpoint_store.h"
#include "server/work_queue.h"

namespace backflow::server {

// What the handlers share: configuration, the models, the data directory, the compute pool.
struct ServiceEnv {
  ServiceEnv(const ServerConfig& config, CheckpointStore* store, ComputePool* pool);

  // Takes a slot among limits.max_pending_requests; RESOURCE_EXHAUSTED when none is free,
  // UNAVAILABLE while draining.
  Status Admit();
  void Release();
  // Checkpoints `model` now (call from its queue, or once the server is idle).
  StatusOr<v1::SaveCheckpointResponse> SaveCheckpoint(Model& model);

  const ServerConfig config;
  const GraphLimits graph_limits;
  ModelRegistry registry;
  CheckpointStore* const store;
  ComputePool* const pool;
  std::atomic<int64_t> next_request_id{1};
  std::atomic<int64_t> pending{0};
  std::atomic<int64_t> streams{0};
  std::atomic<bool> draining{false};
};

class BackflowService final : public v1::Backflow::CallbackService {
 public:
  explicit BackflowService(ServiceEnv* env) : env_(env) {}

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
  Reactor* Evaluate(Ctx* ctx, const v1::EvaluateRequest* req, v1::EvaluateResponse* resp) override;

 private:
  ServiceEnv* const env_;
};

// The body of one training step, shared by TrainStep and the Train stream.
Status RunTrainStep(const ServiceEnv& env, Model& model, const v1::TrainStepRequest& request,
                    const RunOptions& run, v1::TrainStepResponse* response);
// The request's batch as engine tensors (InvalidArgument naming the tensor), and the step on a
// batch decoded beforehand: the Train stream decodes each request as it arrives, off the
// model's queue (Note [Train stream flow]).
StatusOr<TensorMap> DecodeTrainBatch(const ServiceEnv& env, const Model& model,
                                     const v1::TrainStepRequest& request);
Status RunDecodedTrainStep(Model& model, const v1::TrainStepRequest& request,
                           const StatusOr<TensorMap>& batch, const RunOptions& run,
                           v1::TrainStepResponse* response);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_SERVICE_H_
