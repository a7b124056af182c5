// What every bundled C++ client needs to talk to backflow-server: a channel sized for big
// tensors, the names of gRPC status codes, and deadlines.
#ifndef BACKFLOW_CLIENTS_COMMON_RPC_H_
#define BACKFLOW_CLIENTS_COMMON_RPC_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace backflow::clients {

// An insecure channel to `address` (host:port) whose messages may be as large as the server's
// default limit (256 MiB). With a `token`, every call on it sends `authorization: Bearer TOKEN`
// (a server started with --auth-tokens requires one; docs/security.md).
std::shared_ptr<grpc::Channel> OpenChannel(const std::string& address,
                                           const std::string& token = "");

// The token a client uses when no --token is given: $BACKFLOW_TOKEN, else "".
std::string TokenFromEnvironment();

// "NOT_FOUND", "RESOURCE_EXHAUSTED", ... (gRPC's canonical names).
std::string_view StatusCodeName(grpc::StatusCode code);
// "NOT_FOUND: model 'x' not found".
std::string FormatStatus(const grpc::Status& status);

// For a call that never reached a server (no connection: refused, unresolvable, timed out),
// the reason in a few words with a hint ("connection refused (is backflow-server running
// there? `make run` starts one on 127.0.0.1:50051)"); "" for any other status, including
// UNAVAILABLE answered by a server that is shutting down.
std::string ConnectFailure(const grpc::Status& status);

// Sets a deadline `timeout` from now (none if timeout <= 0).
void SetTimeout(grpc::ClientContext& context, std::chrono::duration<double> timeout);

}  // namespace backflow::clients

#endif  // BACKFLOW_CLIENTS_COMMON_RPC_H_
