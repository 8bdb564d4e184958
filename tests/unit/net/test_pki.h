#pragma once
// A throwaway PKI for the TLS unit tests: a CA, another CA, and certificates the first
// signed ("server" for localhost / 127.0.0.1, "client" with CN=app), as PEM files in a
// temp dir, made with the OpenSSL API.

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace pooler::net::test_pki {

// A CA and certificates it signed, as PEM files in a temp dir (made with the OpenSSL API).
class Pki {
 public:
  Pki() {
    char templ[] = "/tmp/pgmux-tls-unit-XXXXXX";
    dir_ = ::mkdtemp(templ);
    ca_key_ = EVP_EC_gen("P-256");
    ca_ = make_cert("pgmux unit CA", ca_key_, nullptr, nullptr, true, "");
    save_cert(ca_, "ca.crt");
    other_key_ = EVP_EC_gen("P-256");
    other_ = make_cert("other CA", other_key_, nullptr, nullptr, true, "");
    save_cert(other_, "other_ca.crt");
    issue("server", "localhost", "DNS:localhost,IP:127.0.0.1");
    issue("client", "app", "");
  }
  ~Pki() {
    X509_free(ca_);
    X509_free(other_);
    EVP_PKEY_free(ca_key_);
    EVP_PKEY_free(other_key_);
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  X509* make_cert(const std::string& cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
                  bool is_ca, const std::string& san) {
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), ++serial_);
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert, issuer != nullptr ? X509_get_subject_name(issuer) : name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert, cert, nullptr, nullptr, 0);
    auto add = [&](int nid, const char* value) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
      X509_add_ext(cert, ext, -1);
      X509_EXTENSION_free(ext);
    };
    add(NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (!san.empty()) {
      add(NID_subject_alt_name, san.c_str());
    }
    X509_sign(cert, issuer_key != nullptr ? issuer_key : key, EVP_sha256());
    return cert;
  }
  void save_cert(X509* cert, const std::string& file) {
    std::FILE* f = std::fopen(path(file).c_str(), "w");
    PEM_write_X509(f, cert);
    std::fclose(f);
  }
  void issue(const std::string& name, const std::string& cn, const std::string& san) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = make_cert(cn, key, ca_, ca_key_, false, san);
    save_cert(cert, name + ".crt");
    std::FILE* f = std::fopen(path(name + ".key").c_str(), "w");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(cert);
    EVP_PKEY_free(key);
  }

  std::string dir_;
  long serial_ = 0;
  EVP_PKEY* ca_key_ = nullptr;
  EVP_PKEY* other_key_ = nullptr;
  X509* ca_ = nullptr;
  X509* other_ = nullptr;
};

inline const Pki& pki() {
  static Pki instance;
  return instance;
}

}  // namespace pooler::net::test_pki
