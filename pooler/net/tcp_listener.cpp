#include "pooler/net/tcp_listener.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>

namespace pooler::net {

struct TcpListener::Block {
  uv_tcp_t tcp{};
  TcpListener* owner = nullptr;
};

TcpListener::TcpListener(Loop& loop, OnConnection on_connection)
    : loop_(loop), on_connection_(std::move(on_connection)) {}

TcpListener::~TcpListener() { close(); }

Result<void> TcpListener::listen(const std::string& host, std::uint16_t port, int backlog) {
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) == 0) {
    addr_len = sizeof(sockaddr_in);
  } else if (uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) == 0) {
    addr_len = sizeof(sockaddr_in6);
  } else {
    return fail(Errc::Config, "listen address is not an IP address: " + host);
  }
  // libuv 1.44 has no SO_REUSEPORT flag: make the socket ourselves and hand it over.
  const int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return fail(Errc::Io, std::string("socket: ") + std::strerror(errno));
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (addr.ss_family == AF_INET6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0) {
    const int err = errno;
    ::close(fd);
    return fail(Errc::Io, "cannot bind " + host + ":" + std::to_string(port) + ": " +
                              std::strerror(err));
  }
  block_ = new Block{};
  block_->owner = this;
  uv_tcp_init(loop_.raw(), &block_->tcp);
  block_->tcp.data = block_;
  if (const int rc = uv_tcp_open(&block_->tcp, fd); rc != 0) {
    ::close(fd);
    close();
    return fail(Errc::Io, std::string("uv_tcp_open: ") + uv_strerror(rc));
  }
  const int rc = uv_listen(reinterpret_cast<uv_stream_t*>(&block_->tcp), backlog,
                           [](uv_stream_t* server, int status) {
                             auto* block = static_cast<Block*>(server->data);
                             if (block->owner == nullptr || status != 0) {
                               return;
                             }
                             block->owner->on_connection_(server);
                           });
  if (rc != 0) {
    close();
    return fail(Errc::Io, "cannot listen on " + host + ":" + std::to_string(port) + ": " +
                              uv_strerror(rc));
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&block_->tcp, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return {};
}

void TcpListener::close() {
  if (block_ == nullptr) {
    return;
  }
  block_->owner = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&block_->tcp),
           [](uv_handle_t* h) { delete static_cast<Block*>(h->data); });
  block_ = nullptr;
}

}  // namespace pooler::net
