#pragma once
// One TLS connection over memory BIOs: ciphertext goes in with feed() and comes out with
// output(); the socket stays libuv's. TcpStream owns one once a session switches to TLS.
// Loop thread only.

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pooler/base/result.h"
#include "pooler/net/tls_context.h"

struct ssl_st;
struct bio_st;

namespace pooler::net {

class TlsSession {
 public:
  // A server-side session (pgmux accepting a client), or a client-side one (pgmux to
  // PostgreSQL). `verify_host`: the name or IP the server certificate must carry (empty:
  // no host check; the chain is checked when the context has a CA).
  static Result<std::unique_ptr<TlsSession>> make(const TlsContext& context,
                                                  const std::string& verify_host = {});
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Ciphertext received from the peer.
  void feed(std::span<const std::byte> ciphertext);
  // Advances the handshake: true when finished, false when it needs more input.
  [[nodiscard]] Result<bool> handshake();
  bool handshake_done() const { return done_; }

  struct ReadResult {
    std::size_t size = 0;  // plaintext bytes placed in the buffer; 0 = needs more input
    bool closed = false;   // the peer sent close_notify
  };
  // Decrypts into `buffer` as much as the fed ciphertext allows (several records).
  [[nodiscard]] Result<ReadResult> read(std::span<std::byte> buffer);
  // Encrypts `plaintext`; the records wait in output(). Before the handshake has ended the
  // plaintext is held, and encrypted when it ends.
  [[nodiscard]] Result<void> write(std::span<const std::byte> plaintext);
  // Sends close_notify (into output()).
  void shutdown();

  // Ciphertext to send, valid until consume_output().
  std::span<const std::byte> output() const;
  void consume_output();

  // Checks the peer's certificate chain against `trust`; with `expected_cn`, also that
  // the certificate's common name is exactly that (PostgreSQL's clientcert=verify-full).
  [[nodiscard]] Result<void> verify_peer(const TlsTrust& trust, std::string_view expected_cn) const;
  bool has_peer_certificate() const;
  std::string_view alpn() const;     // "" when none was negotiated
  std::string_view version() const;  // "TLSv1.3"
  std::string_view cipher() const;

 private:
  TlsSession(ssl_st* ssl, bio_st* in, bio_st* out) : ssl_(ssl), in_(in), out_(out) {}
  Error error_for(int rc, std::string_view what);

  ssl_st* ssl_;
  bio_st* in_;   // owned by ssl_
  bio_st* out_;  // owned by ssl_
  bool done_ = false;
  std::vector<std::byte> held_;  // plaintext written before the handshake ended
};

}  // namespace pooler::net
