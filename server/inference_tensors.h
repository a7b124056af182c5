// Tensors of the Open Inference Protocol (inference.GRPCInferenceService, server/
// inference_service.h) to and from backflow.v1's.
//
// ModelInfer is served by turning its request into a backflow.v1 InferRequest and its answer back:
// the same decoding, limits, NaN checks and engine call as backflow.v1 Infer, so the two
// protocols cannot disagree about a model. What is the protocol's own is checked here, with
// messages that name the tensor: datatypes (FP32, FP64, INT32 and INT64; every other datatype of
// the protocol is refused by name), shapes, raw_input_contents against inputs, and typed contents
// of the right type and length. An answer comes back in the form of its request: raw bytes for a
// request that sent raw_input_contents, typed contents for one that sent typed contents.
#ifndef BACKFLOW_SERVER_INFERENCE_TENSORS_H_
#define BACKFLOW_SERVER_INFERENCE_TENSORS_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backflow/v1/service.pb.h"
#include "engine/core/status.h"
#include "inference/grpc_service.pb.h"

namespace backflow::server {

// The protocol's datatype name for a backflow.v1 dtype ("FP32", "FP64", "INT32", "INT64").
std::string_view ProtocolDatatype(v1::DataType dtype);
// The backflow.v1 dtype of a protocol datatype; InvalidArgument naming `what` for any other
// ("input 'x': datatype FP16 is not supported by backflow (it takes FP32, FP64, INT32, INT64)").
StatusOr<v1::DataType> BackflowDtype(std::string_view datatype, std::string_view what);
// The Triton model-configuration type of a backflow.v1 dtype (TYPE_FP32, ...).
inference::DataType ConfigDatatype(v1::DataType dtype);

// A ModelInfer request as a backflow.v1 InferRequest on `model_id`. `max_elements` bounds each
// tensor (--max-tensor-elements). The input tensors' elements are copied, not interpreted: the
// values are checked where backflow.v1 checks them (ops::Infer).
StatusOr<v1::InferRequest> ToInferRequest(const inference::ModelInferRequest& request,
                                          const std::string& model_id, int64_t max_elements);

// Fills in `response` from the backflow.v1 answer to ToInferRequest(request): the outputs in the
// order the request named them (else in `default_order`, the graph's output order), in the form
// of the request (raw or typed contents), with its id and parameters echoed and the parameter
// snapshot's step as the response parameter "step". `answer`'s tensors are moved out.
void ToInferResponse(const inference::ModelInferRequest& request, v1::InferResponse& answer,
                     const std::vector<std::string>& default_order,
                     inference::ModelInferResponse* response);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_INFERENCE_TENSORS_H_
