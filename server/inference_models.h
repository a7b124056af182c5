// How the Open Inference Protocol sees a backflow model (server/inference_service.h): found by
// its id or its name, in one version ("1"), with the graph's placeholders as its inputs and the
// graph's outputs as its outputs.
#ifndef BACKFLOW_SERVER_INFERENCE_MODELS_H_
#define BACKFLOW_SERVER_INFERENCE_MODELS_H_

#include <memory>
#include <string>

#include "engine/core/status.h"
#include "inference/grpc_service.pb.h"
#include "server/batcher.h"
#include "server/model.h"

namespace backflow::server {

// The one version backflow serves of each model.
inline constexpr char kModelVersion[] = "1";

// NotFound unless `version` is "" or "1" (naming the model and the version).
Status CheckVersion(const std::string& name, const std::string& version);

// The model `name` addresses: the model with that id, else the one model with that name.
// InvalidArgument for an empty name, FailedPrecondition for a name several models share (naming
// their ids), NotFound for a version other than "" and "1" or a name no model has; a damaged
// model's DATA_LOSS as backflow.v1 answers it.
StatusOr<std::shared_ptr<Model>> FindModel(const ModelRegistry& registry, const std::string& name,
                                           const std::string& version);

// Inputs, outputs and versions of `model`, answered under `name` (the name the client used).
inference::ModelMetadataResponse ModelMetadata(const Model& model, const std::string& name);

// Triton's configuration of `model`: max_batch_size is the most rows within
// `max_tensor_elements` when every input has a batch dimension (dims then leave it out), else 0
// with full dims; an input is optional when some output can be computed without it;
// dynamic_batching is set when `batching` is on (server/batcher.h).
inference::ModelConfig ModelConfig(const Model& model, const std::string& name,
                                   int64_t max_tensor_elements, const BatchSettings& batching);

// The model's InferenceStats in the protocol's terms.
inference::ModelStatistics ModelStatistics(const Model& model, const std::string& name);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_INFERENCE_MODELS_H_
