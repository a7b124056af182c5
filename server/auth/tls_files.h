// The TLS files of backflow-server (--tls-cert, --tls-key, --tls-client-ca; docs/security.md),
// checked at start-up. gRPC reads them itself, and again every `reload_seconds` so they can be
// rotated without a restart (server/tls_credentials.h); but a mistake found only at the first
// handshake fails every client with a vague "handshake failed", so the server checks them first
// and refuses to start with the flag and the reason.
#ifndef BACKFLOW_SERVER_AUTH_TLS_FILES_H_
#define BACKFLOW_SERVER_AUTH_TLS_FILES_H_

#include <chrono>
#include <string>
#include <vector>

#include "engine/core/status.h"

namespace backflow::server::auth {

struct TlsFiles {
  std::string cert;       // PEM certificate chain of the server, its own certificate first
  std::string key;        // PEM private key of that certificate
  std::string client_ca;  // mutual TLS: PEM CA certificates client certificates must chain to
  int reload_seconds = 10;
  bool enabled() const { return !cert.empty(); }
  bool mutual() const { return !client_ca.empty(); }
};

// What the checks found that does not stop the server (a certificate close to its end).
struct TlsReport {
  std::string subject;  // of the server certificate, "CN=..."
  std::chrono::system_clock::time_point not_after;
  std::vector<std::string> warnings;
};

// InvalidArgument naming the flag when a file cannot be read, holds no PEM certificate (or
// key), the key does not belong to the certificate, or the certificate has expired.
StatusOr<TlsReport> CheckTlsFiles(const TlsFiles& files, std::chrono::system_clock::time_point now =
                                                             std::chrono::system_clock::now());

}  // namespace backflow::server::auth

#endif  // BACKFLOW_SERVER_AUTH_TLS_FILES_H_
