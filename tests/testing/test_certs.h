// Certificates for TLS tests, made with OpenSSL's libcrypto at test time: a CA, the server and
// client certificates it signs, with any validity window (an expired one included), so no test
// depends on the openssl tool or on files that age.
//
//   TestCa ca("test CA");
//   TestCert server = ca.Issue({.common_name = "server", .hosts = {"localhost", "127.0.0.1"}});
//   TestCert expired = ca.Issue({.common_name = "old", .client = true,
//                                .not_after = -std::chrono::hours(1)});
#ifndef BACKFLOW_TESTS_TESTING_TEST_CERTS_H_
#define BACKFLOW_TESTS_TESTING_TEST_CERTS_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace backflow::testing {

struct TestCert {
  std::string cert_pem;
  std::string key_pem;  // PKCS#8, unencrypted
};

struct CertSpec {
  std::string common_name;
  std::vector<std::string> hosts;  // subjectAltName: IP entries for addresses, DNS for names
  bool client = false;             // extendedKeyUsage clientAuth (else serverAuth)
  // The validity window, relative to now.
  std::chrono::seconds not_before = -std::chrono::hours(1);
  std::chrono::seconds not_after = std::chrono::hours(24);
};

class TestCa {
 public:
  explicit TestCa(const std::string& name);
  ~TestCa();
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  const std::string& cert_pem() const { return self_.cert_pem; }
  TestCert Issue(const CertSpec& spec) const;

 private:
  struct Keys;
  std::unique_ptr<Keys> keys_;  // the CA's certificate and key, as OpenSSL objects
  TestCert self_;
};

// Writes `text` to `path` through a temporary file and a rename, as a rotation would.
void WriteFileAtomically(const std::string& path, const std::string& text);

}  // namespace backflow::testing

#endif  // BACKFLOW_TESTS_TESTING_TEST_CERTS_H_
