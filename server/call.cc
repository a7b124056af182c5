#include "server/call.h"

#include <spdlog/spdlog.h>

#include <new>

#include "engine/core/tsan.h"
#include "server/caller_check.h"
#include "server/grpc_status.h"
#include "server/names.h"
#include "server/service_env.h"

namespace backflow::server {

CallLog::CallLog(ServiceEnv* env, const char* rpc, std::string model_id)
    : id_(env->next_request_id.fetch_add(1)),
      rpc_(rpc),
      model_id_(std::move(model_id)),
      start_(std::chrono::steady_clock::now()) {}

void CallLog::Done(const Status& status) const {
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  // Ids and messages quote what clients sent: escaped, so no name can forge a line or put a
  // control character or NUL in the log (server/names.h); a long id only by its start.
  std::string model;
  if (!model_id_.empty()) {
    model = " model=" +
            (model_id_.size() > kMaxEchoBytes ? Quoted(model_id_) : Escaped(model_id_));
  }
  switch (status.code()) {
    case StatusCode::kOk:
      spdlog::debug("req {} {}{}: OK in {:.2f} ms", id_, rpc_, model, ms);
      return;
    case StatusCode::kInternal:
    case StatusCode::kUnknown:
    case StatusCode::kDataLoss:
      spdlog::error("req {} {}{}: {} in {:.2f} ms", id_, rpc_, model, Escaped(status.ToString()),
                    ms);
      return;
    default:
      spdlog::warn("req {} {}{}: {} in {:.2f} ms", id_, rpc_, model, Escaped(status.ToString()),
                   ms);
  }
}

RunOptions RunOptionsFor(ServiceEnv* env, const grpc::CallbackServerContext* ctx,
                         const std::atomic<bool>* cancelled) {
  RunOptions run;
  run.cancelled = cancelled;
  run.memory = &env->memory;
  const auto deadline = ctx->deadline();
  const auto now = std::chrono::system_clock::now();
  // gRPC reports "no deadline" as the far future.
  if (deadline < now + std::chrono::hours(24 * 365)) {
    run.deadline = std::chrono::steady_clock::now() +
                   std::chrono::duration_cast<std::chrono::steady_clock::duration>(deadline - now);
  }
  return run;
}

UnaryCall::UnaryCall(ServiceEnv* env, grpc::CallbackServerContext* ctx, const char* rpc,
                     std::string model_id)
    : env_(env), ctx_(ctx), log_(env, rpc, std::move(model_id)) {}

Status UnaryCall::Admit() {
  if (env_->tokens != nullptr) {
    BF_ASSIGN_OR_RETURN(token_slot_, env_->tokens->AdmitInFlight(AuthorizationHeader(ctx_)));
  }
  BF_ASSIGN_OR_RETURN(slot_, env_->admission.AdmitRequest());
  return Status::Ok();
}

void UnaryCall::Reply(const Status& status) {
  slot_.Release();
  token_slot_.Release();
  log_.Done(status);
  BF_TSAN_RELEASE(this);  // the response we wrote, to whichever gRPC thread sends it
  Finish(ToGrpcStatus(status));
}

void UnaryCall::OnDone() {
  BF_TSAN_ACQUIRE(this);  // gRPC orders OnDone after Finish, through its uninstrumented code
  delete this;
}

void UnaryCall::RunAndReply(const std::function<Status()>& body) {
  Status status;
  if (cancelled()) {
    status = CancelledError("cancelled before it started");
  } else {
    try {
      status = body();
    } catch (const std::bad_alloc&) {
      status = ResourceExhaustedError("out of memory");
    } catch (const std::exception& e) {
      status = InternalError(std::string("unexpected exception: ") + e.what());
    }
  }
  Reply(status);
}

}  // namespace backflow::server
