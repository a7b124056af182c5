// CheckedMethod: the handler every unary method of our gRPC services is served by. It answers an
// undecodable request with INVALID_ARGUMENT (Note [Undecodable requests] in
// server/decode_errors.h) and, with --auth-tokens, checks the caller's role for the method before
// the service sees the call (server/caller_check.h); the model-name prefix is checked by the
// method once it has found the model.
#ifndef BACKFLOW_SERVER_CHECKED_METHOD_H_
#define BACKFLOW_SERVER_CHECKED_METHOD_H_

#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <string>
#include <utility>

#include "server/caller_check.h"
#include "server/decode_errors.h"
#include "server/grpc_status.h"
#include "server/service_env.h"

namespace backflow::server {

enum class RoleCheck { kRequired, kOpen };

// The method `rpc` of `service_name` (its name in the .proto file that declares Request) and
// its handler, for the service's MarkMethodCallback: `(service->*method)` serves the calls that
// decode and pass the role check (all of them with RoleCheck::kOpen). Aborts at start-up if the
// proto has no such method taking Request: a programming error.
template <typename Service, typename Request, typename Response>
std::pair<int, grpc::internal::MethodHandler*> CheckedMethod(
    ServiceEnv* env, const char* service_name, const char* rpc, Service* service,
    grpc::ServerUnaryReactor* (Service::*method)(grpc::CallbackServerContext*, const Request*,
                                                 Response*),
    RoleCheck role = RoleCheck::kRequired) {
  // The generated code numbers methods in the order of the proto's service.
  const google::protobuf::ServiceDescriptor* declared =
      Request::descriptor()->file()->FindServiceByName(service_name);
  const google::protobuf::MethodDescriptor* found =
      declared == nullptr ? nullptr : declared->FindMethodByName(rpc);
  if (found == nullptr || found->input_type() != Request::descriptor()) std::abort();
  auto serve = [env, service, method, rpc, role](grpc::CallbackServerContext* ctx,
                                                 const Request* req,
                                                 Response* resp) -> grpc::ServerUnaryReactor* {
    if (role == RoleCheck::kRequired) {
      if (Status allowed = CheckCaller(*env, ctx, rpc, {}); !allowed.ok()) {
        if (env->metrics != nullptr) env->metrics->Done(rpc, allowed.code(), 0);
        return new RefusedCall(ToGrpcStatus(allowed));
      }
    }
    return (service->*method)(ctx, req, resp);
  };
  return {found->index(),
          new DecodeCheckedHandler<Request, Response>(rpc, std::move(serve), env->metrics.get())};
}

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_CHECKED_METHOD_H_
