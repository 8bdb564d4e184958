#include "pooler/net/tcp_stream.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <uv.h>

#include <cstring>
#include <string>

#include "pooler/base/check.h"

namespace pooler::net {

// The uv handle itself (uv_tcp_t, or uv_pipe_t for Unix sockets), allocated apart so that
// libuv can free it in the close callback, and sized for that handle: accepted client
// streams carry no pipe-sized union and no header. Its data pointer is the owner, cleared
// on close: late callbacks see nullptr.
struct TcpStream::Block {
  static Block* make(bool pipe) {
    const std::size_t size = pipe ? sizeof(uv_pipe_t) : sizeof(uv_tcp_t);
    void* mem = ::operator new(size);
    std::memset(mem, 0, size);
    return static_cast<Block*>(mem);
  }
  static void destroy(Block* b) { ::operator delete(b); }
  static Block* of(uv_handle_t* h) { return reinterpret_cast<Block*>(h); }
  uv_handle_t* handle() { return reinterpret_cast<uv_handle_t*>(this); }
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(this); }
  uv_tcp_t* tcp() { return reinterpret_cast<uv_tcp_t*>(this); }
  uv_pipe_t* pipe() { return reinterpret_cast<uv_pipe_t*>(this); }
  TcpStream* owner() { return static_cast<TcpStream*>(handle()->data); }
  bool is_pipe() { return handle()->type == UV_NAMED_PIPE; }
};

// A write that the kernel did not take at once: the request and its bytes, one allocation.
struct TcpStream::WriteReq {
  uv_write_t req{};
  Block* block = nullptr;
  std::size_t size = 0;
  char* data() { return reinterpret_cast<char*>(this + 1); }
};

namespace {
Error uv_error(std::string_view what, int status) {
  return Error{Errc::Io, std::string(what) + ": " + uv_strerror(status)};
}
}  // namespace

void tune_socket(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
}

TcpStream::TcpStream(Loop& loop, StreamEvents& events) : loop_(loop), events_(events) {}

TcpStream::~TcpStream() { close(); }

Result<void> TcpStream::accept_from(uv_stream_t* server) {
  POOLER_CHECK(block_ == nullptr, "stream already open");
  block_ = Block::make(false);
  uv_tcp_init(loop_.raw(), block_->tcp());
  block_->handle()->data = this;
  if (const int rc = uv_accept(server, block_->stream()); rc != 0) {
    close();
    return std::unexpected(uv_error("accept", rc));
  }
  tune_socket(fd());
  start_reading();
  return {};
}

Result<void> TcpStream::connect(const std::string& host, std::uint16_t port) {
  POOLER_CHECK(block_ == nullptr, "stream already open");
  const bool pipe = !host.empty() && host[0] == '/';
  block_ = Block::make(pipe);
  // Only outgoing connections need a connect request: allocated apart so that accepted
  // streams (thousands of idle clients) do not carry one.
  auto* req = new uv_connect_t{};
  req->data = block_;
  auto on_connect = [](uv_connect_t* req, int status) {
    auto* block = static_cast<Block*>(req->data);
    delete req;
    TcpStream* self = block->owner();
    if (self == nullptr || status == UV_ECANCELED) {
      return;
    }
    if (status != 0) {
      self->events_.on_error(uv_error("connect", status));
      return;
    }
    if (!block->is_pipe()) {
      tune_socket(self->fd());
    }
    self->start_reading();
    self->events_.on_connected();
  };
  if (pipe) {
    uv_pipe_init(loop_.raw(), block_->pipe(), 0);
    block_->handle()->data = this;
    const std::string path = host + "/.s.PGSQL." + std::to_string(port);
    uv_pipe_connect(req, block_->pipe(), path.c_str(), on_connect);
    return {};
  }
  uv_tcp_init(loop_.raw(), block_->tcp());
  block_->handle()->data = this;
  sockaddr_storage addr{};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    delete req;
    close();
    return fail(Errc::Io, "not an IP address: " + host);
  }
  if (const int rc = uv_tcp_connect(req, block_->tcp(),
                                    reinterpret_cast<const sockaddr*>(&addr), on_connect);
      rc != 0) {
    delete req;
    close();
    return std::unexpected(uv_error("connect", rc));
  }
  return {};
}

