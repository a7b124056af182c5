// ops::Evaluate (server/operations.h): the stateless Evaluate RPC on engine/api/evaluate.h, with
// its graphs prepared once per content (Note [Evaluate cache] in server/evaluate_cache.h).
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
  // Errors come in the same order with the cache as without it: the graph's, the values'
  // decoding, the request's names, then Evaluate's (engine/api/evaluate.h).
  EvaluateCache& cache = *env.evaluate_cache;
  std::optional<std::string> key = cache.KeyOf(request);
  std::shared_ptr<const PreparedEvaluation> prepared;
  if (key) {
    prepared = cache.Find(*key);
  } else {
    cache.CountUncached();
  }
  std::optional<Graph> graph;
  if (prepared == nullptr) {
    BF_ASSIGN_OR_RETURN(graph, ImportGraph(request.graph(), env.graph_limits));
  }
  BF_ASSIGN_OR_RETURN(TensorMap values,
                      DecodeTensors(request.values(), "value",
                                    env.config.limits.max_tensor_elements, std::nullopt));
  BF_ASSIGN_OR_RETURN(EvaluateSpec spec, DecodeEvaluateSpec(request));
  if (prepared == nullptr) {
    BF_RETURN_IF_ERROR(CheckEvaluationValues(*graph, values, spec));
    BF_ASSIGN_OR_RETURN(prepared, PrepareEvaluation(std::move(*graph), spec));
    if (key) cache.Insert(std::move(*key), prepared);
  }
  RunProfile profile;
  BF_ASSIGN_OR_RETURN(
      EvaluateResult result,
      RunEvaluation(*prepared, values, spec, WithProfile(run, request.profile(), &profile)));
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
