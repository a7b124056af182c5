#include "server/call.h"

#include <spdlog/spdlog.h>

#include <new>

#include "engine/core/tsan.h"
#include "server/caller_check.h"
#include "server/grpc_status.h"
#include "server/log_format.h"
#include "server/names.h"
#include "server/service_env.h"

namespace backflow::server {

CallLog::CallLog(ServiceEnv* env, const grpc::ServerContextBase* ctx, const char* rpc,
                 std::string model_id)
    : metrics_(env->metrics.get()),
      ctx_(ctx),
      throttles_(&env->log_throttles),
      id_(env->next_request_id.fetch_add(1)),
      rpc_(rpc),
      model_id_(std::move(model_id)),
      start_(std::chrono::steady_clock::now()) {}

void CallLog::Done(const Status& status, std::string_view model_id) const {
  if (model_id.empty()) model_id = model_id_;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (metrics_ != nullptr) metrics_->Done(rpc_, status.code(), seconds);
  const spdlog::level::level_enum level = status.ok() ? spdlog::level::debug
                                          : status.code() == StatusCode::kInternal ||
                                                  status.code() == StatusCode::kUnknown ||
                                                  status.code() == StatusCode::kDataLoss
                                              ? spdlog::level::err
                                              : spdlog::level::warn;
  if (!spdlog::should_log(level)) return;
  std::string more;
  if (!status.ok()) {
    const std::optional<int64_t> skipped = throttles_->Admit(rpc_, static_cast<int>(status.code()));
    if (!skipped) return;
    if (*skipped > 0) {
      more = " (and " + std::to_string(*skipped) + " more " + rpc_ + " " +
             std::string(StatusCodeName(status.code())) + " answers since the last such line)";
    }
  }
  // Ids and messages quote what clients sent: escaped, so no name can forge a line or put a
  // control character or NUL in the log (server/names.h); a long id only by its start.
  std::string model;
  if (!model_id.empty()) {
    const std::string id(model_id);
    model = " model=" + (id.size() > kMaxEchoBytes ? Quoted(id) : Escaped(id));
  }
  const std::string peer = ctx_->peer();
  const RequestLogFields fields({.id = id_,
                                 .method = rpc_,
                                 .model = model_id.substr(0, kMaxEchoBytes),
                                 .peer = peer,
                                 .code = StatusCodeName(status.code()),
                                 .ms = seconds * 1000});
  spdlog::log(level, "req {} {}{} peer={}: {} in {:.2f} ms{}", id_, rpc_, model, Escaped(peer),
              status.ok() ? "OK" : Escaped(status.ToString()), seconds * 1000, more);
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
                     std::string model_id, const google::protobuf::MessageLite* response)
    : env_(env), ctx_(ctx), response_(response), log_(env, ctx, rpc, std::move(model_id)) {}

void CountRefusal(const ServiceEnv& env, const Status& refusal) {
  if (env.metrics == nullptr) return;
  switch (refusal.code()) {
    case StatusCode::kUnavailable:
      env.metrics->Refused(Refusal::kDraining);
      return;
    case StatusCode::kUnauthenticated:
    case StatusCode::kPermissionDenied:
      env.metrics->Refused(Refusal::kAuth);
      return;
    default:
      env.metrics->Refused(Refusal::kLimit);
  }
}

Status UnaryCall::Admit() {
  Status admitted = [&]() -> Status {
    if (env_->tokens != nullptr) {
      BF_ASSIGN_OR_RETURN(token_slot_, env_->tokens->AdmitInFlight(AuthorizationHeader(ctx_)));
    }
    BF_ASSIGN_OR_RETURN(slot_, env_->admission.AdmitRequest());
    return Status::Ok();
  }();
  if (!admitted.ok()) {
    CountRefusal(*env_, admitted);
  } else if (env_->metrics != nullptr) {
    env_->metrics->Enqueued();
    queued_ = true;
  }
  return admitted;
}

void UnaryCall::LeaveQueue() {
  if (!queued_) return;
  env_->metrics->Dequeued();
  queued_ = false;
}

void UnaryCall::Reply(const Status& status) {
  LeaveQueue();
  slot_.Release();
  token_slot_.Release();
  if (env_->metrics != nullptr && status.ok()) {
    env_->metrics->Sent(log_.rpc(), static_cast<int64_t>(response_->ByteSizeLong()));
  }
  log_.Done(status);
  BF_TSAN_RELEASE(this);  // the response we wrote, to whichever gRPC thread sends it
  Finish(ToGrpcStatus(status));
}

void UnaryCall::OnDone() {
  BF_TSAN_ACQUIRE(this);  // gRPC orders OnDone after Finish, through its uninstrumented code
  delete this;
}

void UnaryCall::RunAndReply(const std::function<Status()>& body) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point started = started_.value_or(Clock::now());
  LeaveQueue();
  if (env_->metrics != nullptr) {
    env_->metrics->Queued(log_.rpc(),
                          std::chrono::duration<double>(started - log_.start()).count());
  }
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
  if (env_->metrics != nullptr) {
    env_->metrics->Computed(log_.rpc(),
                            std::chrono::duration<double>(Clock::now() - started).count());
  }
  Reply(status);
}

}  // namespace backflow::server
