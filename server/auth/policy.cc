// The role table and the per-call check (policy.h).
#include "server/auth/policy.h"

#include <array>
#include <string>
#include <utility>

namespace backflow::server::auth {
namespace {

constexpr std::array<std::pair<std::string_view, Role>, 26> kRoles = {{
    {"Infer", Role::kRead},
    {"Evaluate", Role::kRead},
    {"CheckGradients", Role::kRead},
    {"GetModel", Role::kRead},
    {"ListModels", Role::kRead},
    {"GetParameters", Role::kRead},
    {"ExportModel", Role::kRead},
    {"ListCheckpoints", Role::kRead},
    {"DownloadCheckpoint", Role::kRead},
    {"ServerReflectionInfo", Role::kRead},  // grpc.reflection.v1 and v1alpha
    // inference.GRPCInferenceService (ServerLive and ServerReady are open, like health)
    {"ModelInfer", Role::kRead},
    {"ModelReady", Role::kRead},
    {"ModelMetadata", Role::kRead},
    {"ModelConfig", Role::kRead},
    {"ModelStatistics", Role::kRead},
    {"ServerMetadata", Role::kRead},
    {"TrainStep", Role::kTrain},
    {"Train", Role::kTrain},
    {"ComputeGradients", Role::kTrain},
    {"SetParameters", Role::kTrain},
    {"SaveCheckpoint", Role::kTrain},
    {"RestoreCheckpoint", Role::kTrain},
    {"DeleteCheckpoint", Role::kTrain},
    {"CreateModel", Role::kAdmin},
    {"DeleteModel", Role::kAdmin},
    {"UploadCheckpoint", Role::kAdmin},  // creates a model
}};

// Not in engine/core/status.h: the engine has no use for these two codes.
Status UnauthenticatedError(std::string message) {
  return Status(StatusCode::kUnauthenticated, std::move(message));
}
Status PermissionDeniedError(std::string message) {
  return Status(StatusCode::kPermissionDenied, std::move(message));
}

constexpr std::string_view kHowToSend =
    "send the header 'authorization: Bearer TOKEN' (backflow --token or BACKFLOW_TOKEN; "
    "Client(address, token=...) in Python)";

}  // namespace

Role RequiredRole(std::string_view rpc) {
  for (const auto& [name, role] : kRoles) {
    if (name == rpc) return role;
  }
  return Role::kAdmin;
}

bool MaySee(const Token& token, std::string_view model_name) {
  return token.role == Role::kAdmin || model_name.starts_with(token.model_prefix);
}

Decision Authorize(const TokenTable& tokens, std::optional<std::string_view> authorization,
                   std::string_view rpc, std::optional<std::string_view> model_name) {
  if (!authorization) {
    return {UnauthenticatedError("the server requires a token: " + std::string(kHowToSend))};
  }
  const std::optional<std::string_view> bearer = BearerToken(*authorization);
  if (!bearer) {
    return {UnauthenticatedError("the authorization header is not 'Bearer TOKEN': " +
                                 std::string(kHowToSend))};
  }
  const Token* token = tokens.Find(*bearer);
  if (token == nullptr) return {UnauthenticatedError("unknown token")};
  const Role needed = RequiredRole(rpc);
  if (token->role < needed) {
    return {PermissionDeniedError("token '" + token->name + "' has role " +
                                  std::string(RoleName(token->role)) + "; " + std::string(rpc) +
                                  " needs " + std::string(RoleName(needed))),
            token};
  }
  if (model_name && !MaySee(*token, *model_name)) {
    return {PermissionDeniedError("token '" + token->name + "' is limited to models named '" +
                                  token->model_prefix + "...'; this model is named '" +
                                  std::string(*model_name) + "'"),
            token};
  }
  return {Status(), token};
}

}  // namespace backflow::server::auth
