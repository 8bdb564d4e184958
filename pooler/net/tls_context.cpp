#include "pooler/net/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstring>
#include <utility>

namespace pooler::net {
namespace {

// PostgreSQL 17 clients that open with TLS directly name this protocol (ALPN); the
// SSLRequest path may name it too. Wire format: a length byte, then the name.
constexpr unsigned char kAlpnPostgres[] = {10, 'p', 'o', 's', 't', 'g', 'r', 'e', 's', 'q', 'l'};

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kAlpnPostgres, sizeof kAlpnPostgres, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    // As PostgreSQL: a client that offers ALPN must offer "postgresql".
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

Error config_error(std::string_view what, const std::string& file) {
  return Error{Errc::Config,
               std::string(what) + " \"" + file + "\": " + tls_error_text("unknown error")};
}

Result<void> load_cert_and_key(SSL_CTX* ctx, const std::string& cert, const std::string& key) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    return std::unexpected(config_error("cannot load certificate", cert));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return std::unexpected(config_error("cannot load private key", key));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return fail(Errc::Config,
                "private key \"" + key + "\" does not match certificate \"" + cert + "\"");
  }
  return {};
}

struct CtxOwner {
  SSL_CTX* ctx;
  ~CtxOwner() { SSL_CTX_free(ctx); }
  SSL_CTX* release() { return std::exchange(ctx, nullptr); }
};

}  // namespace

std::string tls_error_text(std::string_view fallback) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) {
    return std::string(fallback);
  }
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  // "error:0A000086:SSL routines::certificate verify failed" -> keep the reason only.
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? std::string(reason) : std::string(text);
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

Result<std::shared_ptr<const TlsContext>> TlsContext::make_server(const TlsServerOptions& options) {
  ERR_clear_error();
  CtxOwner owner{SSL_CTX_new(TLS_server_method())};
  SSL_CTX* ctx = owner.ctx;
  if (ctx == nullptr) {
    return fail(Errc::Internal, "SSL_CTX_new: " + tls_error_text("out of memory"));
  }
  if (auto ok = load_cert_and_key(ctx, options.cert_file, options.key_file); !ok) {
    return std::unexpected(ok.error());
  }
  SSL_CTX_set_min_proto_version(ctx, options.min_protocol);
  SSL_CTX_set_max_proto_version(ctx, options.max_protocol);
  if (SSL_CTX_set_cipher_list(ctx, options.ciphers.c_str()) != 1) {
    return fail(Errc::Config, "client_tls_ciphers \"" + options.ciphers +
                                  "\": " + tls_error_text("no cipher matches"));
  }
  // Idle clients are most clients: give back the 34 KiB of record buffers between reads.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx, 0);  // as PostgreSQL: no resumption
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  if (!options.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1) {
      return std::unexpected(config_error("cannot load CA file", options.ca_file));
    }
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.ca_file.c_str())) {
      SSL_CTX_set_client_CA_list(ctx, names);
    }
  }
  if (options.request_client_cert) {
    // Ask for a certificate but let the handshake finish whatever comes: the database the
    // client names in its startup packet decides which CA must have signed it, and a
    // missing or bad certificate then gets a PostgreSQL error instead of a bare TLS alert.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
  }
  return std::shared_ptr<const TlsContext>(new TlsContext(owner.release(), true));
}

Result<std::shared_ptr<const TlsContext>> TlsContext::make_client(const TlsClientOptions& options) {
  ERR_clear_error();
  CtxOwner owner{SSL_CTX_new(TLS_client_method())};
  SSL_CTX* ctx = owner.ctx;
  if (ctx == nullptr) {
    return fail(Errc::Internal, "SSL_CTX_new: " + tls_error_text("out of memory"));
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  if (!options.cert_file.empty()) {
    if (auto ok = load_cert_and_key(ctx, options.cert_file, options.key_file); !ok) {
      return std::unexpected(ok.error());
    }
  }
  if (!options.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1) {
      return std::unexpected(config_error("cannot load CA file", options.ca_file));
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  return std::shared_ptr<const TlsContext>(new TlsContext(owner.release(), false));
}

TlsTrust::~TlsTrust() { X509_STORE_free(store_); }

Result<std::shared_ptr<const TlsTrust>> TlsTrust::load(const std::string& ca_file) {
  ERR_clear_error();
  X509_STORE* store = X509_STORE_new();
  if (store == nullptr) {
    return fail(Errc::Internal, "X509_STORE_new: out of memory");
  }
  std::shared_ptr<const TlsTrust> trust(new TlsTrust(store));
  if (X509_STORE_load_file(store, ca_file.c_str()) != 1) {
    return std::unexpected(config_error("cannot load CA file", ca_file));
  }
  return trust;
}

}  // namespace pooler::net
