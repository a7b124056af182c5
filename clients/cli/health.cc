// backflow health: the standard grpc.health.v1 check, for scripts and readiness probes.
#include <cstdio>

#include "clients/cli/session.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace backflow::cli {
namespace {

int RunHealth(Session& session, const Args& args) {
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(args.Value("service"));
  grpc::health::v1::HealthCheckResponse response;
  grpc::ClientContext context;
  session.SetDeadline(context);
  auto stub = grpc::health::v1::Health::NewStub(session.channel());
  const grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) return session.Fail("health", status);
  std::printf("%s\n",
              grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()).c_str());
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? kExitOk
                                                                             : kExitFailure;
}

}  // namespace

std::vector<Command> HealthCommands() {
  return {{
      .name = "health",
      .summary = "print SERVING or NOT_SERVING; exit 0 only when SERVING",
      .details = "Calls grpc.health.v1.Health/Check. A server that cannot be reached is an\n"
                 "error (exit 1, UNAVAILABLE).\n",
      .flags = {{"service", FlagKind::kValue, "NAME",
                 "service to ask about (default \"\": the whole server; or backflow.v1.Backflow)"}},
      .run = RunHealth,
  }};
}

}  // namespace backflow::cli
