// OnModel and OnPool: the common shape of the unary RPCs that compute, shared by backflow.v1
// (server/service.cc) and the Open Inference Protocol (server/inference_service.cc). Each finds
// the model, checks the caller's token against its name, takes an admission slot and runs the
// operation on the compute pool (reads) or the model's SerialQueue (writes), replying with what it
// returns (Note [Serving threads] in server/work_queue.h).
#ifndef BACKFLOW_SERVER_MODEL_CALL_H_
#define BACKFLOW_SERVER_MODEL_CALL_H_

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "server/call.h"
#include "server/caller_check.h"
#include "server/convert.h"
#include "server/model.h"
#include "server/service_env.h"

namespace backflow::server {

// Where a model's job runs: the compute pool, alongside anything (reads), or the model's
// SerialQueue, one at a time in arrival order (writes).
enum class Lane { kConcurrent, kSerial };

// Note [Tiny requests run where they arrive] in server/work_queue.h.
constexpr int64_t kInlineFlops = 4096;

// True if running the model on `batch` is estimated at no more than kInlineFlops.
inline bool Tiny(const Model& model, const WireTensorMap& batch) {
  const int64_t rows = BatchRows(batch);
  const int64_t flops = model.flops_per_sample();
  return flops >= 0 && rows <= kInlineFlops && flops <= kInlineFlops / rows;
}

// Checks the caller's token against `model`'s name and takes `call`'s admission slot: the model
// to run on, or null after replying with why not (`model`'s own error included).
inline std::shared_ptr<Model> AdmitOnModel(ServiceEnv* env, grpc::CallbackServerContext* ctx,
                                           const char* rpc, UnaryCall* call,
                                           StatusOr<std::shared_ptr<Model>> model) {
  if (model.ok()) {
    if (Status allowed = CheckCaller(*env, ctx, rpc, (*model)->name()); !allowed.ok()) {
      model = allowed;
    }
  }
  if (!model.ok()) {
    call->Reply(model.status());
    return nullptr;
  }
  if (Status admitted = call->Admit(); !admitted.ok()) {
    call->Reply(admitted);
    return nullptr;
  }
  return std::move(*model);
}

// The common shape of a model RPC: find the model, take an admission slot, and run `body` on
// the compute pool (reads) or the model's queue (writes), replying with what it returns.
// With `batch` (a compute request's tensors), a tiny request may run right here instead.
// `model` is the model the request addresses, or why none is (answered as the call's error).
template <typename Body>
grpc::ServerUnaryReactor* OnModel(ServiceEnv* env, grpc::CallbackServerContext* ctx,
                                  const google::protobuf::MessageLite* response, const char* rpc,
                                  const std::string& model_id,
                                  StatusOr<std::shared_ptr<Model>> model, Lane lane, Body body,
                                  const WireTensorMap* batch = nullptr) {
  auto* call = new UnaryCall(env, ctx, rpc, model_id, response);
  std::shared_ptr<Model> target = AdmitOnModel(env, ctx, rpc, call, std::move(model));
  if (target == nullptr) return call;
  auto job = [call, target, body]() {
    call->RunAndReply([&]() -> Status {
      BF_RETURN_IF_ERROR(target->CheckNotDeleted());
      return body(*target, call->run());
    });
  };
  const bool tiny = batch != nullptr && Tiny(*target, *batch);
  if (lane == Lane::kSerial) {
    if (!tiny || !target->queue().RunHereIfIdle(job)) target->queue().Post(std::move(job));
  } else if (tiny) {
    job();
  } else {
    env->pool->Submit(std::move(job));
  }
  return call;
}

// The same with the model found by its id.
template <typename Body>
grpc::ServerUnaryReactor* OnModel(ServiceEnv* env, grpc::CallbackServerContext* ctx,
                                  const google::protobuf::MessageLite* response, const char* rpc,
                                  const std::string& model_id, Lane lane, Body body,
                                  const WireTensorMap* batch = nullptr) {
  return OnModel(env, ctx, response, rpc, model_id, env->registry.Get(model_id), lane,
                 std::move(body), batch);
}

// The same for RPCs that need no model.
template <typename Body>
grpc::ServerUnaryReactor* OnPool(ServiceEnv* env, grpc::CallbackServerContext* ctx,
                                 const google::protobuf::MessageLite* response, const char* rpc,
                                 Body body) {
  auto* call = new UnaryCall(env, ctx, rpc, "", response);
  if (Status admitted = call->Admit(); !admitted.ok()) {
    call->Reply(admitted);
    return call;
  }
  env->pool->Submit([call, body]() { call->RunAndReply([&] { return body(call->run()); }); });
  return call;
}

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_MODEL_CALL_H_