void TcpStream::start_reading() {
  want_read_ = true;
  if (block_ == nullptr || reading_) {
    return;
  }
  reading_ = true;
  uv_read_start(
      block_->stream(),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* self = static_cast<TcpStream*>(h->data);
        if (self == nullptr) {
          buf->base = nullptr;
          buf->len = 0;
          return;
        }
        buf->base = self->loop_.read_buffer();
        buf->len = Loop::kReadBufferSize;
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
        if (auto* self = static_cast<TcpStream*>(s->data); self != nullptr) {
          self->on_read(nread);
        }
      });
}

void TcpStream::on_read(long nread) {
  if (nread > 0) {
    const std::span bytes(reinterpret_cast<const std::byte*>(loop_.read_buffer()),
                          static_cast<std::size_t>(nread));
    if (tls_ != nullptr) {
      on_tls_read(bytes);
    } else {
      events_.on_read(bytes);
    }
  } else if (nread == UV_EOF) {
    events_.on_eof();
  } else if (nread < 0) {
    events_.on_error(uv_error("read", static_cast<int>(nread)));
  }
}

void TcpStream::pause_reading() {
  want_read_ = false;
  if (block_ != nullptr && reading_) {
    uv_read_stop(block_->stream());
    reading_ = false;
  }
}

void TcpStream::resume_reading() { start_reading(); }

void TcpStream::write(std::span<const std::byte> bytes) {
  if (tls_ != nullptr) {
    if (block_ == nullptr || bytes.empty()) {
      return;
    }
    if (auto ok = tls_->write(bytes); !ok || !tls_->handshake_done()) {
      return;  // held until the handshake ends; or, like a broken socket, failed: the read
               // side reports it
    }
    flush_tls();
    return;
  }
  write_raw(bytes);
}

void TcpStream::write_raw(std::span<const std::byte> bytes) {
  if (block_ == nullptr || bytes.empty()) {
    return;
  }
  std::size_t done = 0;
  if (queued_ == 0) {
    // Most writes fit in the socket buffer: no copy, no allocation.
    uv_buf_t buf = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(bytes.data())),
                               static_cast<unsigned>(bytes.size()));
    const int n = uv_try_write(block_->stream(), &buf, 1);
    if (n > 0) {
      done = static_cast<std::size_t>(n);
    } else if (n != UV_EAGAIN && n < 0) {
      // A broken connection: the read side reports it (EOF or reset) on its own turn,
      // so the caller's state is not changed under it here.
      return;
    }
  }
  if (done == bytes.size()) {
    return;
  }
  const std::size_t rest = bytes.size() - done;
  void* mem = ::operator new(sizeof(WriteReq) + rest);
  auto* req = new (mem) WriteReq{};
  req->block = block_;
  req->size = rest;
  std::memcpy(req->data(), bytes.data() + done, rest);
  req->req.data = req;
  uv_buf_t buf = uv_buf_init(req->data(), static_cast<unsigned>(rest));
  queued_ += rest;
  const int rc = uv_write(&req->req, block_->stream(), &buf, 1, [](uv_write_t* w, int status) {
    auto* r = static_cast<WriteReq*>(w->data);
    Block* block = r->block;
    const std::size_t size = r->size;
    r->~WriteReq();
    ::operator delete(r);
    if (TcpStream* self = block->owner(); self != nullptr) {
      self->on_write_done(size, status);
    }
  });
  if (rc != 0) {
    queued_ -= rest;
    req->~WriteReq();
    ::operator delete(req);
    return;
  }
  if (queued_ > kHighWater) {
    above_high_water_ = true;
  }
}

