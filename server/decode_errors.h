// DecodeCheckedHandler: a unary callback handler that answers a request whose bytes are not the
// request message with INVALID_ARGUMENT and a message, instead of gRPC's UNIMPLEMENTED.
//
// Note [Undecodable requests]
// gRPC C++ 1.51's CallbackUnaryHandler parses the request in Deserialize and, when that fails,
// RunHandler never calls the service and finishes the call with UNIMPLEMENTED and an empty
// message (server_callback_handlers.h), as if the method did not exist. Its request holder
// stays allocated (Deserialize releases nothing on failure; the call releases it at the end),
// so this handler wraps two ordinary CallbackUnaryHandlers: one serving the method, and one
// whose reactor refuses. A failed parse goes to the second with the status cleared, so gRPC's
// own machinery still owns the call. The failure is logged at warn level at most once a
// second (with the number left out), since a client can send any number of them.
#ifndef BACKFLOW_SERVER_DECODE_ERRORS_H_
#define BACKFLOW_SERVER_DECODE_ERRORS_H_

#include <grpc/byte_buffer.h>
#include <grpcpp/grpcpp.h>

#include <functional>
#include <string>
#include <utility>

#include "engine/core/tsan.h"
#include "server/telemetry/request_metrics.h"

namespace backflow::server {

// Logs `message` at warn level unless one was logged less than a second ago (counted then).
void LogUndecodableThrottled(const std::string& message);

// A call answered with `status` as soon as it is made (undecodable, or refused by the token
// check). As UnaryCall does, it tells ThreadSanitizer that gRPC orders OnDone, and the release
// of the call's messages after it, on another thread, after Finish: that happens inside
// gRPC's uninstrumented core.
class RefusedCall final : public grpc::ServerUnaryReactor {
 public:
  explicit RefusedCall(const std::string& message)
      : RefusedCall(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message)) {}
  explicit RefusedCall(const grpc::Status& status) {
    BF_TSAN_RELEASE(this);
    Finish(status);
  }
  void OnDone() override {
    BF_TSAN_ACQUIRE(this);
    delete this;
  }
};

template <typename Request, typename Response>
class DecodeCheckedHandler final : public grpc::internal::MethodHandler {
 public:
  using GetReactor = std::function<grpc::ServerUnaryReactor*(grpc::CallbackServerContext*,
                                                             const Request*, Response*)>;
  // `rpc` must outlive the handler (a literal); with `metrics`, the request bytes received and the
  // undecodable requests answered are counted (Note [Metrics] in server/metrics_text.h).
  DecodeCheckedHandler(const char* rpc, GetReactor serve, RequestMetrics* metrics = nullptr)
      : rpc_(rpc),
        metrics_(metrics),
        message_("the request is not a valid " + Request::descriptor()->full_name() + " (" + rpc +
                 "): its bytes could not be decoded"),
        serve_(std::move(serve)),
        refuse_([message = message_](grpc::CallbackServerContext*, const Request*, Response*) {
          return new RefusedCall(message);
        }) {}

  void* Deserialize(grpc_call* call, grpc_byte_buffer* req, grpc::Status* status,
                    void** handler_data) override {
    if (metrics_ != nullptr && req != nullptr) {
      metrics_->Received(rpc_, static_cast<int64_t>(grpc_byte_buffer_length(req)));
    }
    return serve_.Deserialize(call, req, status, handler_data);
  }
  void RunHandler(const HandlerParameter& param) override {
    if (param.status.ok()) {
      serve_.RunHandler(param);
      return;
    }
    LogUndecodableThrottled(message_);
    if (metrics_ != nullptr) metrics_->Done(rpc_, StatusCode::kInvalidArgument, 0);
    refuse_.RunHandler(HandlerParameter(param.call, param.server_context, param.request,
                                        grpc::Status::OK, param.internal_data,
                                        param.call_requester));
  }

 private:
  const char* const rpc_;
  RequestMetrics* const metrics_;
  const std::string message_;
  grpc::internal::CallbackUnaryHandler<Request, Response> serve_;
  grpc::internal::CallbackUnaryHandler<Request, Response> refuse_;
};

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_DECODE_ERRORS_H_
