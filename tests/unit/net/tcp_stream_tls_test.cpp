// TcpStream switching to TLS mid-stream on a real libuv loop over loopback TCP, as
// pgmux does after an SSLRequest: plaintext first, then start_tls on both ends, writes
// made before the handshake ends, 2 MB echoed back, and a failed verification.

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>

#include "pooler/net/loop.h"
#include "pooler/net/tcp_listener.h"
#include "pooler/net/tcp_stream.h"
#include "pooler/net/timer.h"
#include "pooler/net/tls_session.h"
#include "tests/unit/net/test_pki.h"

namespace pooler::net {
namespace {

using namespace std::chrono_literals;
using test_pki::pki;

std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// One end of the connection: records what arrives; the test reacts through `on_data`.
struct Endpoint final : StreamEvents {
  explicit Endpoint(Loop& loop) : stream(loop, *this) {}
  void on_connected() override {
    if (on_connect) {
      on_connect();
    }
  }
  void on_read(std::span<const std::byte> bytes) override {
    received.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (on_data) {
      on_data();
    }
  }
  void on_eof() override { eof = true; }
  void on_error(const Error& e) override {
    error = e.message;
    if (on_fail) {
      on_fail();
    }
  }
  void on_tls_ready() override {
    tls_ready = true;
    if (on_ready) {
      on_ready();
    }
  }

  TcpStream stream;
  std::string received;
  std::string error;
  bool eof = false;
  bool tls_ready = false;
  std::function<void()> on_connect, on_data, on_ready, on_fail;
};

class TcpStreamTlsTest : public ::testing::Test {
 protected:
  // Connects a client to a server on loopback, then runs the loop until stop() or 10 s.
  void run(Endpoint& server, Endpoint& client) {
    TcpListener listener(loop_, [&](uv_stream_s* s) { ASSERT_TRUE(server.stream.accept_from(s)); });
    ASSERT_TRUE(listener.listen("127.0.0.1", 0));
    ASSERT_TRUE(client.stream.connect("127.0.0.1", listener.port()));
    Timer guard(loop_, [this] { loop_.stop(); });
    guard.start(10s);
    loop_.run();
    listener.close();
    server.stream.close();
    client.stream.close();
    guard.stop();
  }
  void TearDown() override {
    loop_.close_internal_handles();
    loop_.run();  // the close callbacks free the handles
  }

  std::unique_ptr<TlsSession> server_session() {
    TlsServerOptions o;
    o.cert_file = pki().path("server.crt");
    o.key_file = pki().path("server.key");
    auto ctx = TlsContext::make_server(o);
    EXPECT_TRUE(ctx);
    return std::move(*TlsSession::make(**ctx));
  }
  std::unique_ptr<TlsSession> client_session(const std::string& ca) {
    auto ctx = TlsContext::make_client(TlsClientOptions{pki().path(ca), "", ""});
    EXPECT_TRUE(ctx);
    return std::move(*TlsSession::make(**ctx, "127.0.0.1"));
  }

  Loop loop_;
};

// The SSLRequest dance, then 2 MB from the client (some written before its handshake
// ended) come back whole from the server's echo, through TLS both ways.
TEST_F(TcpStreamTlsTest, SwitchMidStreamAndEcho) {
  Endpoint server(loop_), client(loop_);
  std::string payload(2 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) {
    payload[i] = static_cast<char>(i % 251);
  }
  const std::string expected = "early;" + payload;
  client.on_connect = [&] { client.stream.write(bytes_of("SSL?")); };
  server.on_data = [&] {
    if (server.stream.tls() == nullptr) {
      ASSERT_EQ(server.received, "SSL?");
      server.received.clear();
      server.stream.write(bytes_of("S"));  // the last plaintext byte
      server.stream.start_tls(server_session());
      return;
    }
    // Echo: decrypted bytes go back encrypted.
    const std::string chunk = std::move(server.received);
    server.received.clear();
    server.stream.write(bytes_of(chunk));
  };
  client.on_data = [&] {
    if (client.stream.tls() == nullptr) {
      ASSERT_EQ(client.received, "S");
      client.received.clear();
      client.stream.start_tls(client_session("ca.crt"));
      client.stream.write(bytes_of("early;"));  // held until the handshake ends
      return;
    }
    if (client.received.size() >= expected.size()) {
      loop_.stop();
    }
  };
  client.on_ready = [&] { client.stream.write(bytes_of(payload)); };
  client.on_fail = server.on_fail = [&] { loop_.stop(); };
  run(server, client);
  EXPECT_EQ(client.error, "");
  EXPECT_EQ(server.error, "");
  EXPECT_TRUE(client.tls_ready);
  EXPECT_TRUE(server.tls_ready);
  EXPECT_EQ(client.received.size(), expected.size());
  EXPECT_TRUE(client.received == expected);
  EXPECT_EQ(client.stream.tls()->version(), "TLSv1.3");
}

// A server certificate from another CA: the client reports why, the server sees the
// handshake fail too; neither hangs.
TEST_F(TcpStreamTlsTest, VerificationFailureIsAnError) {
  Endpoint server(loop_), client(loop_);
  client.on_connect = [&] { client.stream.write(bytes_of("SSL?")); };
  server.on_data = [&] {
    if (server.stream.tls() == nullptr) {
      server.received.clear();
      server.stream.write(bytes_of("S"));
      server.stream.start_tls(server_session());
    }
  };
  client.on_data = [&] {
    if (client.stream.tls() == nullptr) {
      client.received.clear();
      client.stream.start_tls(client_session("other_ca.crt"));
    }
  };
  int failures = 0;
  client.on_fail = server.on_fail = [&] {
    if (++failures == 2) {
      loop_.stop();
    }
  };
  run(server, client);
  EXPECT_NE(client.error.find("certificate verify failed"), std::string::npos) << client.error;
  EXPECT_NE(server.error, "");
  EXPECT_FALSE(client.tls_ready);
}

}  // namespace
}  // namespace pooler::net
