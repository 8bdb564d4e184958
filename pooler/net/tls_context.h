#pragma once
// OpenSSL contexts, built once per configuration (startup and each SIGHUP) and shared by
// every connection opened under it. A connection's SSL object holds its own reference to
// the SSL_CTX, so a reload gives new connections the new certificates while the open ones
// keep theirs. Immutable after construction: any thread.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "pooler/base/result.h"

struct ssl_ctx_st;
struct x509_store_st;

namespace pooler::net {

// pgmux as the TLS server, for its clients.
struct TlsServerOptions {
  std::string cert_file;
  std::string key_file;
  std::string ca_file;                  // client CAs, named in the certificate request
  bool request_client_cert = false;     // checked after startup with TlsTrust
  std::uint16_t min_protocol = 0x0303;  // TLS 1.2, as on the wire
  std::uint16_t max_protocol = 0x0304;  // TLS 1.3
  std::string ciphers = "HIGH:!aNULL:!MD5:!3DES:!RC4";  // TLS 1.2 list; 1.3 uses OpenSSL's
};

// pgmux as the TLS client, toward PostgreSQL.
struct TlsClientOptions {
  std::string ca_file;    // empty: the server certificate is not checked
  std::string cert_file;  // optional client certificate
  std::string key_file;
};

class TlsContext {
 public:
  static Result<std::shared_ptr<const TlsContext>> make_server(const TlsServerOptions& options);
  static Result<std::shared_ptr<const TlsContext>> make_client(const TlsClientOptions& options);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  ssl_ctx_st* raw() const { return ctx_; }
  bool is_server() const { return server_; }

 private:
  TlsContext(ssl_ctx_st* ctx, bool server) : ctx_(ctx), server_(server) {}
  ssl_ctx_st* ctx_;
  bool server_;
};

// A set of trusted CA certificates, for checking a client certificate after startup
// (each database may name its own client_tls_ca_file).
class TlsTrust {
 public:
  static Result<std::shared_ptr<const TlsTrust>> load(const std::string& ca_file);
  ~TlsTrust();
  TlsTrust(const TlsTrust&) = delete;
  TlsTrust& operator=(const TlsTrust&) = delete;

  x509_store_st* raw() const { return store_; }

 private:
  explicit TlsTrust(x509_store_st* store) : store_(store) {}
  x509_store_st* store_;
};

// Every context one configuration asks for, by database name. Built by app::build_tls.
struct TlsSetup {
  std::shared_ptr<const TlsContext> for_clients;  // null: SSLRequest is answered 'N'
  // The CAs a client certificate must chain to, where client_tls_sslmode is verify-*.
  std::map<std::string, std::shared_ptr<const TlsTrust>, std::less<>> client_trust;
  std::shared_ptr<const TlsTrust> admin_client_trust;  // for the admin console ([pgmux])
  // Toward PostgreSQL, where server_tls_sslmode is not disable.
  std::map<std::string, std::shared_ptr<const TlsContext>, std::less<>> for_servers;
};

// The newest OpenSSL error of this thread as text (and clears the queue), or `fallback`.
std::string tls_error_text(std::string_view fallback);

}  // namespace pooler::net
