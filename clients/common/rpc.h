// What every bundled C++ client needs to talk to backflow-server: a channel sized for big
// tensors, the names of gRPC status codes, and deadlines.
#ifndef BACKFLOW_CLIENTS_COMMON_RPC_H_
#define BACKFLOW_CLIENTS_COMMON_RPC_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "engine/core/status.h"

namespace backflow::clients {

// How a client reaches the server: its token, and for TLS the PEM text (not the file names) of
// the CA to trust and of its own certificate and key (mutual TLS). docs/security.md.
struct ChannelOptions {
  std::string token;              // sent as `authorization: Bearer TOKEN`; "" sends none
  std::string root_certificates;  // CAs the server's certificate must chain to
  std::string certificate_chain;  // the client's certificate, for a server with --tls-client-ca
  std::string private_key;        // its key
  // TLS with a CA or a client certificate; without a CA, the system's CAs are trusted.
  bool tls() const { return !root_certificates.empty() || !certificate_chain.empty(); }
};

// The --tls-ca, --tls-cert and --tls-key files of a client read into `options` (an empty name
// reads nothing). InvalidArgument naming the flag for a file that cannot be read or holds no PEM
// block, or for a certificate without its key (or a key without its certificate).
Status ReadTlsFiles(const std::string& ca_file, const std::string& cert_file,
                    const std::string& key_file, ChannelOptions* options);

// $BACKFLOW_TOKEN and the files $BACKFLOW_TLS_CA, _CERT and _KEY name, for a client with no
// flags of its own for them.
StatusOr<ChannelOptions> ChannelOptionsFromEnvironment();

// A channel to `address` (host:port) whose messages may be as large as the server's default
// limit (256 MiB): plaintext, or TLS when `options.tls()`. With a token every call on it, streams
// included, carries it (a server started with --auth-tokens requires one).
std::shared_ptr<grpc::Channel> OpenChannel(const std::string& address,
                                           const ChannelOptions& options = {});

// The token a client uses when no --token is given: $BACKFLOW_TOKEN, else "".
std::string TokenFromEnvironment();
// $NAME, else `fallback` (the TLS flags fall back to $BACKFLOW_TLS_CA, _CERT and _KEY).
std::string FromEnvironment(const char* name, const std::string& fallback = "");

// "NOT_FOUND", "RESOURCE_EXHAUSTED", ... (gRPC's canonical names).
std::string_view StatusCodeName(grpc::StatusCode code);
// "NOT_FOUND: model 'x' not found".
std::string FormatStatus(const grpc::Status& status);

// For a call that never reached a server (no connection: refused, unresolvable, timed out),
// the reason in a few words with a hint ("connection refused (is backflow-server running
// there? `make run` starts one on 127.0.0.1:50051)"); "" for any other status, including
// UNAVAILABLE answered by a server that is shutting down. `tls`: whether the channel used TLS
// (the hint for a closed connection or a failed handshake depends on it).
std::string ConnectFailure(const grpc::Status& status, bool tls = false);

// Sets a deadline `timeout` from now (none if timeout <= 0).
void SetTimeout(grpc::ClientContext& context, std::chrono::duration<double> timeout);

}  // namespace backflow::clients

#endif  // BACKFLOW_CLIENTS_COMMON_RPC_H_
