#include "clients/common/rpc.h"

#include <grpcpp/support/client_interceptor.h>

#include <cstdlib>
#include <utility>
#include <vector>

#include "clients/common/flags.h"

namespace backflow::clients {
namespace {

namespace gx = grpc::experimental;

// Adds the authorization header to every call of the channel, streams included.
class BearerInterceptor final : public gx::Interceptor {
 public:
  explicit BearerInterceptor(const std::string* header) : header_(header) {}
  void Intercept(gx::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            gx::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace("authorization", *header_);
    }
    methods->Proceed();
  }

 private:
  const std::string* header_;  // owned by the factory, which the channel keeps
};

class BearerFactory final : public gx::ClientInterceptorFactoryInterface {
 public:
  explicit BearerFactory(const std::string& token) : header_("Bearer " + token) {}
  gx::Interceptor* CreateClientInterceptor(gx::ClientRpcInfo*) override {
    return new BearerInterceptor(&header_);
  }

 private:
  const std::string header_;
};

Status ReadPem(std::string_view flag, const std::string& path, std::string* pem) {
  if (path.empty()) return Status::Ok();
  BF_ASSIGN_OR_RETURN(*pem, ReadFlagFile(flag, path));
  if (pem->find("-----BEGIN ") == std::string::npos) {
    return InvalidArgumentError("--" + std::string(flag) + " " + path + ": not a PEM file");
  }
  return Status::Ok();
}

}  // namespace

Status ReadTlsFiles(const std::string& ca_file, const std::string& cert_file,
                    const std::string& key_file, ChannelOptions* options) {
  if (cert_file.empty() != key_file.empty()) {
    return InvalidArgumentError(cert_file.empty()
                                    ? "--tls-key needs --tls-cert (the client certificate)"
                                    : "--tls-cert needs --tls-key (its private key)");
  }
  BF_RETURN_IF_ERROR(ReadPem("tls-ca", ca_file, &options->root_certificates));
  BF_RETURN_IF_ERROR(ReadPem("tls-cert", cert_file, &options->certificate_chain));
  return ReadPem("tls-key", key_file, &options->private_key);
}

StatusOr<ChannelOptions> ChannelOptionsFromEnvironment() {
  ChannelOptions options{.token = TokenFromEnvironment()};
  BF_RETURN_IF_ERROR(ReadTlsFiles(FromEnvironment("BACKFLOW_TLS_CA"),
                                  FromEnvironment("BACKFLOW_TLS_CERT"),
                                  FromEnvironment("BACKFLOW_TLS_KEY"), &options));
  return options;
}

std::shared_ptr<grpc::Channel> OpenChannel(const std::string& address,
                                           const ChannelOptions& options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);
  args.SetMaxSendMessageSize(256 << 20);
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      options.tls() ? grpc::SslCredentials({.pem_root_certs = options.root_certificates,
                                            .pem_private_key = options.private_key,
                                            .pem_cert_chain = options.certificate_chain})
                    : grpc::InsecureChannelCredentials();
  if (options.token.empty()) return grpc::CreateCustomChannel(address, credentials, args);
  std::vector<std::unique_ptr<gx::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<BearerFactory>(options.token));
  return gx::CreateCustomChannelWithInterceptors(address, credentials, args,
                                                 std::move(interceptors));
}

std::string FromEnvironment(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value == nullptr ? fallback : value;
}

std::string TokenFromEnvironment() { return FromEnvironment("BACKFLOW_TOKEN"); }

std::string_view StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN";
  }
}

std::string FormatStatus(const grpc::Status& status) {
  std::string text(StatusCodeName(status.error_code()));
  if (!status.error_message().empty()) text += ": " + status.error_message();
  return text;
}

std::string ConnectFailure(const grpc::Status& status, bool tls) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return "";
  const std::string& message = status.error_message();
  auto has = [&](std::string_view text) { return message.find(text) != std::string::npos; };
  const std::string hint =
      " (is backflow-server running there? `make run` starts one on 127.0.0.1:50051)";
  if (has("Connection refused")) return "connection refused" + hint;
  if (const size_t peer = message.find("Peer name "); peer != std::string::npos) {
    const size_t end = message.find(" is not in peer certificate", peer);
    const std::string host =
        end == std::string::npos ? "the host" : message.substr(peer + 10, end - peer - 10);
    return "the server's certificate does not name " + host +
           " (dial a name its subjectAltName lists, or give it a certificate for " + host + ")";
  }
  if (has("andshake failed") || has("SSL_ERROR")) {
    // OpenSSL's reason is the text after its last "::" ("certificate verify failed").
    const size_t colons = message.rfind("::");
    const std::string reason = colons == std::string::npos ? "" : message.substr(colons + 2);
    return "the TLS handshake failed" + (reason.empty() ? "" : ": " + reason) +
           (tls ? " (does --tls-ca name the CA that signed the server's certificate, and does "
                  "that certificate name the host you dial?)"
                : " (does the server use TLS? pass --tls-ca FILE)");
  }
  if (has("Socket closed") || has("Connection reset")) {
    return tls ? "the server closed the connection (with mutual TLS, pass --tls-cert and "
                 "--tls-key: a client certificate its CA signed, still valid)"
               : "the server closed the connection (does the server use TLS? pass --tls-ca "
                 "FILE)";
  }
  if (has("DNS resolution failed")) return "the host name does not resolve";
  if (has("Network is unreachable") || has("No route to host")) return "no route to the host";
  if (has("failed to connect to all addresses")) return "no connection" + hint;
  return "";
}

void SetTimeout(grpc::ClientContext& context, std::chrono::duration<double> timeout) {
  if (timeout.count() <= 0) return;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::duration_cast<std::chrono::system_clock::duration>(timeout));
}

}  // namespace backflow::clients
