#pragma once
// A TCP (or Unix-socket) connection on one loop. The uv handle lives in a heap block that
// libuv frees in the close callback, so ~TcpStream may run at any time; late callbacks
// see a cleared owner pointer. Loop thread only.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "pooler/base/result.h"
#include "pooler/net/loop.h"
#include "pooler/net/tls_session.h"
#include "pooler/net/transport.h"

struct uv_stream_s;

namespace pooler::net {

class TcpStream final : public Transport {
 public:
  // Above this many queued bytes the peer's reading should pause; below the low mark it resumes.
  static constexpr std::size_t kHighWater = 512 * 1024;
  static constexpr std::size_t kLowWater = 64 * 1024;

  TcpStream(Loop& loop, StreamEvents& events);
  ~TcpStream() override;
  TcpStream(const TcpStream&) = delete;
  TcpStream& operator=(const TcpStream&) = delete;

  // Accepts a pending connection from `server` and starts reading.
  [[nodiscard]] Result<void> accept_from(uv_stream_s* server);
  // Connects to host:port (numeric address or name resolved synchronously at first use is
  // avoided: `host` must be an IP literal) or, when host starts with '/', to the Unix
  // socket host/.s.PGSQL.port. StreamEvents::on_connected or on_error follows.
  [[nodiscard]] Result<void> connect(const std::string& host, std::uint16_t port);

  void write(std::span<const std::byte> bytes) override;
  std::size_t queued_bytes() const override { return queued_; }
  void pause_reading() override;
  void resume_reading() override;
  void close() override;

  // Switches the stream to TLS from the next byte on: reads are decrypted, writes encrypted
  // (held until the handshake ends). `received` is ciphertext already read (a direct TLS
  // ClientHello). A client-side session sends its ClientHello at once. on_tls_ready()
  // follows the handshake, or on_error().
  void start_tls(std::unique_ptr<TlsSession> tls, std::span<const std::byte> received = {});
  const TlsSession* tls() const { return tls_.get(); }

  bool is_open() const { return block_ != nullptr; }
  bool reading() const { return reading_; }
  std::string peer() const;  // "ip:port", or "unix" for Unix sockets
  int fd() const;

 public:
  struct Block;

 private:
  struct WriteReq;
  void start_reading();
  void on_read(long nread);
  void on_write_done(std::size_t bytes, int status);
  void write_raw(std::span<const std::byte> bytes);
  void on_tls_read(std::span<const std::byte> ciphertext);
  bool flush_tls();  // false when the stream closed meanwhile

  Loop& loop_;
  StreamEvents& events_;
  Block* block_ = nullptr;
  std::size_t queued_ = 0;
  // Null for plaintext streams: their data path pays one pointer test per read and write.
  std::unique_ptr<TlsSession> tls_;
  bool reading_ = false;
  bool want_read_ = false;
  bool above_high_water_ = false;
};

// The address part of a peer() string: "10.0.0.7:51234" -> "10.0.0.7", "[::1]:5" -> "::1",
// "unix" -> "unix".
std::string_view peer_address(std::string_view peer);

// Applies TCP_NODELAY and keepalive to a connected TCP socket.
void tune_socket(int fd);

}  // namespace pooler::net
