#include "tests/testing/test_certs.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace backflow::testing {
namespace {

struct Deleter {
  void operator()(X509* x) const { X509_free(x); }
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
  void operator()(BIO* b) const { BIO_free(b); }
  void operator()(X509_EXTENSION* e) const { X509_EXTENSION_free(e); }
};
using CertPtr = std::unique_ptr<X509, Deleter>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter>;

void Check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test certificate: ") + what + " failed");
}

KeyPtr NewKey() {
  KeyPtr key(EVP_EC_gen("P-256"));
  Check(key != nullptr, "EC key generation");
  return key;
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX context;
  X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
  std::unique_ptr<X509_EXTENSION, Deleter> extension(
      X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str()));
  Check(extension != nullptr && X509_add_ext(cert, extension.get(), -1) == 1, value.c_str());
}

std::string AltNames(const std::vector<std::string>& hosts) {
  std::string names;
  for (const std::string& host : hosts) {
    unsigned char address[16];
    const bool ip = inet_pton(AF_INET, host.c_str(), address) == 1 ||
                    inet_pton(AF_INET6, host.c_str(), address) == 1;
    names += (names.empty() ? "" : ",") + std::string(ip ? "IP:" : "DNS:") + host;
  }
  return names;
}

// An unsigned certificate for `key` named `common_name`, issued by `issuer` (null: self-issued).
CertPtr NewCert(const std::string& common_name, EVP_PKEY* key, X509* issuer,
                std::chrono::seconds not_before, std::chrono::seconds not_after) {
  CertPtr cert(X509_new());
  Check(cert != nullptr && X509_set_version(cert.get(), 2) == 1, "X509_new");
  unsigned char serial[8];
  Check(RAND_bytes(serial, sizeof(serial)) == 1, "RAND_bytes");
  serial[0] &= 0x7f;  // positive
  BIGNUM* number = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(number, X509_get_serialNumber(cert.get()));
  BN_free(number);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(not_before.count()));
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(not_after.count()));
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
  Check(X509_set_pubkey(cert.get(), key) == 1, "X509_set_pubkey");
  return cert;
}

void Sign(X509* cert, EVP_PKEY* issuer_key) {
  Check(X509_sign(cert, issuer_key, EVP_sha256()) > 0, "X509_sign");
}

std::string CertPem(X509* cert) {
  std::unique_ptr<BIO, Deleter> bio(BIO_new(BIO_s_mem()));
  Check(PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

std::string KeyPem(EVP_PKEY* key) {
  std::unique_ptr<BIO, Deleter> bio(BIO_new(BIO_s_mem()));
  Check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

}  // namespace

struct TestCa::Keys {
  KeyPtr key;
  CertPtr cert;
};

TestCa::TestCa(const std::string& name) : keys_(std::make_unique<Keys>()) {
  keys_->key = NewKey();
  keys_->cert =
      NewCert(name, keys_->key.get(), nullptr, -std::chrono::hours(1), std::chrono::hours(24 * 30));
  X509* cert = keys_->cert.get();
  AddExtension(cert, cert, NID_basic_constraints, "critical,CA:TRUE");
  AddExtension(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExtension(cert, cert, NID_subject_key_identifier, "hash");
  Sign(cert, keys_->key.get());
  self_ = {CertPem(cert), KeyPem(keys_->key.get())};
}

TestCa::~TestCa() = default;

TestCert TestCa::Issue(const CertSpec& spec) const {
  KeyPtr key = NewKey();
  CertPtr cert =
      NewCert(spec.common_name, key.get(), keys_->cert.get(), spec.not_before, spec.not_after);
  X509* issuer = keys_->cert.get();
  AddExtension(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(cert.get(), issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
  AddExtension(cert.get(), issuer, NID_ext_key_usage, spec.client ? "clientAuth" : "serverAuth");
  AddExtension(cert.get(), issuer, NID_authority_key_identifier, "keyid:always");
  if (!spec.hosts.empty()) {
    AddExtension(cert.get(), issuer, NID_subject_alt_name, AltNames(spec.hosts));
  }
  Sign(cert.get(), keys_->key.get());
  return {CertPem(cert.get()), KeyPem(key.get())};
}

void WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".new";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << text;
    Check(out.good(), "writing a test file");
  }
  Check(std::rename(temporary.c_str(), path.c_str()) == 0, "rename");
}

}  // namespace backflow::testing
