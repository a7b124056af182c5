// Looking a stored model up, as the CLI and backflow-load do before they build its tensors.
#ifndef BACKFLOW_CLIENTS_COMMON_MODELS_H_
#define BACKFLOW_CLIENTS_COMMON_MODELS_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <string>

#include "backflow/v1/service.grpc.pb.h"
#include "engine/core/tensor.h"

namespace backflow::clients {

// GetModel `model_id` into *info, with a deadline `timeout` from now (none if <= 0); with
// `history`, its statistics' loss curve too.
grpc::Status GetModel(v1::Backflow::Stub& stub, const std::string& model_id,
                      std::chrono::duration<double> timeout, v1::ModelInfo* info,
                      bool history = false);

// The dtype a model computes in, so its inputs can be sent in it: float64 models take float64,
// every other model float32.
DType ModelDType(const v1::ModelInfo& info);

}  // namespace backflow::clients

#endif  // BACKFLOW_CLIENTS_COMMON_MODELS_H_
