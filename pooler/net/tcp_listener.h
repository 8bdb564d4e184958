#pragma once
// A listening socket on one loop, opened with SO_REUSEPORT so that every worker (and a
// second pgmux during a rolling restart) can listen on the same address. Loop thread only.

#include <cstdint>
#include <functional>
#include <string>

#include "pooler/base/result.h"
#include "pooler/net/loop.h"

struct uv_stream_s;

namespace pooler::net {

class TcpListener {
 public:
  // Called for each pending connection; the callee accepts it with TcpStream::accept_from.
  using OnConnection = std::function<void(uv_stream_s* server)>;

  TcpListener(Loop& loop, OnConnection on_connection);
  ~TcpListener();
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  // Binds host:port (port 0 = any) and listens. Startup only.
  [[nodiscard]] Result<void> listen(const std::string& host, std::uint16_t port, int backlog = 4096);
  std::uint16_t port() const { return port_; }
  void close();

 private:
  struct Block;
  Loop& loop_;
  OnConnection on_connection_;
  Block* block_ = nullptr;
  std::uint16_t port_ = 0;
};

}  // namespace pooler::net
