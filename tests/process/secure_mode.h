// BACKFLOW_TEST_SECURE=1: the child-process tests again with TLS and tokens on. ctest runs the
// crash and kill tests a second time so (the "secure." tests): every server ServerProcess::Start
// launches then serves TLS with a token file, and every ConnectTo channel trusts its CA and sends
// an admin token, so what those tests check (nothing lost to SIGKILL, checkpoints intact) is
// checked over the secure setup as well.
#ifndef BACKFLOW_TESTS_PROCESS_SECURE_MODE_H_
#define BACKFLOW_TESTS_PROCESS_SECURE_MODE_H_

#include <grpcpp/grpcpp.h>
#include <openssl/sha.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "tests/testing/temp_dir.h"
#include "tests/testing/test_certs.h"

namespace backflow::testing {

struct SecureSetup {
  std::vector<std::string> server_flags;  // --tls-cert, --tls-key, --auth-tokens
  std::shared_ptr<grpc::ChannelCredentials> credentials;  // trusts the CA, sends the token
};

// The setup of this test binary when BACKFLOW_TEST_SECURE=1 (made once), else nullptr.
inline const SecureSetup* Secure() {
  static const SecureSetup* const setup = []() -> const SecureSetup* {
    const char* on = std::getenv("BACKFLOW_TEST_SECURE");
    if (on == nullptr || std::string(on) != "1") return nullptr;
    static TempDir dir("backflow-secure-");
    const TestCa ca("secure-mode test CA");
    const TestCert cert = ca.Issue({.common_name = "server", .hosts = {"127.0.0.1"}});
    const std::string token = "bf_secure_mode_test_token";
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
    std::string line = "sha256:";
    for (unsigned char byte : digest) {
      line += "0123456789abcdef"[byte >> 4];
      line += "0123456789abcdef"[byte & 15];
    }
    WriteFileAtomically(dir.path() + "/server.pem", cert.cert_pem);
    WriteFileAtomically(dir.path() + "/server.key", cert.key_pem);
    WriteFileAtomically(dir.path() + "/tokens.txt", line + " admin name=tests\n");
    auto* made = new SecureSetup;
    made->server_flags = {"--tls-cert=" + dir.path() + "/server.pem",
                          "--tls-key=" + dir.path() + "/server.key",
                          "--auth-tokens=" + dir.path() + "/tokens.txt"};
    made->credentials = grpc::CompositeChannelCredentials(
        grpc::SslCredentials({.pem_root_certs = ca.cert_pem()}),
        grpc::AccessTokenCredentials(token));
    return made;
  }();
  return setup;
}

}  // namespace backflow::testing

#endif  // BACKFLOW_TESTS_PROCESS_SECURE_MODE_H_
