// Token checks of the RPC handlers (caller_check.h).
#include "server/caller_check.h"

#include <spdlog/spdlog.h>

#include <string>

#include "server/auth/token_store.h"
#include "server/call.h"
#include "server/log_throttle.h"
#include "server/names.h"
#include "server/service_env.h"

namespace backflow::server {
namespace {

void LogRefusalThrottled(const grpc::ServerContextBase* ctx, std::string_view rpc,
                         const Status& status) {
  static LogThrottle throttle;
  if (std::optional<int64_t> skipped = throttle.Admit()) {
    spdlog::warn("refused {} from {}: {} (and {} more refusals since the last line)", rpc,
                 Escaped(ctx->peer()), status.ToString(), *skipped);
  }
}

}  // namespace

std::optional<std::string_view> AuthorizationHeader(const grpc::ServerContextBase* ctx) {
  const auto& metadata = ctx->client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return std::nullopt;
  return std::string_view(it->second.data(), it->second.size());
}

Status CheckCaller(ServiceEnv& env, const grpc::ServerContextBase* ctx, std::string_view rpc,
                   std::optional<std::string_view> model_name) {
  if (env.tokens == nullptr) return Status::Ok();
  auth::TokenStore::Checked checked = env.tokens->Check(AuthorizationHeader(ctx), rpc, model_name);
  if (!checked.status.ok()) {
    LogRefusalThrottled(ctx, rpc, checked.status);
    CountRefusal(env, checked.status);
  }
  return checked.status;
}

ModelQuota CallerModelQuota(ServiceEnv& env, const grpc::ServerContextBase* ctx) {
  if (env.tokens == nullptr) return {};
  auth::TokenStore::Checked checked =
      env.tokens->Check(AuthorizationHeader(ctx), "CreateModel", std::nullopt);
  if (checked.token == nullptr) return {};
  return {checked.token->name, checked.token->max_models};
}

std::function<bool(std::string_view)> VisibleModels(ServiceEnv& env,
                                                    const grpc::ServerContextBase* ctx) {
  if (env.tokens == nullptr) return [](std::string_view) { return true; };
  auth::TokenStore::Checked checked =
      env.tokens->Check(AuthorizationHeader(ctx), "ListModels", std::nullopt);
  if (checked.token == nullptr) return [](std::string_view) { return false; };
  return [checked](std::string_view name) { return auth::MaySee(*checked.token, name); };
}

}  // namespace backflow::server
