// ops::Evaluate (server/operations.h): the stateless Evaluate RPC on engine/api/evaluate.h.
#include <optional>
#include <string>
#include <utility>

#include "engine/api/evaluate.h"
#include "engine/api/import.h"
#include "engine/ir/tensor_proto.h"
#include "server/names.h"
#include "server/operations.h"
#include "server/run_profile_proto.h"

namespace backflow::server::ops {
namespace {

// What an Evaluate request asks for besides its graph and values.
StatusOr<EvaluateSpec> DecodeEvaluateSpec(const v1::EvaluateRequest& request) {
  BF_RETURN_IF_ERROR(CheckLengths("output", request.outputs(), kMaxNameBytes));
  BF_RETURN_IF_ERROR(CheckLength("target", request.target(), kMaxNameBytes));
  BF_RETURN_IF_ERROR(CheckLengths("wrt", request.wrt(), kMaxNameBytes));
  EvaluateSpec spec;
  spec.outputs.assign(request.outputs().begin(), request.outputs().end());
  spec.target = request.target();
  spec.wrt.assign(request.wrt().begin(), request.wrt().end());
  spec.seed = request.seed();
  switch (request.mode()) {
    case v1::EvaluateRequest::MODE_UNSPECIFIED: spec.mode = EvaluateMode::kAuto; break;
    case v1::EvaluateRequest::MODE_TRAINING: spec.mode = EvaluateMode::kTraining; break;
    case v1::EvaluateRequest::MODE_INFERENCE: spec.mode = EvaluateMode::kInference; break;
    default:
      return InvalidArgumentError("mode " + std::to_string(request.mode()) +
                                  " is not MODE_TRAINING or MODE_INFERENCE");
  }
  if (request.dtype() != v1::DATA_TYPE_UNSPECIFIED) {
    BF_ASSIGN_OR_RETURN(spec.dtype, DecodeDType(request.dtype(), "dtype"));
  }
  return spec;
}

}  // namespace

Status Evaluate(const ServiceEnv& env, const v1::EvaluateRequest& request, const RunOptions& run,
                v1::EvaluateResponse* response) {
  BF_ASSIGN_OR_RETURN(Graph graph, ImportGraph(request.graph(), env.graph_limits));
  BF_ASSIGN_OR_RETURN(TensorMap values,
                      DecodeTensors(request.values(), "value",
                                    env.config.limits.max_tensor_elements, std::nullopt));
  BF_ASSIGN_OR_RETURN(EvaluateSpec spec, DecodeEvaluateSpec(request));
  RunProfile profile;
  BF_ASSIGN_OR_RETURN(EvaluateResult result,
                      backflow::Evaluate(std::move(graph), values, spec,
                                         WithProfile(run, request.profile(), &profile)));
  for (const auto& [name, tensor] : result.outputs) {
    TensorToProto(tensor, &(*response->mutable_outputs())[name]);
  }
  for (const auto& [name, tensor] : result.gradients) {
    TensorToProto(tensor, &(*response->mutable_gradients())[name]);
  }
  if (request.profile()) ProfileToProto(profile, response->mutable_profile());
  return Status::Ok();
}

}  // namespace backflow::server::ops
