#include "tests/integration/test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

namespace pooler::integration {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string direct_conninfo() { return pg().tcp_conninfo(Node::Primary, "app", "secret", "app"); }

std::string unique_name(std::string_view prefix) {
  static std::atomic<int> counter = 0;
  return std::string(prefix) + "_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout,
              std::chrono::milliseconds poll) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(poll);
  }
  return true;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int column(const PgResult& r, const std::string& name) {
  for (std::size_t i = 0; i < r.columns.size(); ++i) {
    if (r.columns[i] == name) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

bool wait_result_ready(PGconn* c, Clock::time_point deadline) {
  while (PQisBusy(c) != 0) {
    if (Clock::now() >= deadline) {
      return false;
    }
    pollfd p{PQsocket(c), POLLIN, 0};
    ::poll(&p, 1, 20);
    if (PQconsumeInput(c) == 0) {
      return true;
    }
  }
  return true;
}

std::optional<PgResult> finish_query(PGconn* c, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::optional<PgResult> out;
  for (;;) {
    if (!wait_result_ready(c, deadline)) {
      return std::nullopt;
    }
    PGresult* r = PQgetResult(c);
    if (r == nullptr) {
      return out ? out : PgResult{};
    }
    // The first error is the cause; what follows it (a closed connection) is not.
    if (!out || out->ok()) {
      out = copy_result(c, r);
    }
    PQclear(r);
  }
}

int app_backends(const PgConn& su, const std::string& where) {
  const std::string sql =
      "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND "
      "backend_type = 'client backend' AND (" +
      where + ")";
  const auto n = query_value(su, sql);
  return n ? std::stoi(*n) : -1;
}

std::string app_activity(const PgConn& su) {
  const auto r = exec(su, "SELECT pid, state, query FROM pg_stat_activity WHERE usename = 'app'");
  std::string out;
  for (const auto& row : r.rows) {
    out += row[0] + " " + row[1] + " " + row[2] + "\n";
  }
  return out;
}

int connect_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string read_socket(int fd, std::chrono::milliseconds timeout, bool* closed,
                        const std::function<bool(const std::string&)>& enough) {
  std::string data;
  const auto deadline = Clock::now() + timeout;
  if (closed != nullptr) {
    *closed = false;
  }
  while (Clock::now() < deadline && !(enough && enough(data))) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) {
      continue;
    }
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (closed != nullptr) {
        *closed = true;
      }
      break;
    }
    data.append(buf, static_cast<std::size_t>(n));
  }
  return data;
}

std::string be32(std::uint32_t v) {
  const std::uint32_t n = htonl(v);
  return std::string(reinterpret_cast<const char*>(&n), 4);
}

std::string startup_packet(const std::vector<std::pair<std::string, std::string>>& params,
                           std::uint32_t version) {
  std::string body = be32(version);
  for (const auto& [name, value] : params) {
    body += name + '\0' + value + '\0';
  }
  body += '\0';
  return be32(static_cast<std::uint32_t>(body.size() + 4)) + body;
}

HttpReply http_get(int port, const std::string& path) {
  HttpReply reply;
  const int fd = connect_loopback(port);
  if (fd < 0) {
    return reply;
  }
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return reply;
  }
  const std::string raw = read_socket(fd, 10s);
  ::close(fd);
  if (raw.rfind("HTTP/1.1 ", 0) == 0 && raw.size() >= 12) {
    reply.status = std::stoi(raw.substr(9, 3));
  }
  if (const auto end = raw.find("\r\n\r\n"); end != std::string::npos) {
    reply.body = raw.substr(end + 4);
  }
  return reply;
}

}  // namespace pooler::integration
