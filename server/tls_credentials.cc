#include "server/tls_credentials.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

namespace backflow::server {

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const auth::TlsFiles& files) {
  if (!files.enabled()) return grpc::InsecureServerCredentials();
  namespace gx = grpc::experimental;
  const auto interval = static_cast<unsigned int>(files.reload_seconds);
  auto provider = files.mutual() ? std::make_shared<gx::FileWatcherCertificateProvider>(
                                       files.key, files.cert, files.client_ca, interval)
                                 : std::make_shared<gx::FileWatcherCertificateProvider>(
                                       files.key, files.cert, interval);
  gx::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (files.mutual()) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return gx::TlsServerCredentials(options);
}

}  // namespace backflow::server
