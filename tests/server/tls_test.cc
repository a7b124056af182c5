// TLS and mutual TLS on the gRPC port, with real channels on 127.0.0.1: who gets through, who
// does not, and certificate rotation without a restart.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <thread>

#include "server/auth/tokens.h"
#include "tests/server/server_fixture.h"
#include "tests/testing/test_certs.h"

namespace backflow::testing {
namespace {

constexpr auto kCallTimeout = std::chrono::seconds(10);

class TlsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (server_ != nullptr) {
      EXPECT_TRUE(server_->Shutdown().ok());
    }
  }

  // Writes `cert` as the server's files (key first, then certificate, each by a rename).
  void Install(const TestCert& cert) {
    WriteFileAtomically(key_path_, cert.key_pem);
    WriteFileAtomically(cert_path_, cert.cert_pem);
  }

  void Start(const TestCert& cert, const TestCa* client_ca = nullptr, int reload_seconds = 10,
             const std::string& tokens = "") {
    Install(cert);
    server::ServerConfig config = TestConfig(dir_.path() + "/data");
    config.tls = {.cert = cert_path_, .key = key_path_, .reload_seconds = reload_seconds};
    if (client_ca != nullptr) {
      config.tls.client_ca = dir_.path() + "/client-ca.pem";
      WriteFileAtomically(config.tls.client_ca, client_ca->cert_pem());
    }
    if (!tokens.empty()) {
      config.auth_tokens = dir_.path() + "/tokens.txt";
      WriteFileAtomically(config.auth_tokens, tokens);
    }
    server_ = StartServer(config);
    ASSERT_NE(server_, nullptr);
  }

  // A channel of its own (no connection shared with any other channel).
  std::shared_ptr<grpc::Channel> Channel(std::shared_ptr<grpc::ChannelCredentials> credentials) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(server_->address(), credentials, args);
  }

  static std::shared_ptr<grpc::ChannelCredentials> Trusting(const std::string& ca_pem,
                                                            const TestCert* client = nullptr) {
    grpc::SslCredentialsOptions options{.pem_root_certs = ca_pem};
    if (client != nullptr) {
      options.pem_private_key = client->key_pem;
      options.pem_cert_chain = client->cert_pem;
    }
    return grpc::SslCredentials(options);
  }

  // ListModels on `channel`; with a token, as its bearer.
  static grpc::Status List(grpc::Channel& channel, v1::ListModelsResponse* models = nullptr,
                           const std::string& token = "") {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    v1::ListModelsResponse ignored;
    auto stub = v1::Backflow::NewStub(
        std::shared_ptr<grpc::ChannelInterface>(&channel, [](grpc::ChannelInterface*) {}));
    return stub->ListModels(&context, v1::ListModelsRequest(), models ? models : &ignored);
  }
  grpc::Status ListOnNewChannel(std::shared_ptr<grpc::ChannelCredentials> credentials) {
    return List(*Channel(std::move(credentials)));
  }

  TempDir dir_;
  const std::string cert_path_ = dir_.path() + "/server.pem";
  const std::string key_path_ = dir_.path() + "/server.key";
  TestCa ca_{"backflow test CA"};
  TestCa other_ca_{"another CA"};
  TestCert server_cert_ = ca_.Issue({.common_name = "server", .hosts = {"127.0.0.1", "localhost"}});
  std::unique_ptr<server::Server> server_;
};

TEST_F(TlsTest, ClientTrustingTheCaGetsThrough) {
  Start(server_cert_);
  const grpc::Status status = ListOnNewChannel(Trusting(ca_.cert_pem()));
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(TlsTest, PlaintextClientIsRefused) {
  Start(server_cert_);
  const grpc::Status status = ListOnNewChannel(grpc::InsecureChannelCredentials());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(TlsTest, ClientTrustingAnotherCaIsRefused) {
  Start(server_cert_);
  const grpc::Status status = ListOnNewChannel(Trusting(other_ca_.cert_pem()));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(TlsTest, CertificateForAnotherHostIsRefused) {
  Start(ca_.Issue({.common_name = "elsewhere", .hosts = {"backflow.example"}}));
  const grpc::Status status = ListOnNewChannel(Trusting(ca_.cert_pem()));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(TlsTest, TlsClientOfAPlaintextServerIsRefused) {
  server_ = StartServer(TestConfig(dir_.path() + "/data"));
  ASSERT_NE(server_, nullptr);
  const grpc::Status status = ListOnNewChannel(Trusting(ca_.cert_pem()));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(TlsTest, MutualTlsAdmitsOnlyValidClientCertificatesOfItsCa) {
  Start(server_cert_, &ca_);
  const TestCert client = ca_.Issue({.common_name = "client", .client = true});
  const TestCert stranger = other_ca_.Issue({.common_name = "stranger", .client = true});
  const TestCert expired = ca_.Issue({.common_name = "old",
                                      .client = true,
                                      .not_before = -std::chrono::hours(48),
                                      .not_after = -std::chrono::hours(1)});
  struct Case {
    const char* name;
    const TestCert* cert;
  };
  for (const Case& c : {Case{"no client certificate", nullptr}, Case{"untrusted CA", &stranger},
                        Case{"expired", &expired}}) {
    const grpc::Status status = ListOnNewChannel(Trusting(ca_.cert_pem(), c.cert));
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << c.name << ": " << status.error_message();
  }
  const grpc::Status status = ListOnNewChannel(Trusting(ca_.cert_pem(), &client));
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(TlsTest, TokensStillDecideOverTls) {
  const std::string token = "bf_tls_test_token";
  Start(server_cert_, nullptr, 10,
        "sha256:" + server::auth::ToHex(server::auth::Sha256(token)) + " read name=reader\n");
  auto channel = Channel(Trusting(ca_.cert_pem()));
  EXPECT_EQ(List(*channel).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  const grpc::Status status = List(*channel, nullptr, token);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// New connections get the new certificate once the files change; the connection opened before
// keeps working and the server (its models) never restarts.
TEST_F(TlsTest, RotatedCertificateServesNewConnectionsWithoutARestart) {
  Start(server_cert_, nullptr, /*reload_seconds=*/1);
  const int port = server_->port();
  auto old_channel = Channel(Trusting(ca_.cert_pem() + other_ca_.cert_pem()));
  ASSERT_TRUE(List(*old_channel).ok());
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    v1::CreateModelRequest request;
    request.set_name("kept");
    *request.mutable_graph() = TinyMlpGraph();
    v1::ModelInfo info;
    ASSERT_TRUE(v1::Backflow::NewStub(old_channel)->CreateModel(&context, request, &info).ok());
  }
  EXPECT_EQ(ListOnNewChannel(Trusting(other_ca_.cert_pem())).error_code(),
            grpc::StatusCode::UNAVAILABLE);

  Install(other_ca_.Issue({.common_name = "rotated", .hosts = {"127.0.0.1"}}));
  grpc::Status rotated;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    rotated = ListOnNewChannel(Trusting(other_ca_.cert_pem()));
  } while (!rotated.ok() && std::chrono::steady_clock::now() < give_up);
  ASSERT_TRUE(rotated.ok()) << "the new certificate was never served: " << rotated.error_message();
  EXPECT_EQ(ListOnNewChannel(Trusting(ca_.cert_pem())).error_code(), grpc::StatusCode::UNAVAILABLE);

  v1::ListModelsResponse models;
  const grpc::Status status = List(*old_channel, &models);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(models.models_size(), 1);
  EXPECT_EQ(models.models(0).name(), "kept");
  EXPECT_EQ(server_->port(), port);
}

}  // namespace
}  // namespace backflow::testing
