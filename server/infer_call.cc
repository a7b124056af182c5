#include "server/infer_call.h"

#include <utility>
#include <vector>

#include "server/batcher.h"
#include "server/call.h"
#include "server/model_call.h"
#include "server/operations.h"

namespace backflow::server {
namespace {

using Clock = InferenceStats::Clock;

// The request alone, on the pool (or here): ops::Infer.
void RunAlone(ServiceEnv* env, UnaryCall* call, std::shared_ptr<Model> target,
              std::shared_ptr<const v1::InferRequest> request, InferTiming timing,
              InferFinish finish, bool here) {
  auto job = [env, call, target, request, timing, finish] {
    call->RunAndReply([&]() -> Status {
      BF_RETURN_IF_ERROR(target->CheckNotDeleted());
      const Clock::time_point started = Clock::now();
      v1::InferResponse answer;
      if (Status status = ops::Infer(*env, *target, *request, call->run(), &answer); !status.ok()) {
        target->inference_stats().RecordFailure(timing.arrived);
        return status;
      }
      const Clock::time_point computed = Clock::now();
      finish(*target, answer);
      target->inference_stats().RecordSuccess(static_cast<uint64_t>(BatchRows(request->inputs())),
                                              timing.arrived, started, timing.input,
                                              computed - started, Clock::now() - computed);
      return Status::Ok();
    });
  };
  if (here) {
    job();
  } else {
    env->pool->Submit(std::move(job));
  }
}

// What the batcher calls with a request's answer: encode it and reply.
InferBatcher::Done ReplyWith(UnaryCall* call, std::shared_ptr<Model> target,
                             std::vector<std::string> names, uint64_t rows, InferTiming timing,
                             InferFinish finish) {
  return [call, target, names = std::move(names), rows, timing, finish](BatchAnswer answer) {
    call->WorkStarted(answer.started);
    call->RunAndReply([&]() -> Status {
      Status status = answer.outputs.ok() ? target->CheckNotDeleted() : answer.outputs.status();
      if (!status.ok()) {
        target->inference_stats().RecordFailure(timing.arrived);
        return status;
      }
      const Clock::time_point computed = Clock::now();
      v1::InferResponse response;
      ops::EncodeInferResponse(names, *answer.outputs, answer.step, &response);
      finish(*target, response);
      target->inference_stats().RecordSuccess(rows, timing.arrived, answer.started, timing.input,
                                              computed - answer.started, Clock::now() - computed,
                                              answer.new_run);
      return Status::Ok();
    });
  };
}

}  // namespace

grpc::ServerUnaryReactor* ServeInfer(ServiceEnv* env, grpc::CallbackServerContext* ctx,
                                     const google::protobuf::MessageLite* response, const char* rpc,
                                     const std::string& log_id,
                                     StatusOr<std::shared_ptr<Model>> model,
                                     std::shared_ptr<const v1::InferRequest> request,
                                     InferTiming timing, InferFinish finish) {
  auto* call = new UnaryCall(env, ctx, rpc, log_id, response);
  std::shared_ptr<Model> target = AdmitOnModel(env, ctx, rpc, call, std::move(model));
  if (target == nullptr) return call;
  const BatchSettings settings = env->BatchSettingsFor(*target);
  const bool tiny = Tiny(*target, request->inputs());
  // A profiled request runs alone: its profile is of its own run.
  if (!settings.enabled() || tiny || request->profile()) {
    RunAlone(env, call, std::move(target), std::move(request), timing, std::move(finish), tiny);
    return call;
  }
  // Decoded here, on the gRPC thread, so that the batcher can check and stack the tensors: a
  // copy and a scan for NaN, microseconds for a typical online request.
  const Clock::time_point decoding = Clock::now();
  StatusOr<ops::InferWork> work = ops::PrepareInfer(*env, *target, *request);
  if (!work.ok()) {
    target->inference_stats().RecordFailure(timing.arrived);
    call->Reply(work.status());
    return call;
  }
  timing.input += Clock::now() - decoding;
  const auto rows = static_cast<uint64_t>(BatchRows(request->inputs()));
  InferBatcher::Done done = ReplyWith(call, target, work->outputs, rows, timing, std::move(finish));
  if (!InferBatcher::Batchable(*target, work->inputs, work->outputs)) {
    // Alone, without decoding it twice.
    auto job = [target, work = std::move(*work), run = call->run(), done]() mutable {
      RunBatch(*target, work.outputs, {{std::move(work.inputs), run}}, {done});
    };
    env->pool->Submit(std::move(job));
    return call;
  }
  env->batcher->Submit(std::move(target), settings, std::move(work->inputs),
                       std::move(work->outputs), call->run(), std::move(done));
  return call;
}

}  // namespace backflow::server
