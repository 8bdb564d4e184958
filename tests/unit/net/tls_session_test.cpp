// TlsSession: two in-process endpoints joined by hand (no sockets), so every byte that
// crosses is under the test's control: split delivery, large transfers, verification.

#include "pooler/net/tls_session.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/unit/net/test_pki.h"

namespace pooler::net {
namespace {

using test_pki::pki;

std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// Moves what `from` has to send into `to`, `chunk` bytes at a time.
void pump(TlsSession& from, TlsSession& to, std::size_t chunk = 1 << 20) {
  auto out = from.output();
  std::vector<std::byte> copy(out.begin(), out.end());
  from.consume_output();
  for (std::size_t at = 0; at < copy.size(); at += chunk) {
    to.feed(std::span(copy).subspan(at, std::min(chunk, copy.size() - at)));
  }
}

struct Pair {
  std::unique_ptr<TlsSession> server;
  std::unique_ptr<TlsSession> client;
};

TlsServerOptions server_options() {
  TlsServerOptions o;
  o.cert_file = pki().path("server.crt");
  o.key_file = pki().path("server.key");
  return o;
}

Pair tls_pair(const TlsServerOptions& so, const TlsClientOptions& co, const std::string& host) {
  auto server_ctx = TlsContext::make_server(so);
  EXPECT_TRUE(server_ctx) << server_ctx.error().message;
  auto client_ctx = TlsContext::make_client(co);
  EXPECT_TRUE(client_ctx) << client_ctx.error().message;
  auto server = TlsSession::make(**server_ctx);
  auto client = TlsSession::make(**client_ctx, host);
  EXPECT_TRUE(server && client);
  return Pair{std::move(*server), std::move(*client)};
}

// Runs the handshake to its end; the first error of either side, or "" when both finished.
std::string handshake(Pair& p, std::size_t chunk = 1 << 20) {
  for (int round = 0; round < 20; ++round) {
    auto c = p.client->handshake();
    pump(*p.client, *p.server, chunk);
    if (!c) {
      return "client: " + c.error().message;
    }
    auto s = p.server->handshake();
    pump(*p.server, *p.client, chunk);
    if (!s) {
      return "server: " + s.error().message;
    }
    if (*c && *s) {
      return "";
    }
  }
  return "handshake did not finish";
}

std::string read_all(TlsSession& s) {
  std::string text;
  std::vector<std::byte> buf(64 * 1024);
  for (;;) {
    auto got = s.read(buf);
    EXPECT_TRUE(got) << got.error().message;
    if (!got || got->size == 0) {
      return text;
    }
    text.append(reinterpret_cast<const char*>(buf.data()), got->size);
  }
}

// A client that checks the CA and the host name reaches a server, and bytes cross both ways.
TEST(TlsSessionTest, HandshakeThenDataBothWays) {
  Pair p = tls_pair(server_options(), TlsClientOptions{pki().path("ca.crt"), "", ""}, "localhost");
  ASSERT_EQ(handshake(p), "");
  EXPECT_EQ(p.client->version(), "TLSv1.3");
  ASSERT_TRUE(p.client->write(bytes_of("hello server")));
  pump(*p.client, *p.server);
  EXPECT_EQ(read_all(*p.server), "hello server");
  ASSERT_TRUE(p.server->write(bytes_of("hello client")));
  pump(*p.server, *p.client);
  EXPECT_EQ(read_all(*p.client), "hello client");
}

// Ciphertext delivered a byte at a time (handshake and data) still gives the same bytes.
TEST(TlsSessionTest, ByteByByteDelivery) {
  Pair p = tls_pair(server_options(), TlsClientOptions{pki().path("ca.crt"), "", ""}, "127.0.0.1");
  ASSERT_EQ(handshake(p, 1), "");
  ASSERT_TRUE(p.client->write(bytes_of("split into pieces")));
  pump(*p.client, *p.server, 1);
  EXPECT_EQ(read_all(*p.server), "split into pieces");
}

// 3 MB in one write arrive whole, across many records and reads.
TEST(TlsSessionTest, LargeTransfer) {
  Pair p = tls_pair(server_options(), TlsClientOptions{}, "");
  ASSERT_EQ(handshake(p), "");
  std::string big(3 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) {
    big[i] = static_cast<char>(i * 7 + i / 4096);
  }
  ASSERT_TRUE(p.server->write(bytes_of(big)));
  pump(*p.server, *p.client, 60000);
  EXPECT_TRUE(read_all(*p.client) == big);
}

// A certificate for another host name, or from another CA, fails the client's handshake
// with the reason.
TEST(TlsSessionTest, VerificationFailures) {
  Pair wrong_host =
      tls_pair(server_options(), TlsClientOptions{pki().path("ca.crt"), "", ""}, "db.example");
  EXPECT_NE(handshake(wrong_host).find("certificate verify failed"), std::string::npos);
  Pair wrong_ca =
      tls_pair(server_options(), TlsClientOptions{pki().path("other_ca.crt"), "", ""}, "");
  const std::string error = handshake(wrong_ca);
  EXPECT_NE(error.find("certificate verify failed"), std::string::npos) << error;
}

// TLS 1.2 and later by default: a client that offers only TLS 1.1 is refused.
TEST(TlsSessionTest, OldProtocolRefused) {
  auto server_ctx = TlsContext::make_server(server_options());
  auto client_ctx = TlsContext::make_client({});
  ASSERT_TRUE(server_ctx && client_ctx);
  SSL_CTX_set_security_level((*client_ctx)->raw(), 0);
  SSL_CTX_set_min_proto_version((*client_ctx)->raw(), TLS1_VERSION);
  SSL_CTX_set_max_proto_version((*client_ctx)->raw(), TLS1_1_VERSION);
  Pair p{std::move(*TlsSession::make(**server_ctx)), std::move(*TlsSession::make(**client_ctx))};
  EXPECT_NE(handshake(p), "");
}

// A client certificate is checked against a trust store after the handshake, and with
// verify-full its CN must be the user name.
TEST(TlsSessionTest, ClientCertificateVerifiedAfterHandshake) {
  TlsServerOptions so = server_options();
  so.ca_file = pki().path("ca.crt");
  so.request_client_cert = true;
  TlsClientOptions co{"", pki().path("client.crt"), pki().path("client.key")};
  Pair p = tls_pair(so, co, "");
  ASSERT_EQ(handshake(p), "");
  auto trust = TlsTrust::load(pki().path("ca.crt"));
  auto other = TlsTrust::load(pki().path("other_ca.crt"));
  ASSERT_TRUE(trust && other);
  EXPECT_TRUE(p.server->verify_peer(**trust, ""));
  EXPECT_TRUE(p.server->verify_peer(**trust, "app"));
  auto wrong_user = p.server->verify_peer(**trust, "bob");
  ASSERT_FALSE(wrong_user);
  EXPECT_NE(wrong_user.error().message.find("certificate authentication failed"),
            std::string::npos);
  auto wrong_ca = p.server->verify_peer(**other, "");
  ASSERT_FALSE(wrong_ca);
  EXPECT_NE(wrong_ca.error().message.find("certificate verify failed"), std::string::npos);

  Pair anonymous = tls_pair(so, TlsClientOptions{}, "");
  ASSERT_EQ(handshake(anonymous), "");
  auto none = anonymous.server->verify_peer(**trust, "");
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("requires a valid client certificate"), std::string::npos);
}

// close_notify from the peer reads as a clean end of stream.
TEST(TlsSessionTest, CloseNotifyIsEndOfStream) {
  Pair p = tls_pair(server_options(), TlsClientOptions{}, "");
  ASSERT_EQ(handshake(p), "");
  p.client->shutdown();
  pump(*p.client, *p.server);
  std::vector<std::byte> buf(1024);
  auto got = p.server->read(buf);
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->closed);
}

// Files that do not exist or do not match are configuration errors naming the file.
TEST(TlsContextTest, BadFilesAreConfigErrors) {
  TlsServerOptions missing = server_options();
  missing.cert_file = "/nonexistent/server.crt";
  auto a = TlsContext::make_server(missing);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, Errc::Config);
  EXPECT_NE(a.error().message.find("/nonexistent/server.crt"), std::string::npos);

  TlsServerOptions mismatch = server_options();
  mismatch.key_file = pki().path("client.key");
  auto b = TlsContext::make_server(mismatch);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message.find("client.key"), std::string::npos) << b.error().message;
  EXPECT_NE(b.error().message.find("mismatch"), std::string::npos) << b.error().message;

  TlsServerOptions ciphers = server_options();
  ciphers.ciphers = "NO-SUCH-CIPHER";
  EXPECT_FALSE(TlsContext::make_server(ciphers));
}

}  // namespace
}  // namespace pooler::net
