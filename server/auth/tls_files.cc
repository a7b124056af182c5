#include "server/auth/tls_files.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>
#include <memory>

#include "clients/common/flags.h"

namespace backflow::server::auth {
namespace {

struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using CertPtr = std::unique_ptr<X509, X509Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

BioPtr MemoryBio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Every certificate of a PEM file, in order.
StatusOr<std::vector<CertPtr>> ReadCertificates(std::string_view flag, const std::string& path) {
  BF_ASSIGN_OR_RETURN(const std::string text, clients::ReadFlagFile(flag, path));
  BioPtr bio = MemoryBio(text);
  std::vector<CertPtr> certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certs.emplace_back(cert);
  }
  ERR_clear_error();  // the read that ended the loop
  if (certs.empty()) {
    return InvalidArgumentError(
        "--" + std::string(flag) + " " + path +
        ": no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)");
  }
  return certs;
}

StatusOr<KeyPtr> ReadKey(const std::string& path) {
  BF_ASSIGN_OR_RETURN(const std::string text, clients::ReadFlagFile("tls-key", path));
  BioPtr bio = MemoryBio(text);
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return InvalidArgumentError("--tls-key " + path +
                                ": no unencrypted PEM private key in it (expected -----BEGIN "
                                "PRIVATE KEY-----; the server cannot ask for a passphrase)");
  }
  return key;
}

std::chrono::system_clock::time_point ToTimePoint(const ASN1_TIME* time) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(time, &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string Subject(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

std::string Date(std::chrono::system_clock::time_point time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return text;
}

}  // namespace

StatusOr<TlsReport> CheckTlsFiles(const TlsFiles& files,
                                  std::chrono::system_clock::time_point now) {
  if (files.cert.empty() != files.key.empty()) {
    return InvalidArgumentError(files.cert.empty()
                                    ? "--tls-key needs --tls-cert (its certificate)"
                                    : "--tls-cert needs --tls-key (its private key)");
  }
  if (!files.enabled()) {
    if (files.mutual()) {
      return InvalidArgumentError(
          "--tls-client-ca needs --tls-cert and --tls-key: mutual TLS is TLS first");
    }
    return TlsReport{};
  }
  BF_ASSIGN_OR_RETURN(std::vector<CertPtr> chain, ReadCertificates("tls-cert", files.cert));
  BF_ASSIGN_OR_RETURN(KeyPtr key, ReadKey(files.key));
  X509* leaf = chain.front().get();
  if (X509_check_private_key(leaf, key.get()) != 1) {
    ERR_clear_error();
    return InvalidArgumentError("--tls-key " + files.key +
                                " is not the private key of --tls-cert " + files.cert + " (" +
                                Subject(leaf) + ")");
  }
  TlsReport report{.subject = Subject(leaf), .not_after = ToTimePoint(X509_get0_notAfter(leaf))};
  if (report.not_after <= now) {
    return InvalidArgumentError("--tls-cert " + files.cert + " (" + report.subject +
                                ") expired on " + Date(report.not_after) +
                                "; every client would refuse it");
  }
  const auto not_before = ToTimePoint(X509_get0_notBefore(leaf));
  if (not_before > now) {
    report.warnings.push_back("--tls-cert " + files.cert + " is not valid before " +
                              Date(not_before) + " (is this machine's clock right?)");
  }
  if (report.not_after - now < std::chrono::hours(24 * 7)) {
    report.warnings.push_back("--tls-cert " + files.cert + " expires on " + Date(report.not_after) +
                              ": rotate it (the server re-reads it)");
  }
  if (files.mutual()) {
    BF_RETURN_IF_ERROR(ReadCertificates("tls-client-ca", files.client_ca).status());
  }
  return report;
}

}  // namespace backflow::server::auth