void TcpStream::on_write_done(std::size_t bytes, int status) {
  queued_ -= bytes;
  if (status != 0 && status != UV_ECANCELED) {
    events_.on_error(uv_error("write", status));
    return;
  }
  if (above_high_water_ && queued_ <= kLowWater) {
    above_high_water_ = false;
    events_.on_write_drained();
  }
}

void TcpStream::start_tls(std::unique_ptr<TlsSession> tls, std::span<const std::byte> received) {
  POOLER_CHECK(tls_ == nullptr, "TLS started twice");
  tls_ = std::move(tls);
  tls_->feed(received);
  // A client speaks first; a server only answers what was received.
  if (auto done = tls_->handshake(); !done) {
    flush_tls();  // the alert
    events_.on_error(done.error());
    return;
  }
  flush_tls();
}

bool TcpStream::flush_tls() {
  if (block_ == nullptr) {
    return false;
  }
  const auto out = tls_->output();
  if (!out.empty()) {
    write_raw(out);
    tls_->consume_output();
  }
  return block_ != nullptr;
}

void TcpStream::on_tls_read(std::span<const std::byte> ciphertext) {
  tls_->feed(ciphertext);
  if (!tls_->handshake_done()) {
    auto done = tls_->handshake();
    if (!flush_tls()) {
      return;
    }
    if (!done) {
      events_.on_error(done.error());
      return;
    }
    if (!*done) {
      return;
    }
    events_.on_tls_ready();
  }
  // Decrypted bytes go out in chunks as large as the plain path's reads, so that a
  // session makes as few writes for them. One buffer per thread: reads never nest.
  static thread_local std::unique_ptr<std::byte[]> plain(new std::byte[Loop::kReadBufferSize]);
  while (block_ != nullptr) {
    auto got = tls_->read(std::span(plain.get(), Loop::kReadBufferSize));
    if (!got) {
      flush_tls();
      events_.on_error(got.error());
      return;
    }
    if (got->size > 0) {
      events_.on_read(std::span(plain.get(), got->size));
    }
    if (got->closed && block_ != nullptr) {
      events_.on_eof();
      return;
    }
    if (got->size < Loop::kReadBufferSize) {
      break;
    }
  }
  // TLS 1.3 may answer on its own (a KeyUpdate).
  flush_tls();
}

void TcpStream::close() {
  if (block_ == nullptr) {
    return;
  }
  if (tls_ != nullptr) {
    // close_notify, best effort: the peer learns the end was deliberate.
    tls_->shutdown();
    flush_tls();
  }
  block_->handle()->data = nullptr;
  uv_close(block_->handle(), [](uv_handle_t* h) {
    Block::destroy(Block::of(h));  // the only delete of a Block
  });
  block_ = nullptr;
  reading_ = false;
}

std::string_view peer_address(std::string_view peer) {
  if (peer.starts_with('[')) {
    const auto close = peer.find(']');
    return close == std::string_view::npos ? peer : peer.substr(1, close - 1);
  }
  const auto colon = peer.rfind(':');
  return colon == std::string_view::npos ? peer : peer.substr(0, colon);
}

std::string TcpStream::peer() const {
  if (block_ == nullptr) {
    return "closed";
  }
  if (block_->is_pipe()) {
    return "unix";
  }
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getpeername(block_->tcp(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return "unknown";
  }
  char ip[INET6_ADDRSTRLEN] = {};
  int port = 0;
  if (addr.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    uv_ip6_name(a, ip, sizeof ip);
    port = ntohs(a->sin6_port);
    return "[" + std::string(ip) + "]:" + std::to_string(port);
  }
  auto* a = reinterpret_cast<sockaddr_in*>(&addr);
  uv_ip4_name(a, ip, sizeof ip);
  port = ntohs(a->sin_port);
  return std::string(ip) + ":" + std::to_string(port);
}

int TcpStream::fd() const {
  if (block_ == nullptr) {
    return -1;
  }
  uv_os_fd_t fd = -1;
  uv_fileno(block_->handle(), &fd);
  return fd;
}

}  // namespace pooler::net
