#include "pooler/net/tls_session.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <memory>

namespace pooler::net {

Result<std::unique_ptr<TlsSession>> TlsSession::make(const TlsContext& context,
                                                     const std::string& verify_host) {
  ERR_clear_error();
  SSL* ssl = SSL_new(context.raw());
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  if (ssl == nullptr || in == nullptr || out == nullptr) {
    SSL_free(ssl);
    BIO_free(in);
    BIO_free(out);
    return fail(Errc::Internal, "cannot create a TLS session: " + tls_error_text("out of memory"));
  }
  // An empty memory BIO reports "retry" instead of end of file.
  BIO_set_mem_eof_return(in, -1);
  BIO_set_mem_eof_return(out, -1);
  SSL_set_bio(ssl, in, out);
  std::unique_ptr<TlsSession> session(new TlsSession(ssl, in, out));
  if (context.is_server()) {
    SSL_set_accept_state(ssl);
    return session;
  }
  SSL_set_connect_state(ssl);
  if (!verify_host.empty()) {
    // An IP literal is matched against the certificate's IP addresses, a name against its
    // DNS names; only names go into SNI.
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, verify_host.c_str()) != 1) {
      ERR_clear_error();
      SSL_set_tlsext_host_name(ssl, verify_host.c_str());
      if (SSL_set1_host(ssl, verify_host.c_str()) != 1) {
        return fail(Errc::Internal, "cannot set the host name to verify");
      }
    }
  }
  return session;
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

void TlsSession::feed(std::span<const std::byte> ciphertext) {
  // A memory BIO grows as needed; the write cannot fail short of memory exhaustion.
  BIO_write(in_, ciphertext.data(), static_cast<int>(ciphertext.size()));
}

Error TlsSession::error_for(int rc, std::string_view what) {
  const int code = SSL_get_error(ssl_, rc);
  std::string text;
  if (code == SSL_ERROR_SSL) {
    const long verify = SSL_get_verify_result(ssl_);
    text = verify != X509_V_OK && !SSL_is_server(ssl_)
               ? std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify)
               : tls_error_text("protocol error");
  } else if (code == SSL_ERROR_SYSCALL || code == SSL_ERROR_ZERO_RETURN) {
    text = "unexpected end of stream";
  } else {
    text = tls_error_text("error " + std::to_string(code));
  }
  ERR_clear_error();
  return Error{Errc::Io, std::string(what) + ": " + text, {}};
}

Result<bool> TlsSession::handshake() {
  if (done_) {
    return true;
  }
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    done_ = true;
    if (!held_.empty()) {
      std::vector<std::byte> held = std::move(held_);
      held_.clear();
      if (auto ok = write(held); !ok) {
        return std::unexpected(ok.error());
      }
    }
    return true;
  }
  const int code = SSL_get_error(ssl_, rc);
  if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
    return false;
  }
  return std::unexpected(error_for(rc, "TLS handshake failed"));
}

Result<TlsSession::ReadResult> TlsSession::read(std::span<std::byte> buffer) {
  ReadResult result;
  ERR_clear_error();
  while (result.size < buffer.size()) {
    std::size_t n = 0;
    const int rc = SSL_read_ex(ssl_, buffer.data() + result.size, buffer.size() - result.size, &n);
    if (rc == 1) {
      result.size += n;
      continue;
    }
    const int code = SSL_get_error(ssl_, rc);
    if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
      break;
    }
    if (code == SSL_ERROR_ZERO_RETURN) {
      result.closed = true;
      break;
    }
    return std::unexpected(error_for(rc, "TLS read failed"));
  }
  return result;
}

Result<void> TlsSession::write(std::span<const std::byte> plaintext) {
  if (!done_) {
    held_.insert(held_.end(), plaintext.begin(), plaintext.end());
    return {};
  }
  ERR_clear_error();
  std::size_t n = 0;
  // With a memory BIO the whole buffer is taken at once (split into records).
  if (SSL_write_ex(ssl_, plaintext.data(), plaintext.size(), &n) != 1 || n != plaintext.size()) {
    return std::unexpected(error_for(0, "TLS write failed"));
  }
  return {};
}

void TlsSession::shutdown() {
  if (done_) {
    ERR_clear_error();
    SSL_shutdown(ssl_);
    ERR_clear_error();
  }
}

std::span<const std::byte> TlsSession::output() const {
  char* data = nullptr;
  const long size = BIO_get_mem_data(out_, &data);
  if (size <= 0) {
    return {};
  }
  return {reinterpret_cast<const std::byte*>(data), static_cast<std::size_t>(size)};
}

void TlsSession::consume_output() { (void)BIO_reset(out_); }

bool TlsSession::has_peer_certificate() const { return SSL_get0_peer_certificate(ssl_) != nullptr; }

Result<void> TlsSession::verify_peer(const TlsTrust& trust, std::string_view expected_cn) const {
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert == nullptr) {
    return fail(Errc::Auth, "connection requires a valid client certificate");
  }
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(),
                                                                      X509_STORE_CTX_free);
  // On the server side the chain the client sent excludes its own certificate.
  if (ctx == nullptr ||
      X509_STORE_CTX_init(ctx.get(), trust.raw(), cert, SSL_get_peer_cert_chain(ssl_)) != 1) {
    ERR_clear_error();
    return fail(Errc::Internal, "cannot verify the client certificate");
  }
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return fail(Errc::Auth,
                std::string("certificate verify failed: ") + X509_verify_cert_error_string(err));
  }
  if (!expected_cn.empty()) {
    char cn[256] = {};
    const int len =
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    if (len < 0 || std::string_view(cn, static_cast<std::size_t>(len)) != expected_cn) {
      ERR_clear_error();
      return fail(Errc::Auth, "certificate authentication failed for user \"" +
                                  std::string(expected_cn) + "\"");
    }
  }
  return {};
}

std::string_view TlsSession::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  return {reinterpret_cast<const char*>(data), len};
}

std::string_view TlsSession::version() const { return SSL_get_version(ssl_); }

std::string_view TlsSession::cipher() const {
  const char* name = SSL_get_cipher_name(ssl_);
  return name != nullptr ? name : "";
}

}  // namespace pooler::net
