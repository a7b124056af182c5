// The operations behind the backflow.v1.Backflow RPCs: each decodes its request (with the
// checks of server/convert.h and server/inputs.h), runs it on a model (or, for Evaluate, on the
// request's own graph) and fills in the response.
//
// They run synchronously on the calling thread and know nothing of gRPC: the handlers of
// server/service.h decide where each one runs (Note [Serving threads]), after checking that the
// model has not been deleted. Operations that change a model (TrainStep, SetParameters,
// SaveCheckpoint, RestoreCheckpoint, DeleteModel) must run on its SerialQueue; the others may
// run anywhere, at the same time as anything. On error the response is left partly filled and
// must not be sent.
#ifndef BACKFLOW_SERVER_OPERATIONS_H_
#define BACKFLOW_SERVER_OPERATIONS_H_

#include <optional>
#include <string>
#include <vector>

#include "backflow/v1/service.pb.h"
#include "engine/core/status.h"
#include "engine/exec/program.h"
#include "server/convert.h"
#include "server/model.h"
#include "server/service_env.h"

namespace backflow::server::ops {

// Builds the model the request describes, records it in the data directory and registers it,
// using up `reservation` (from env.registry.Reserve()); on failure the reservation is left held,
// for its owner to release by destroying it.
Status CreateModel(ServiceEnv& env, const v1::CreateModelRequest& request,
                   ModelRegistry::Reservation& reservation, v1::ModelInfo* response);
// Removes the model's files, then marks it deleted (work still reaching it fails NOT_FOUND) and
// takes it out of env.registry. If the files cannot be removed (a read-only data directory),
// nothing changes: the error is returned and the model stays registered and usable.
Status DeleteModel(ServiceEnv& env, Model& model);
// The same for a model registered as damaged (ModelRegistry::AddDamaged): removes its files,
// then forgets it; on failure it stays listed as damaged.
Status DeleteDamagedModel(ServiceEnv& env, const std::string& id);

// The requested outputs (by default those the inputs determine) on the current parameters:
// PrepareInfer, the engine's Infer on the current snapshot, EncodeInferResponse.
Status Infer(const ServiceEnv& env, const Model& model, const v1::InferRequest& request,
             const RunOptions& run, v1::InferResponse* response);
// Infer's request decoded and checked, with the names of the outputs it computes (by default
// those the inputs determine): what the batcher stacks (server/batcher.h).
struct InferWork {
  TensorMap inputs;
  std::vector<std::string> outputs;
};
StatusOr<InferWork> PrepareInfer(const ServiceEnv& env, const Model& model,
                                 const v1::InferRequest& request);
// The outputs, named in order, computed on the snapshot of `step`.
void EncodeInferResponse(const std::vector<std::string>& names, const std::vector<Tensor>& outputs,
                         int64_t step, v1::InferResponse* response);

// Loss, metrics and gradients on the current parameters; the parameters do not change.
Status ComputeGradients(const ServiceEnv& env, const Model& model,
                        const v1::ComputeGradientsRequest& request, const RunOptions& run,
                        v1::ComputeGradientsResponse* response);

// One training step: DecodeTrainBatch followed by TrainStepOnBatch.
Status TrainStep(const ServiceEnv& env, Model& model, const v1::TrainStepRequest& request,
                 const RunOptions& run, v1::TrainStepResponse* response);
// The request's batch as engine tensors (InvalidArgument naming the tensor). The Train stream
// decodes each request as it arrives, off the model's queue (Note [Train stream flow]).
StatusOr<TensorMap> DecodeTrainBatch(const ServiceEnv& env, const Model& model,
                                     const v1::TrainStepRequest& request);
// The step on a batch decoded beforehand; fails with the decoding error if there was one, and
// with ResourceExhausted, applying nothing, if the answer could exceed --max-message-bytes.
Status TrainStepOnBatch(const ServiceEnv& env, Model& model, const v1::TrainStepRequest& request,
                        const StatusOr<TensorMap>& batch, const RunOptions& run,
                        v1::TrainStepResponse* response);

// The named parameters (all of them when none is named) of the current snapshot.
Status GetParameters(const Model& model, const v1::GetParametersRequest& request,
                     v1::GetParametersResponse* response);
Status SetParameters(const ServiceEnv& env, Model& model, const v1::SetParametersRequest& request,
                     v1::SetParametersResponse* response);

// Checkpoints the model now. Also called by the server's shutdown, once it is idle. Save,
// restore and delete hold Model::checkpoint_mu() for their file work, so each waits for an
// automatic write of the model in flight (Note [Automatic checkpoints] in server/autosave.h).
// An automatic checkpoint without a name, else a named one (CheckpointStore::SaveCheckpoint).
StatusOr<v1::SaveCheckpointResponse> SaveCheckpoint(const ServiceEnv& env, Model& model,
                                                    const std::string& name = "",
                                                    bool replace = false);
// Back to a checkpoint (the request's name or step, else the one the model is at), which then
// becomes the one the model is at. FAILED_PRECONDITION if the model has none; NOT_FOUND for no
// such name or step; DATA_LOSS naming the file if it is damaged or does not fit the model. On
// any failure the model is unchanged, in memory and on disk.
Status RestoreCheckpoint(const ServiceEnv& env, Model& model,
                         const v1::RestoreCheckpointRequest& request,
                         v1::RestoreCheckpointResponse* response);
// The checkpoint a restore or download asks for: by name, the newest at `step`, or (neither)
// the one the model is at. InvalidArgument for both.
StatusOr<CheckpointSelector> SelectCheckpoint(const std::string& name, std::optional<int64_t> step);
// `status` of looking the selected checkpoint up, except that NOT_FOUND for the plain selector
// (the model never saved one) is FAILED_PRECONDITION "model 'ID' has no checkpoint".
Status NoCheckpointIsPrecondition(const Status& status, const CheckpointSelector& selector,
                                  const std::string& id);
// What ListCheckpoints and the other checkpoint calls answer about one checkpoint.
void CheckpointInfoToProto(const StoredCheckpoint& stored, v1::CheckpointInfo* info);
Status ListCheckpoints(const ServiceEnv& env, Model& model, v1::ListCheckpointsResponse* response);
// A named checkpoint: NOT_FOUND if there is none, FAILED_PRECONDITION if the model is at it.
Status DeleteCheckpoint(const ServiceEnv& env, Model& model, const std::string& name);

// Imports the request's graph and evaluates it (values, then gradients if asked for).
Status Evaluate(const ServiceEnv& env, const v1::EvaluateRequest& request, const RunOptions& run,
                v1::EvaluateResponse* response);

// The model with the values of its current snapshot, as ONNX or as the CreateModelRequest that
// recreates it (server/model_io.cc). ResourceExhausted when the answer would not fit in
// --max-message-bytes.
Status ExportModel(const ServiceEnv& env, const Model& model,
                   const v1::ExportModelRequest& request, v1::ExportModelResponse* response);

// Checks the gradients of the model's graph on its current parameters and state (`model` set)
// or of the request's own graph (`model` null) against finite differences.
Status CheckGradients(const ServiceEnv& env, const Model* model,
                      const v1::CheckGradientsRequest& request, const RunOptions& run,
                      v1::CheckGradientsResponse* response);

}  // namespace backflow::server::ops

#endif  // BACKFLOW_SERVER_OPERATIONS_H_
