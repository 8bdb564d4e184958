// A full client -> pgmux -> backend -> pgmux -> client round trip through pgmux's own code
// (App, worker loop, client session, pool, backend connection) over loopback sockets, with
// a minimal stand-in server that answers every Query at once. What it measures is pgmux's
// added latency per simple query plus four loopback socket hops; compare with
// BM_DirectRoundTrip, the same client talking to the stand-in server directly.

#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "pooler/app/app.h"
#include "pooler/base/log.h"
#include "pooler/config/config_loader.h"
#include "pooler/wire/messages.h"

namespace {

using namespace pooler;

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool read_exact(int fd, void* buf, std::size_t n) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r <= 0) {
      return false;
    }
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

void write_all(int fd, std::span<const std::byte> bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w <= 0) {
      return;
    }
    done += static_cast<std::size_t>(w);
  }
}

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < 200; ++i) {
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      return fd;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::close(fd);
  return -1;
}

// Reads messages until ReadyForQuery; false if the connection ended.
bool read_until_ready(int fd) {
  for (;;) {
    char header[5];
    if (!read_exact(fd, header, 5)) {
      return false;
    }
    std::uint32_t len = 0;
    std::memcpy(&len, header + 1, 4);
    len = ntohl(len);
    std::vector<char> body(len - 4);
    if (!body.empty() && !read_exact(fd, body.data(), body.size())) {
      return false;
    }
    if (header[0] == 'Z') {
      return true;
    }
  }
}

// A stand-in PostgreSQL: trusts any login, answers each Query with one row.
class StandInServer {
 public:
  StandInServer() : port_(free_port()) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listen_fd_, 64);
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~StandInServer() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    thread_.join();
    for (auto& t : sessions_) {
      t.join();
    }
  }
  int port() const { return port_; }

 private:
  void accept_loop() {
    for (;;) {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) {
        return;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      sessions_.emplace_back([fd] { serve(fd); });
    }
  }

  static void serve(int fd) {
    std::uint32_t len = 0;
    if (!read_exact(fd, &len, 4)) {
      ::close(fd);
      return;
    }
    std::vector<char> startup(ntohl(len) - 4);
    read_exact(fd, startup.data(), startup.size());
    wire::WriteBuffer out;
    wire::encode_auth_ok(out);
    wire::encode(wire::ParameterStatus{"server_version", "15.0"}, out);
    wire::encode(wire::ParameterStatus{"client_encoding", "UTF8"}, out);
    wire::encode(wire::BackendKeyData{1, 2}, out);
    wire::encode(wire::ReadyForQuery{wire::TxStatus::Idle}, out);
    write_all(fd, out.data());
    wire::WriteBuffer reply;
    reply.begin_message('T').u16(1).cstring("v").u32(0).u16(0).u32(23).u16(4).i32(-1).u16(0);
    reply.begin_message('D').u16(1).u32(1).bytes(std::string_view("1"));
    wire::encode(wire::CommandComplete{"SELECT 1"}, reply);
    wire::encode(wire::ReadyForQuery{wire::TxStatus::Idle}, reply);
    for (;;) {
      char header[5];
      if (!read_exact(fd, header, 5)) {
        break;
      }
      std::memcpy(&len, header + 1, 4);
      std::vector<char> body(ntohl(len) - 4);
      if (!body.empty() && !read_exact(fd, body.data(), body.size())) {
        break;
      }
      if (header[0] == 'X') {
        break;
      }
      if (header[0] == 'Q') {
        write_all(fd, reply.data());
      }
    }
    ::close(fd);
  }

  int port_;
  int listen_fd_;
  std::thread thread_;
  std::vector<std::thread> sessions_;
};

// Logs in (trust) and returns the socket, ready for queries.
int log_in(int port) {
  const int fd = connect_to(port);
  wire::WriteBuffer out;
  const std::pair<std::string, std::string> params[] = {{"user", "bench"}, {"database", "bench"}};
  wire::encode_startup(params, out);
  write_all(fd, out.data());
  if (!read_until_ready(fd)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void round_trips(benchmark::State& state, int port) {
  const int fd = log_in(port);
  if (fd < 0) {
    state.SkipWithError("login failed");
    return;
  }
  wire::WriteBuffer query;
  wire::encode(wire::Query{"SELECT 1"}, query);
  for (auto _ : state) {
    write_all(fd, query.data());
    if (!read_until_ready(fd)) {
      state.SkipWithError("connection lost");
      break;
    }
  }
  ::close(fd);
}

void BM_DirectRoundTrip(benchmark::State& state) {
  StandInServer server;
  round_trips(state, server.port());
}
BENCHMARK(BM_DirectRoundTrip)->UseRealTime();

// Arg: per-shape statistics off (0) or on (1), to see what they cost per query.
void BM_PgmuxRoundTrip(benchmark::State& state) {
  StandInServer server;
  const int port = free_port();
  const std::string toml = "[pgmux]\nlisten = \"127.0.0.1:" + std::to_string(port) +
                           "\"\nworkers = 1\nlog_level = \"error\"\nstats_period = 0\n"
                           "query_stats = " + (state.range(0) != 0 ? "true" : "false") + "\n"
                           "[databases.bench]\nprimary = \"127.0.0.1:" +
                           std::to_string(server.port()) +
                           "\"\npool_size = 1\n[users.bench]\nauth = \"trust\"\n";
  auto config = config::load_config_string(toml, "micro_roundtrip.toml");
  if (!config) {
    state.SkipWithError(config.error().message.c_str());
    return;
  }
  log::setup(log::Format::Text, spdlog::level::err);
  auto app = std::make_unique<app::App>(std::make_shared<const config::Config>(std::move(*config)),
                                        "micro_roundtrip.toml");
  if (!app->bind()) {
    state.SkipWithError("bind failed");
    return;
  }
  std::thread runner([&] { app->run(); });
  round_trips(state, port);
  std::raise(SIGINT);  // App::run stops on SIGINT
  runner.join();
}
BENCHMARK(BM_PgmuxRoundTrip)->Arg(0)->Arg(1)->UseRealTime();

}  // namespace
