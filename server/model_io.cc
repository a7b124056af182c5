#include "server/model_io.h"

#include <memory>
#include <string>
#include <unordered_map>
#include <utility>

#include "engine/api/import.h"
#include "engine/ir/tensor_proto.h"
#include "engine/onnx/onnx_export.h"
#include "engine/onnx/onnx_import.h"
#include "server/convert.h"
#include "server/operations.h"

#ifndef BACKFLOW_VERSION
#define BACKFLOW_VERSION "unknown"
#endif

namespace backflow::server {
namespace {

OnnxImportOptions ImportOptions(const v1::OnnxModel& onnx, const GraphLimits& limits) {
  OnnxImportOptions options;
  options.limits = limits;
  options.frozen.assign(onnx.frozen().begin(), onnx.frozen().end());
  if (onnx.has_loss()) {
    OnnxLossSpec loss{.kind = onnx.loss().kind(), .output = onnx.loss().output()};
    if (!onnx.loss().labels().empty()) loss.labels = onnx.loss().labels();
    options.loss = std::move(loss);
  }
  return options;
}

// The ONNX form of `model` with `snapshot`'s values, parameters and running state together.
StatusOr<std::string> ExportOnnxBytes(const ServiceEnv& env, const Model& model,
                                      const ParameterSnapshot& snapshot) {
  // The record's graph, not trainer().graph(): the trainer's has the backward pass appended.
  BF_ASSIGN_OR_RETURN(Graph graph, ImportGraph(model.record().request().graph(), env.graph_limits));
  std::unordered_map<std::string, Tensor> values = snapshot.values;
  values.insert(snapshot.state.begin(), snapshot.state.end());
  OnnxExportOptions options{
      .producer_version = BACKFLOW_VERSION,
      .doc = "model " + model.id() + " at step " + std::to_string(snapshot.step)};
  return ExportOnnx(graph, values, options);
}

}  // namespace

Status ResolveOnnxRequest(const GraphLimits& limits, v1::CreateModelRequest* request) {
  if (!request->has_onnx()) return Status::Ok();
  if (request->has_graph()) {
    return InvalidArgumentError("give graph or onnx, not both: an ONNX model brings its graph");
  }
  if (!request->initial_parameters().empty()) {
    return InvalidArgumentError(
        "initial_parameters must be empty with onnx: the ONNX initializers are the initial "
        "values");
  }
  if (request->onnx().model().empty()) {
    return InvalidArgumentError("onnx.model: empty (expected a serialized onnx.ModelProto)");
  }
  BF_ASSIGN_OR_RETURN(DType dtype, DecodeDType(request->dtype(), "dtype"));
  BF_ASSIGN_OR_RETURN(OnnxImported imported,
                      ImportOnnx(request->onnx().model(), ImportOptions(request->onnx(), limits)));
  *request->mutable_graph() = std::move(imported.graph);
  auto& initial = *request->mutable_initial_parameters();
  for (const auto& [name, tensor] : imported.values) {
    if (tensor.dtype() == dtype) {
      TensorToProto(tensor, &initial[name]);
    } else {
      TensorToProto(tensor.CastTo(dtype), &initial[name]);
    }
  }
  request->clear_onnx();
  return Status::Ok();
}

namespace ops {

Status ExportModel(const ServiceEnv& env, const Model& model, const v1::ExportModelRequest& request,
                   v1::ExportModelResponse* response) {
  // One snapshot for everything exported: parameters and state of the same step.
  std::shared_ptr<const ParameterSnapshot> snapshot = model.trainer().parameters();
  switch (request.format()) {
    case v1::ExportModelRequest::FORMAT_UNSPECIFIED:
    case v1::ExportModelRequest::ONNX: {
      BF_ASSIGN_OR_RETURN(*response->mutable_onnx(), ExportOnnxBytes(env, model, *snapshot));
      break;
    }
    case v1::ExportModelRequest::BACKFLOW: {
      v1::CreateModelRequest* recreate = response->mutable_model();
      *recreate = model.record().request();
      recreate->clear_initial_parameters();
      EncodeTensors(snapshot->values, recreate->mutable_initial_parameters());
      EncodeTensors(snapshot->state, recreate->mutable_initial_parameters());
      break;
    }
    default:
      return InvalidArgumentError("format " + std::to_string(request.format()) +
                                  " is not ONNX or BACKFLOW");
  }
  response->set_step(snapshot->step);
  const int64_t bytes = static_cast<int64_t>(response->ByteSizeLong());
  if (bytes > env.config.limits.max_message_bytes) {
    return ResourceExhaustedError("the export of model '" + model.id() + "' is " +
                                  std::to_string(bytes) +
                                  " bytes, over the server's --max-message-bytes of " +
                                  std::to_string(env.config.limits.max_message_bytes));
  }
  return Status::Ok();
}

}  // namespace ops
}  // namespace backflow::server
