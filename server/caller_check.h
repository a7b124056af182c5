// The token checks of the RPC handlers (docs/security.md), when --auth-tokens is given: every
// backflow.v1 call is checked for its role before it runs, calls on a model for the token's
// model-name prefix once the model is found, and ListModels lists only what the token may see.
#ifndef BACKFLOW_SERVER_CALLER_CHECK_H_
#define BACKFLOW_SERVER_CALLER_CHECK_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "engine/core/status.h"

namespace backflow::server {

struct ServiceEnv;

// The `authorization` header of the call, if it sent one.
std::optional<std::string_view> AuthorizationHeader(const grpc::ServerContextBase* ctx);

// OK when the server runs without tokens; else the decision for `rpc` on the model named
// `model_name` (nullopt: a call that addresses no model). A refusal is logged at warn level with
// the peer and the method, at most one line a second with a count of the rest; never the token.
Status CheckCaller(ServiceEnv& env, const grpc::ServerContextBase* ctx, std::string_view rpc,
                   std::optional<std::string_view> model_name);

// The caller's token name, owner of the models it creates, and its max-models quota (0: none);
// empty when tokens are off or the token is unknown (CheckCaller refuses it first).
struct ModelQuota {
  std::string owner;
  int64_t max_models = 0;
};
ModelQuota CallerModelQuota(ServiceEnv& env, const grpc::ServerContextBase* ctx);

// Whether the caller may see a model of a given name (all of them when tokens are off).
std::function<bool(std::string_view)> VisibleModels(ServiceEnv& env,
                                                    const grpc::ServerContextBase* ctx);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_CALLER_CHECK_H_
