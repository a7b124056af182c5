// The credentials of the gRPC port: plaintext, TLS, or mutual TLS (docs/security.md).
//
// Rotation uses gRPC's FileWatcherCertificateProvider: it re-reads the certificate, the key
// and the client CA every `reload_seconds` and hands new connections whatever it read last;
// connections already open keep the certificate they were set up with. Replace the files with
// a rename (write, then mv), the key before the certificate: a half-written file is skipped
// and retried at the next interval, and the old pair stays in force meanwhile.
#ifndef BACKFLOW_SERVER_TLS_CREDENTIALS_H_
#define BACKFLOW_SERVER_TLS_CREDENTIALS_H_

#include <grpcpp/security/server_credentials.h>

#include <memory>

#include "server/auth/tls_files.h"

namespace backflow::server {

// InsecureServerCredentials when `files` name no certificate. Check the files with
// auth::CheckTlsFiles first: gRPC itself only logs what it cannot read.
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const auth::TlsFiles& files);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_TLS_CREDENTIALS_H_
