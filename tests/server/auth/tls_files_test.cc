// The start-up checks of the server's TLS files: each mistake stops the server with the flag
// and the reason, a certificate about to expire is a warning.
#include "server/auth/tls_files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"
#include "tests/testing/test_certs.h"

namespace backflow::server::auth {
namespace {

using testing::CertSpec;
using ::testing::HasSubstr;
using testing::TestCa;
using testing::TestCert;

class TlsFilesTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_.path() + "/" + name;
    testing::WriteFileAtomically(path, text);
    return path;
  }
  // The files of a certificate: NAME.pem and NAME.key.
  TlsFiles Files(const std::string& name, const TestCert& cert) {
    return {.cert = Write(name + ".pem", cert.cert_pem), .key = Write(name + ".key", cert.key_pem)};
  }
  std::string Error(const TlsFiles& files) {
    StatusOr<TlsReport> report = CheckTlsFiles(files);
    EXPECT_FALSE(report.ok());
    EXPECT_EQ(report.status().code(), StatusCode::kInvalidArgument);
    return report.ok() ? "" : report.status().message();
  }

  testing::TempDir dir_;
  TestCa ca_{"backflow test CA"};
  TestCert server_ = ca_.Issue({.common_name = "backflow-server",
                                .hosts = {"127.0.0.1"},
                                .not_after = std::chrono::hours(24 * 60)});
};

TEST_F(TlsFilesTest, NoFilesIsPlaintext) {
  StatusOr<TlsReport> report = CheckTlsFiles({});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->warnings.empty());
}

TEST_F(TlsFilesTest, AGoodPairPassesWithItsSubject) {
  TlsFiles files = Files("server", server_);
  files.client_ca = Write("ca.pem", ca_.cert_pem());
  StatusOr<TlsReport> report = CheckTlsFiles(files);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->subject, "CN=backflow-server");
  EXPECT_TRUE(report->warnings.empty());
  const auto left = report->not_after - std::chrono::system_clock::now();
  EXPECT_GT(left, std::chrono::hours(24 * 60 - 1));
  EXPECT_LT(left, std::chrono::hours(24 * 60 + 1));
}

TEST_F(TlsFilesTest, CertificateAndKeyComeTogether) {
  const TlsFiles files = Files("server", server_);
  EXPECT_EQ(Error({.cert = files.cert}), "--tls-cert needs --tls-key (its private key)");
  EXPECT_EQ(Error({.key = files.key}), "--tls-key needs --tls-cert (its certificate)");
  EXPECT_THAT(Error({.client_ca = files.cert}), HasSubstr("--tls-client-ca needs --tls-cert"));
}

TEST_F(TlsFilesTest, UnreadableAndNonPemFilesNameTheFlag) {
  const TlsFiles files = Files("server", server_);
  EXPECT_THAT(
      Error({.cert = dir_.path() + "/missing.pem", .key = files.key}),
      HasSubstr("--tls-cert " + dir_.path() + "/missing.pem: cannot read it (No such file"));
  EXPECT_THAT(Error({.cert = Write("text.pem", "hello"), .key = files.key}),
              HasSubstr("no PEM certificate in it"));
  EXPECT_THAT(Error({.cert = files.cert, .key = files.cert}),
              HasSubstr("--tls-key " + files.cert + ": no unencrypted PEM private key"));
  EXPECT_THAT(Error({.cert = files.cert, .key = files.key, .client_ca = files.key}),
              HasSubstr("--tls-client-ca " + files.key + ": no PEM certificate"));
}

TEST_F(TlsFilesTest, KeyOfAnotherCertificateIsRefused) {
  const TlsFiles mine = Files("server", server_);
  const TlsFiles other = Files("other", ca_.Issue({.common_name = "other"}));
  EXPECT_EQ(Error({.cert = mine.cert, .key = other.key}),
            "--tls-key " + other.key + " is not the private key of --tls-cert " + mine.cert +
                " (CN=backflow-server)");
}

TEST_F(TlsFilesTest, ExpiredCertificateIsRefusedAndAnEndingOneWarned) {
  const TlsFiles expired = Files("expired", ca_.Issue({.common_name = "old",
                                                       .not_before = -std::chrono::hours(48),
                                                       .not_after = -std::chrono::hours(1)}));
  EXPECT_THAT(Error(expired), HasSubstr("(CN=old) expired on "));
  EXPECT_THAT(Error(expired), HasSubstr("every client would refuse it"));

  const TlsFiles ending =
      Files("ending", ca_.Issue({.common_name = "ending", .not_after = std::chrono::hours(30)}));
  StatusOr<TlsReport> report = CheckTlsFiles(ending);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->warnings.size(), 1u);
  EXPECT_THAT(report->warnings[0], HasSubstr("expires on "));
  EXPECT_THAT(report->warnings[0], HasSubstr("rotate it"));

  const TlsFiles early =
      Files("early", ca_.Issue({.common_name = "early",
                                .not_before = std::chrono::hours(2),
                                .not_after = std::chrono::hours(24 * 60)}));
  report = CheckTlsFiles(early);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->warnings.size(), 1u) << ::testing::PrintToString(report->warnings);
  EXPECT_THAT(report->warnings[0], HasSubstr("is not valid before"));
}

}  // namespace
}  // namespace backflow::server::auth
