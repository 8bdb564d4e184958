#pragma once
// The HTTP endpoint (`http_listen`): GET /metrics, /healthz, /readyz and /pools, one
// request per connection (Connection: close). Runs on one worker's loop and gathers the
// other workers' snapshots through admin::gather. Built on net::TcpListener/TcpStream.
// Loop thread only.

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "pooler/admin/control.h"
#include "pooler/client/session_host.h"
#include "pooler/net/loop.h"
#include "pooler/net/tcp_listener.h"

namespace pooler::http {

class HttpConnection;

class HttpServer {
 public:
  HttpServer(client::SessionHost& host, admin::Control& control);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  [[nodiscard]] Result<void> listen(const config::HostPort& address);
  std::uint16_t port() const { return listener_.port(); }
  void close();

  // From HttpConnection.
  client::SessionHost& host() { return host_; }
  admin::Control& control() { return control_; }
  void on_connection_closed(std::uint64_t id);

 private:
  void on_connection(uv_stream_s* server);

  client::SessionHost& host_;
  admin::Control& control_;
  net::TcpListener listener_;
  std::map<std::uint64_t, std::unique_ptr<HttpConnection>> connections_;
  std::uint64_t next_id_ = 1;
};

}  // namespace pooler::http
