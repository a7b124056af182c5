// The one place where an engine Status becomes a grpc::Status (DESIGN.md: exactly one function
// maps them). Codes carry over one to one: both follow the canonical gRPC code list.
#ifndef BACKFLOW_SERVER_GRPC_STATUS_H_
#define BACKFLOW_SERVER_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "engine/core/status.h"

namespace backflow::server {

grpc::Status ToGrpcStatus(const Status& status);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_GRPC_STATUS_H_
