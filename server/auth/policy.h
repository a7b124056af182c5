// Which role each RPC of backflow.v1.Backflow needs, and the check every call makes against the
// caller's token (docs/security.md). grpc.health.v1 is open to everyone, so probes need no token.
#ifndef BACKFLOW_SERVER_AUTH_POLICY_H_
#define BACKFLOW_SERVER_AUTH_POLICY_H_

#include <optional>
#include <string_view>

#include "engine/core/status.h"
#include "server/auth/tokens.h"

namespace backflow::server::auth {

// The role `rpc` (a method of backflow.v1.Backflow, e.g. "TrainStep") needs. read: Infer,
// Evaluate, CheckGradients, GetModel, ListModels, GetParameters, ExportModel, ListCheckpoints,
// DownloadCheckpoint;
// train: TrainStep, Train, ComputeGradients, SetParameters, SaveCheckpoint, RestoreCheckpoint,
// DeleteCheckpoint; admin:
// CreateModel, DeleteModel, UploadCheckpoint and any method this table does not know (fail closed).
Role RequiredRole(std::string_view rpc);

// The outcome of checking one call.
struct Decision {
  Status status;                 // OK, UNAUTHENTICATED or PERMISSION_DENIED
  const Token* token = nullptr;  // the caller's entry when the token is known
};

// Checks a call to `rpc` carrying `authorization` (the header's value; nullopt: none) against
// `tokens`. `model_name`: the name of the model the call addresses, nullopt for calls that
// address none (CreateModel checks the name it asks for). No header or an unknown token:
// UNAUTHENTICATED saying how to send one; a known token whose role is below RequiredRole(rpc),
// or a non-admin token whose prefix the model name lacks: PERMISSION_DENIED naming the token,
// its role and what the call needs. Messages never contain the token.
Decision Authorize(const TokenTable& tokens, std::optional<std::string_view> authorization,
                   std::string_view rpc, std::optional<std::string_view> model_name);

// Whether `token` may see the model called `model_name` (ListModels keeps only those).
bool MaySee(const Token& token, std::string_view model_name);

}  // namespace backflow::server::auth

#endif  // BACKFLOW_SERVER_AUTH_POLICY_H_
