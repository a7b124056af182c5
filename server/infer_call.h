// ServeInfer: the inference behind backflow.v1 Infer and the Open Inference Protocol's
// ModelInfer. It admits the call as every model RPC does (server/model_call.h), then runs the
// request batched with concurrent ones (Note [Dynamic batching] in server/batcher.h) when the
// model's settings and the request allow, alone on the compute pool otherwise (inline when tiny:
// Note [Tiny requests run where they arrive] in server/work_queue.h), and replies. Either way
// the model's InferenceStats record the outcome.
#ifndef BACKFLOW_SERVER_INFER_CALL_H_
#define BACKFLOW_SERVER_INFER_CALL_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>

#include "backflow/v1/service.pb.h"
#include "server/model.h"
#include "server/service_env.h"

namespace backflow::server {

// When the request arrived, and the time its protocol spent decoding it before ServeInfer.
struct InferTiming {
  InferenceStats::Clock::time_point arrived;
  InferenceStats::Clock::duration input{};
};

// Fills in the protocol's response from the backflow.v1 answer (whose tensors it may take).
using InferFinish = std::function<void(const Model& model, v1::InferResponse& answer)>;

// `model` is the model `request` addresses, or why none is; `log_id` names it in the logs.
// `request` must stay valid until the call replies.
grpc::ServerUnaryReactor* ServeInfer(ServiceEnv* env, grpc::CallbackServerContext* ctx,
                                     const google::protobuf::MessageLite* response, const char* rpc,
                                     const std::string& log_id,
                                     StatusOr<std::shared_ptr<Model>> model,
                                     std::shared_ptr<const v1::InferRequest> request,
                                     InferTiming timing, InferFinish finish);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_INFER_CALL_H_
