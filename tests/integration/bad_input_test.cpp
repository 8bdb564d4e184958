// Bad input to the real pgmux binary (issue 2, first slice): failed logins, malformed
// startup packets, protocol versions, SSLRequest, stray CancelRequests, bad messages
// after login, and malformed configuration files. Every network case runs while an
// already-connected client (the keeper) goes on working. Byte-level cases use plain
// POSIX sockets; where PostgreSQL itself is the reference, the same bytes go to the
// fixture's primary too.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/integration/pg_client.h"
#include "tests/integration/pgmux_process.h"
#include "tests/integration/postgres_environment.h"
#include "tests/integration/test_util.h"

namespace pooler::integration {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// PostgreSQL closes on a malformed startup packet without waiting for anything; a close
// only after a timeout (client_login_timeout is 60 s) is a different behavior.
constexpr auto kPromptClose = 1s;

// ---- Wire bytes ----------------------------------------------------------------------

constexpr std::uint32_t kProtocol3 = 3u << 16;
constexpr std::uint32_t kCancelRequestCode = 80877102;
constexpr std::uint32_t kSslRequestCode = 80877103;
constexpr std::uint32_t kGssEncRequestCode = 80877104;

std::uint32_t read_be32(const char* p) {
  std::uint32_t n = 0;
  std::memcpy(&n, p, 4);
  return ntohl(n);
}

std::string request_packet(std::uint32_t code) {
  return be32(8) + be32(code);
}

std::string cancel_packet(std::uint32_t pid, std::uint32_t secret) {
  return be32(16) + be32(kCancelRequestCode) + be32(pid) + be32(secret);
}

// A regular (typed) message: type byte, length including itself, body.
std::string message(char type, std::string_view body) {
  return std::string(1, type) + be32(static_cast<std::uint32_t>(body.size() + 4)) +
         std::string(body);
}

std::string query_message(std::string_view sql) {
  return message('Q', std::string(sql) + '\0');
}

struct BackendMessage {
  char type = 0;
  std::string body;

  // The fields of an ErrorResponse/NoticeResponse by code ('S', 'C', 'M', ...).
  std::map<char, std::string> fields() const {
    std::map<char, std::string> out;
    std::size_t pos = 0;
    while (pos < body.size() && body[pos] != '\0') {
      const char code = body[pos++];
      const std::size_t end = body.find('\0', pos);
      if (end == std::string::npos) {
        break;
      }
      out[code] = body.substr(pos, end - pos);
      pos = end + 1;
    }
    return out;
  }
  std::string field(char code) const {
    const auto all = fields();
    const auto it = all.find(code);
    return it == all.end() ? "" : it->second;
  }
};

std::ostream& operator<<(std::ostream& out, const BackendMessage& m) {
  out << "'" << m.type << "' (" << m.body.size() << " bytes)";
  if (m.type == 'E' || m.type == 'N') {
    for (const auto& [code, value] : m.fields()) {
      out << " " << code << "=" << value;
    }
  }
  return out;
}

// Splits the complete v3 messages off the front of `bytes`; what is left is incomplete.
std::vector<BackendMessage> parse_messages(std::string_view bytes, std::size_t* used = nullptr) {
  std::vector<BackendMessage> out;
  std::size_t pos = 0;
  while (bytes.size() - pos >= 5) {
    const std::uint32_t len = read_be32(bytes.data() + pos + 1);
    if (len < 4 || bytes.size() - pos - 1 < len) {
      break;
    }
    out.push_back({bytes[pos], std::string(bytes.substr(pos + 5, len - 4))});
    pos += 1 + len;
  }
  if (used != nullptr) {
    *used = pos;
  }
  return out;
}

std::string printable(std::string_view bytes) {
  std::string out;
  for (const char c : bytes.substr(0, 400)) {
    if (c >= 32 && c < 127) {
      out += c;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      out += buf;
    }
  }
  return bytes.size() > 400 ? out + "..." : out;
}

// ---- A raw client socket -------------------------------------------------------------

// What arrived before the peer closed (or the wait ended).
struct Drained {
  std::string bytes;
  bool closed = false;  // EOF or connection reset
  std::chrono::milliseconds elapsed{0};
};

class RawConn {
 public:
  static RawConn tcp(int port) {
    RawConn conn;
    conn.fd_ = connect_loopback(port);
    return conn;
  }
  // The primary's Unix socket, where the superuser needs no password (reference runs).
  static RawConn primary_unix() {
    RawConn conn;
    const std::string path = pg().socket_dir() + "/.s.PGSQL." + std::to_string(pg().primary_port());
    conn.fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (conn.fd_ >= 0 &&
        ::connect(conn.fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      conn.reset();
    }
    return conn;
  }

  RawConn() = default;
  RawConn(RawConn&& other) noexcept : fd_(other.fd_), buffer_(std::move(other.buffer_)) {
    other.fd_ = -1;
  }
  RawConn& operator=(RawConn&&) = delete;
  ~RawConn() { reset(); }

  bool ok() const { return fd_ >= 0; }

  // Sends all of `bytes`; false once the peer has closed (EPIPE, ECONNRESET).
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return false;
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Reads everything until the peer closes or `timeout` passes.
  Drained read_until_closed(std::chrono::milliseconds timeout = 3s) {
    const auto start = Clock::now();
    Drained out;
    out.bytes = std::move(buffer_);
    buffer_.clear();
    while (Clock::now() - start < timeout) {
      if (!fill(std::chrono::duration_cast<std::chrono::milliseconds>(timeout -
                                                                      (Clock::now() - start)),
                out.bytes)) {
        out.closed = closed_;
        if (closed_) {
          break;
        }
      }
    }
    out.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    return out;
  }

  // The next whole message, or std::nullopt on close or timeout.
  std::optional<BackendMessage> read_message(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      std::size_t used = 0;
      auto messages = parse_messages(buffer_, &used);
      if (!messages.empty()) {
        const std::size_t first_size = 5 + messages.front().body.size();
        buffer_.erase(0, first_size);
        return std::move(messages.front());
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left <= 0ms || closed_) {
        return std::nullopt;
      }
      fill(left, buffer_);
    }
  }

  // Reads exactly `n` raw bytes (e.g. the 'N' answer to SSLRequest); "" on close/timeout.
  std::string read_bytes(std::size_t n, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = Clock::now() + timeout;
    while (buffer_.size() < n && !closed_ && Clock::now() < deadline) {
      fill(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()), buffer_);
    }
    if (buffer_.size() < n) {
      return "";
    }
    std::string out = buffer_.substr(0, n);
    buffer_.erase(0, n);
    return out;
  }

  // Bytes that arrive within `wait` beyond what was read so far.
  std::string unexpected_bytes(std::chrono::milliseconds wait) {
    const auto deadline = Clock::now() + wait;
    while (!closed_ && Clock::now() < deadline) {
      fill(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()), buffer_);
    }
    return buffer_;
  }

 private:
  // Waits up to `timeout` for input and appends it to `to`; false on close or timeout.
  bool fill(std::chrono::milliseconds timeout, std::string& to) {
    if (fd_ < 0 || closed_) {
      closed_ = true;
      return false;
    }
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::max<long>(timeout.count(), 0)));
    if (ready <= 0) {
      return false;
    }
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      to.append(buf, static_cast<std::size_t>(n));
      return true;
    }
    if (n == 0 || errno == ECONNRESET) {
      closed_ = true;
    }
    return false;
  }

  void reset() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = -1;
  }

  int fd_ = -1;
  bool closed_ = false;
  std::string buffer_;
};

// Logs in over `conn` with a user that needs no password; reads up to ReadyForQuery.
::testing::AssertionResult raw_login(RawConn& conn, const std::string& user,
                                     const std::string& database) {
  if (!conn.ok()) {
    return ::testing::AssertionFailure() << "not connected";
  }
  if (!conn.send(startup_packet({{"user", user}, {"database", database}}))) {
    return ::testing::AssertionFailure() << "cannot send the startup packet";
  }
  while (auto m = conn.read_message()) {
    if (m->type == 'R' && (m->body.size() != 4 || read_be32(m->body.data()) != 0)) {
      return ::testing::AssertionFailure() << "asked to authenticate: " << *m;
    }
    if (m->type == 'E') {
      return ::testing::AssertionFailure() << "login failed: " << *m;
    }
    if (m->type == 'Z') {
      return ::testing::AssertionSuccess();
    }
  }
  return ::testing::AssertionFailure() << "closed or timed out before ReadyForQuery";
}

// Sends a simple Query and collects its answer up to ReadyForQuery.
std::vector<BackendMessage> raw_query(RawConn& conn, std::string_view sql) {
  std::vector<BackendMessage> out;
  if (!conn.send(query_message(sql))) {
    return out;
  }
  while (auto m = conn.read_message()) {
    out.push_back(*m);
    if (m->type == 'Z') {
      break;
    }
  }
  return out;
}

// The first DataRow's first column of an answer, "" if none.
std::string first_value(const std::vector<BackendMessage>& answer) {
  for (const auto& m : answer) {
    if (m.type == 'D' && m.body.size() >= 6) {
      const std::uint32_t len = read_be32(m.body.data() + 2);
      return m.body.substr(6, len);
    }
  }
  return "";
}

// The connection was closed within kPromptClose, and if anything came first, it was one
// ErrorResponse with one of `sqlstates`.
::testing::AssertionResult closed_promptly(const Drained& d,
                                           const std::vector<std::string>& sqlstates) {
  if (!d.closed) {
    return ::testing::AssertionFailure()
           << "still open after " << d.elapsed.count() << " ms; got '" << printable(d.bytes) << "'";
  }
  if (d.elapsed > kPromptClose) {
    return ::testing::AssertionFailure() << "closed only after " << d.elapsed.count() << " ms";
  }
  if (d.bytes.empty()) {
    return ::testing::AssertionSuccess() << "closed silently";
  }
  std::size_t used = 0;
  const auto messages = parse_messages(d.bytes, &used);
  if (messages.size() != 1 || used != d.bytes.size() || messages[0].type != 'E') {
    return ::testing::AssertionFailure()
           << "expected one ErrorResponse, got '" << printable(d.bytes) << "'";
  }
  const std::string code = messages[0].field('C');
  for (const auto& accepted : sqlstates) {
    if (code == accepted) {
      return ::testing::AssertionSuccess() << messages[0];
    }
  }
  return ::testing::AssertionFailure() << "unexpected SQLSTATE: " << messages[0];
}

// ---- libpq logins that fail ------------------------------------------------------------

// Connects with PQERRORS_VERBOSE so a failed login's message carries its SQLSTATE
// ("FATAL:  28P01: password authentication failed ..."); "" if the login succeeded.
std::string login_error(const std::string& conninfo) {
  PgConn conn(PQconnectStart(conninfo.c_str()));
  if (conn == nullptr) {
    return "PQconnectStart failed";
  }
  PQsetErrorVerbosity(conn.get(), PQERRORS_VERBOSE);
  PostgresPollingStatusType status = PGRES_POLLING_WRITING;
  const auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline) {
    if (status == PGRES_POLLING_OK) {
      return "";
    }
    if (status == PGRES_POLLING_FAILED) {
      return PQerrorMessage(conn.get());
    }
    pollfd p{PQsocket(conn.get()),
             static_cast<short>(status == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
    ::poll(&p, 1, 100);
    status = PQconnectPoll(conn.get());
  }
  return "login timed out";
}

// The server's words in a libpq error message: from "FATAL:" to the end of that line
// (libpq puts "connection to server at ... failed: " before them).
std::string fatal_line(const std::string& text) {
  const std::size_t start = text.find("FATAL:");
  if (start == std::string::npos) {
    return text;
  }
  return text.substr(start, text.find('\n', start) - start);
}

// ---- The fixture -------------------------------------------------------------------------

constexpr std::uint32_t kMaxMessageSize = 1024 * 1024;

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PgmuxProcess::binary_exists()) {
      GTEST_SKIP() << "pgmux binary " << PgmuxProcess::binary_path() << " not built";
    }
    // trusty: auth = "trust" in pgmux, so raw sockets can log in without SCRAM; pgmux
    // itself logs in to PostgreSQL with the password.
    auto su = connect(pg().superuser_conninfo(Node::Primary));
    ASSERT_TRUE(su) << su.error;
    const PgResult created = exec(su.conn,
                                  "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
                                  "'trusty') THEN CREATE ROLE trusty LOGIN PASSWORD 'trusty_pw'; "
                                  "END IF; END $$");
    ASSERT_TRUE(created.ok()) << created;

    PgmuxConfigOptions options;
    options.replica = false;
    options.log_level = "info";
    options.pgmux_extra = "max_message_size = " + std::to_string(kMaxMessageSize);
    options.extra = "[users.trusty]\nauth = \"trust\"\npassword = \"trusty_pw\"\n";
    ASSERT_TRUE(pgmux_.start(PgmuxProcess::typical_config(options)));
    auto keeper = connect(pgmux_.conninfo());
    ASSERT_TRUE(keeper) << keeper.error;
    keeper_ = std::move(keeper.conn);
    ASSERT_EQ(query_value(keeper_, "SELECT 'alive'"), "alive");
  }

  // The already-connected client still works, and pgmux still runs.
  void expect_keeper_works() {
    EXPECT_EQ(query_value(keeper_, "SELECT 'alive'"), "alive")
        << PQerrorMessage(keeper_.get()) << "\n"
        << pgmux_.log_tail();
    EXPECT_TRUE(pgmux_.running());
  }

  RawConn raw() {
    RawConn conn = RawConn::tcp(pgmux_.port());
    EXPECT_TRUE(conn.ok()) << "cannot connect to pgmux";
    return conn;
  }

  PgmuxProcess pgmux_;
  PgConn keeper_;
};

// An unknown database: 3D000 naming it, as PostgreSQL says it.
TEST_F(BadInputTest, UnknownDatabaseGets3D000NamingIt) {
  const std::string expected = "3D000: database \"no_such_db\" does not exist";
  const std::string error = login_error(pgmux_.conninfo("app", "secret", "no_such_db"));
  EXPECT_NE(error.find(expected), std::string::npos) << error;
  const std::string reference =
      login_error(pg().tcp_conninfo(Node::Primary, "app", "secret", "no_such_db"));
  EXPECT_NE(reference.find(expected), std::string::npos) << "PostgreSQL: " << reference;
  expect_keeper_works();
}

// An unknown user meets the same SCRAM challenge and the same 28P01 message as a
// wrong password: nothing tells the two apart.
TEST_F(BadInputTest, UnknownUserLooksLikeAWrongPassword) {
  const std::string unknown = login_error(pgmux_.conninfo("no_such_user", "secret", "app"));
  EXPECT_EQ(fatal_line(unknown),
            "FATAL:  28P01: password authentication failed for user \"no_such_user\"")
      << unknown;
  const std::string reference =
      login_error(pg().tcp_conninfo(Node::Primary, "no_such_user", "secret", "app"));
  EXPECT_EQ(fatal_line(reference), fatal_line(unknown)) << "PostgreSQL: " << reference;

  const std::string wrong = login_error(pgmux_.conninfo("app", "wrong", "app"));
  std::string unknown_as_app = fatal_line(unknown);
  unknown_as_app.replace(unknown_as_app.find("no_such_user"), 12, "app");
  EXPECT_EQ(fatal_line(wrong), unknown_as_app);

  // The first answer to the startup packet is the same SCRAM request for both.
  for (const char* user : {"app", "no_such_user"}) {
    RawConn conn = raw();
    ASSERT_TRUE(conn.send(startup_packet({{"user", user}, {"database", "app"}})));
    const auto request = conn.read_message();
    ASSERT_TRUE(request.has_value()) << user;
    EXPECT_EQ(request->type, 'R') << user << ": " << *request;
    EXPECT_EQ(request->body, std::string("\0\0\0\x0aSCRAM-SHA-256\0\0", 4 + 15)) << user;
  }
  expect_keeper_works();
}

// Wrong passwords get 28P01, for a SCRAM user and for an md5 user.
TEST_F(BadInputTest, WrongPasswordGets28P01) {
  for (const auto& [user, password] :
       {std::pair{"app", "not-secret"}, {"app_md5", "not-secret"}, {"other", "secret"}}) {
    SCOPED_TRACE(user);
    const std::string error = login_error(pgmux_.conninfo(user, password, "app"));
    EXPECT_NE(
        error.find(std::string("28P01: password authentication failed for user \"") + user + "\""),
        std::string::npos)
        << error;
    expect_keeper_works();
  }
}

// Startup packets with impossible lengths, or bytes that are no startup packet at all:
// closed at once (PostgreSQL closes without a reply), or one ErrorResponse 08P01 first.
TEST_F(BadInputTest, MalformedStartupPacketsCloseTheConnectionPromptly) {
  std::mt19937 random(20240601);
  std::string noise;
  noise += '\xf3';  // a "negative" length, then noise
  for (int i = 0; i < 63; ++i) {
    noise += static_cast<char>(random() & 0xff);
  }
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"HTTP request", "GET / HTTP/1.1\r\nHost: pgmux\r\n\r\n"},
      {"random bytes (seed 20240601)", noise},
      {"length 0", be32(0)},
      {"length 3", be32(3)},
      {"length 4 (no protocol version)", be32(4)},
      {"length 10001 with its bytes", be32(10001) + std::string(9997, 'a')},
      {"length 2^31-1", be32(0x7fffffff)},
      {"length -1", be32(0xffffffff)},
      {"length -2^31", be32(0x80000000)},
  };
  for (const auto& [name, bytes] : cases) {
    SCOPED_TRACE(name);
    RawConn conn = raw();
    conn.send(bytes);  // may fail once pgmux has closed; the close is what counts
    EXPECT_TRUE(closed_promptly(conn.read_until_closed(), {"08P01"}));
    expect_keeper_works();

    // The premise: PostgreSQL itself closes at once on these bytes (it may first say
    // 0A000 "unsupported frontend protocol" where the bytes pass as a length).
    RawConn reference = RawConn::tcp(pg().primary_port());
    reference.send(bytes);
    EXPECT_TRUE(closed_promptly(reference.read_until_closed(), {"08P01", "0A000"})) << "PostgreSQL";
  }
}

// A startup packet of a valid length whose contents are broken: ErrorResponse (08P01,
// or 0A000 for the version, as PostgreSQL) and a prompt close.
TEST_F(BadInputTest, StartupPacketWithBrokenContentIsRejected) {
  const std::string unterminated = be32(kProtocol3) + "user" + '\0' + "app";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"no terminator", be32(static_cast<std::uint32_t>(unterminated.size() + 4)) + unterminated},
      {"version 0xdead.0xbeef", be32(16) + be32(0xdeadbeef) + std::string(8, '\0')},
      {"SSLRequest with trailing bytes", be32(12) + be32(kSslRequestCode) + be32(0)},
      {"CancelRequest too short", be32(12) + be32(kCancelRequestCode) + be32(1)},
  };
  for (const auto& [name, bytes] : cases) {
    SCOPED_TRACE(name);
    RawConn conn = raw();
    conn.send(bytes);
    EXPECT_TRUE(closed_promptly(conn.read_until_closed(), {"08P01", "0A000"}));
    expect_keeper_works();
  }
  // No user name at all: PostgreSQL's 28000 or a protocol violation, then close.
  RawConn conn = raw();
  conn.send(startup_packet({{"database", "app"}}));
  const Drained d = conn.read_until_closed();
  EXPECT_TRUE(closed_promptly(d, {"08P01", "28000"}));
  EXPECT_NE(d.bytes.find("no PostgreSQL user name specified in startup packet"), std::string::npos)
      << printable(d.bytes);
  expect_keeper_works();
}

// Protocol 2.0 gets an error saying which versions are supported, then a close.
// (PostgreSQL answers a 2.0 client in the old 2.0 error format; either format counts.)
TEST_F(BadInputTest, UnsupportedProtocolVersionGetsAnError) {
  for (const std::uint32_t version : {2u << 16, 4u << 16}) {
    const std::string text = "unsupported frontend protocol " + std::to_string(version >> 16) +
                             ".0: server supports 3.0 to 3.0";
    SCOPED_TRACE(text);
    RawConn conn = raw();
    ASSERT_TRUE(conn.send(startup_packet({{"user", "app"}, {"database", "app"}}, version)));
    const Drained d = conn.read_until_closed();
    EXPECT_TRUE(d.closed);
    EXPECT_LT(d.elapsed, kPromptClose);
    ASSERT_FALSE(d.bytes.empty());
    EXPECT_EQ(d.bytes[0], 'E') << printable(d.bytes);
    EXPECT_NE(d.bytes.find(text), std::string::npos) << printable(d.bytes);
    expect_keeper_works();

    RawConn reference = RawConn::tcp(pg().primary_port());
    ASSERT_TRUE(reference.send(startup_packet({{"user", "app"}, {"database", "app"}}, version)));
    const Drained r = reference.read_until_closed();
    EXPECT_NE(r.bytes.find(text), std::string::npos) << "PostgreSQL: " << printable(r.bytes);
  }
}

// Startup errors carry PostgreSQL's SQLSTATEs: 0A000 (feature_not_supported) for an
// unsupported protocol version, 28000 (invalid_authorization_specification) for a
// startup packet without a user; same severity and message text too.
// Regression (was a bug): pgmux sends 08P01 (protocol_violation) for both: ClientSession::process maps every
// Errc::Protocol from decode_startup/handle_startup to kProtocolViolation.
TEST_F(BadInputTest, StartupErrorSqlstatesMatchPostgres) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"protocol 4.0", startup_packet({{"user", "app"}, {"database", "app"}}, 4u << 16)},
      {"no user", startup_packet({{"database", "app"}})},
  };
  for (const auto& [name, packet] : cases) {
    SCOPED_TRACE(name);
    RawConn reference = RawConn::tcp(pg().primary_port());
    ASSERT_TRUE(reference.send(packet));
    const auto expected = parse_messages(reference.read_until_closed().bytes);
    ASSERT_EQ(expected.size(), 1u);

    RawConn conn = raw();
    ASSERT_TRUE(conn.send(packet));
    const auto actual = parse_messages(conn.read_until_closed().bytes);
    ASSERT_EQ(actual.size(), 1u);
    EXPECT_EQ(actual[0].field('S'), expected[0].field('S')) << actual[0];
    EXPECT_EQ(actual[0].field('C'), expected[0].field('C')) << actual[0] << " vs " << expected[0];
    EXPECT_EQ(actual[0].field('M'), expected[0].field('M')) << actual[0];
    expect_keeper_works();
  }
}

// SSLRequest and GSSENCRequest get exactly 'N', then a plaintext startup on the same
// connection logs in and runs a query; libpq with sslmode=prefer does the same.
TEST_F(BadInputTest, SslRequestGetsNThenPlaintextStartupWorks) {
  for (const std::uint32_t code : {kSslRequestCode, kGssEncRequestCode}) {
    SCOPED_TRACE(code);
    RawConn conn = raw();
    ASSERT_TRUE(conn.send(request_packet(code)));
    EXPECT_EQ(conn.read_bytes(1), "N");
    EXPECT_EQ(conn.unexpected_bytes(100ms), "");
    ASSERT_TRUE(raw_login(conn, "trusty", "app"));
    EXPECT_EQ(first_value(raw_query(conn, "SELECT 'plain ' || current_user")), "plain trusty");
    expect_keeper_works();
  }
  auto c = connect(make_conninfo({{"host", "127.0.0.1"},
                                  {"port", std::to_string(pgmux_.port())},
                                  {"user", "app"},
                                  {"password", "secret"},
                                  {"dbname", "app"},
                                  {"sslmode", "prefer"},
                                  {"gssencmode", "prefer"}}));
  ASSERT_TRUE(c) << c.error;
  EXPECT_EQ(query_value(c.conn, "SELECT 'prefer'"), "prefer");
  EXPECT_EQ(PQsslInUse(c.conn.get()), 0);
  expect_keeper_works();
}

// CancelRequests with keys pgmux never gave out (random, and the keeper's pid with a
// wrong secret) are closed without a reply and cancel nothing; a real cancel still works.
TEST_F(BadInputTest, CancelRequestWithUnknownKeysIsIgnored) {
  std::mt19937 random(4242);
  ASSERT_EQ(PQsendQuery(keeper_.get(), "SELECT pg_sleep(0.5), 'survived'"), 1);
  const auto keeper_pid = static_cast<std::uint32_t>(PQbackendPID(keeper_.get()));
  for (const auto& [pid, secret] :
       {std::pair{static_cast<std::uint32_t>(random()), static_cast<std::uint32_t>(random())},
        {keeper_pid, static_cast<std::uint32_t>(random())},
        {0u, 0u}}) {
    SCOPED_TRACE("pid " + std::to_string(pid) + " secret " + std::to_string(secret));
    RawConn conn = raw();
    ASSERT_TRUE(conn.send(cancel_packet(pid, secret)));
    const Drained d = conn.read_until_closed();
    EXPECT_TRUE(d.closed);
    EXPECT_LT(d.elapsed, kPromptClose);
    EXPECT_EQ(printable(d.bytes), "");
  }
  PGresult* r = PQgetResult(keeper_.get());
  EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQresultErrorMessage(r);
  if (PQresultStatus(r) == PGRES_TUPLES_OK) {
    EXPECT_STREQ(PQgetvalue(r, 0, 1), "survived");
  }
  PQclear(r);
  while (PGresult* extra = PQgetResult(keeper_.get())) {
    PQclear(extra);
  }
  expect_keeper_works();

  // The control: the keeper's real key does cancel.
  ASSERT_EQ(PQsendQuery(keeper_.get(), "SELECT pg_sleep(20)"), 1);
  std::this_thread::sleep_for(200ms);
  PGcancel* cancel = PQgetCancel(keeper_.get());
  char errbuf[256] = {};
  EXPECT_EQ(PQcancel(cancel, errbuf, sizeof errbuf), 1) << errbuf;
  PQfreeCancel(cancel);
  const auto cancelled_at = Clock::now();
  PGresult* cancelled = PQgetResult(keeper_.get());
  EXPECT_LT(Clock::now() - cancelled_at, 5s);
  EXPECT_STREQ(PQresultErrorField(cancelled, PG_DIAG_SQLSTATE), "57014")
      << PQresultErrorMessage(cancelled);
  PQclear(cancelled);
  while (PGresult* extra = PQgetResult(keeper_.get())) {
    PQclear(extra);
  }
  expect_keeper_works();
}

// An unknown message type after login, with no backend leased and inside a transaction:
// FATAL 08P01 "invalid frontend message type 122" (PostgreSQL's own words), a prompt
// close, and the abandoned transaction does not stay open on the server.
TEST_F(BadInputTest, UnknownMessageTypeAfterLoginIsFatal08P01) {
  auto check = [&](RawConn& conn, const std::string& where) {
    SCOPED_TRACE(where);
    ASSERT_TRUE(conn.send(message('z', "")));
    const Drained d = conn.read_until_closed();
    EXPECT_TRUE(d.closed) << printable(d.bytes);
    EXPECT_LT(d.elapsed, kPromptClose);
    const auto messages = parse_messages(d.bytes);
    ASSERT_EQ(messages.size(), 1u) << printable(d.bytes);
    EXPECT_EQ(messages[0].type, 'E');
    EXPECT_EQ(messages[0].field('S'), "FATAL") << messages[0];
    EXPECT_EQ(messages[0].field('C'), "08P01") << messages[0];
    EXPECT_EQ(messages[0].field('M'), "invalid frontend message type 122") << messages[0];
  };

  {
    RawConn idle = raw();
    ASSERT_TRUE(raw_login(idle, "trusty", "app"));
    check(idle, "right after login");
  }
  expect_keeper_works();
  {
    RawConn in_tx = raw();
    ASSERT_TRUE(raw_login(in_tx, "trusty", "app"));
    const auto begun = raw_query(in_tx, "BEGIN; SELECT 1");
    ASSERT_FALSE(begun.empty());
    ASSERT_EQ(begun.back().type, 'Z');
    ASSERT_EQ(begun.back().body, "T") << "in a transaction block";
    check(in_tx, "inside a transaction");
  }
  expect_keeper_works();

  // The server session of the broken client is not left idle in transaction.
  auto su = connect(pg().superuser_conninfo(Node::Primary));
  ASSERT_TRUE(su) << su.error;
  const auto deadline = Clock::now() + 3s;
  std::string open_tx = "?";
  while (Clock::now() < deadline) {
    open_tx = query_value(su.conn,
                          "SELECT count(*) FROM pg_stat_activity WHERE usename = "
                          "'trusty' AND state LIKE 'idle in transaction%'")
                  .value_or("?");
    if (open_tx == "0") {
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(open_tx, "0");
  RawConn again = raw();
  ASSERT_TRUE(raw_login(again, "trusty", "app"));
  EXPECT_EQ(first_value(raw_query(again, "SELECT 'pool still fine'")), "pool still fine");

  // The reference: PostgreSQL says the same on its Unix socket.
  RawConn reference = RawConn::primary_unix();
  ASSERT_TRUE(raw_login(reference, "postgres", "postgres"));
  ASSERT_TRUE(reference.send(message('z', "")));
  const auto ref = parse_messages(reference.read_until_closed().bytes);
  ASSERT_EQ(ref.size(), 1u);
  EXPECT_EQ(ref[0].field('C'), "08P01");
  EXPECT_EQ(ref[0].field('M'), "invalid frontend message type 122");
}

// max_message_size = 1 MiB: a Query whose length field is exactly 1 MiB runs; one byte
// more, or a length near 2^31, is FATAL 08P01 as soon as the header arrives.
TEST_F(BadInputTest, MessageOverMaxMessageSizeIsFatal08P01) {
  {
    RawConn conn = raw();
    ASSERT_TRUE(raw_login(conn, "trusty", "app"));
    const std::string prefix = "SELECT length('";
    const std::string suffix = "')";
    // length field = 4 + sql + NUL = kMaxMessageSize
    const std::size_t fill = kMaxMessageSize - 4 - 1 - prefix.size() - suffix.size();
    const auto answer = raw_query(conn, prefix + std::string(fill, 'x') + suffix);
    EXPECT_EQ(first_value(answer), std::to_string(fill));
    EXPECT_EQ(first_value(raw_query(conn, "SELECT 'next'")), "next");
  }
  expect_keeper_works();

  for (const std::uint32_t length : {kMaxMessageSize + 1, 0x7fffffffu}) {
    SCOPED_TRACE("length " + std::to_string(length));
    RawConn conn = raw();
    ASSERT_TRUE(raw_login(conn, "trusty", "app"));
    // Only the header and a little of the body: the length alone must be enough.
    ASSERT_TRUE(conn.send("Q" + be32(length) + "SELECT length('xxxx"));
    const Drained d = conn.read_until_closed();
    EXPECT_TRUE(d.closed) << printable(d.bytes);
    EXPECT_LT(d.elapsed, kPromptClose);
    const auto messages = parse_messages(d.bytes);
    ASSERT_EQ(messages.size(), 1u) << printable(d.bytes);
    EXPECT_EQ(messages[0].field('S'), "FATAL") << messages[0];
    EXPECT_EQ(messages[0].field('C'), "08P01") << messages[0];
    expect_keeper_works();
  }

  // A length below 4 is impossible: closed (PostgreSQL closes silently) or 08P01.
  RawConn conn = raw();
  ASSERT_TRUE(raw_login(conn, "trusty", "app"));
  ASSERT_TRUE(conn.send("Q" + be32(3)));
  EXPECT_TRUE(closed_promptly(conn.read_until_closed(), {"08P01"}));
  expect_keeper_works();
}

// ---- The command line ----------------------------------------------------------------------

class CommandLineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PgmuxProcess::binary_exists()) {
      GTEST_SKIP() << "pgmux binary " << PgmuxProcess::binary_path() << " not built";
    }
    dir_ = std::filesystem::temp_directory_path() /
           ("pgmux-badcfg-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  // `pgmux --check-config PATH` with stdout thrown away: output is stderr only.
  static CommandResult check_config(const std::string& path) {
    return run_command({"sh", "-c", "exec \"$0\" --check-config \"$1\" >/dev/null",
                        PgmuxProcess::binary_path(), path});
  }

  // Exit status 2 and stderr naming PATH:LINE:COL and the problem.
  void expect_rejected(const std::string& name, const std::string& text, int line, int column,
                       const std::string& problem) {
    SCOPED_TRACE(name);
    const std::string path = write(name, text);
    const CommandResult result = check_config(path);
    EXPECT_EQ(result.exit_code, 2) << result.output;
    const std::string where =
        path + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
    EXPECT_NE(result.output.find(where + problem), std::string::npos)
        << "want '" << where << problem << "' in:\n"
        << result.output;
  }

  std::filesystem::path dir_;
};

constexpr std::string_view kValidTail = R"(
[databases.app]
primary = "127.0.0.1:5432"

[users.app]
password = "secret"
)";

// An unknown key is named with its position.
TEST_F(CommandLineTest, CheckConfigRejectsUnknownKey) {
  expect_rejected("unknown.toml",
                  "[pgmux]\nlisten = \"127.0.0.1:6432\"\nlissten = \"127.0.0.1:6433\"\n" +
                      std::string(kValidTail),
                  3, 1, "unknown key 'lissten' in [pgmux]");
}

// A value of the wrong type is named at the value.
TEST_F(CommandLineTest, CheckConfigRejectsWrongType) {
  expect_rejected(
      "wrong_type.toml",
      "[pgmux]\nlisten = \"127.0.0.1:6432\"\nworkers = \"four\"\n" + std::string(kValidTail), 3, 11,
      "'workers' must be an integer, got string");
}

// A database without a primary is named at its table.
TEST_F(CommandLineTest, CheckConfigRejectsMissingPrimary) {
  expect_rejected("no_primary.toml",
                  "[pgmux]\nlisten = \"127.0.0.1:6432\"\n\n[databases.app]\ndbname = \"app\"\n"
                  "pool_size = 5\n\n[users.app]\npassword = \"secret\"\n",
                  4, 1, "[databases.app] is missing required key 'primary'");
}

// Addresses without a port, with a port out of range, or unparsable: named at the value.
TEST_F(CommandLineTest, CheckConfigRejectsBadAddress) {
  const std::string head = "[pgmux]\nlisten = \"127.0.0.1:6432\"\n\n[databases.app]\n";
  const std::string users = "\n[users.app]\npassword = \"secret\"\n";
  expect_rejected("port_range.toml", head + "primary = \"127.0.0.1:99999\"\n" + users, 5, 11,
                  "bad address '127.0.0.1:99999' in 'primary'");
  expect_rejected("no_port.toml", head + "primary = \"db.example\"\n" + users, 5, 11,
                  "bad address 'db.example' in 'primary'");
  expect_rejected("listen.toml", "[pgmux]\nlisten = \"localhost:port\"\n" + std::string(kValidTail),
                  2, 10, "bad address 'localhost:port' in 'listen'");
}

// A TOML syntax error and a missing file are exit status 2 as well.
TEST_F(CommandLineTest, CheckConfigRejectsSyntaxErrorAndMissingFile) {
  const std::string path = write("syntax.toml", "[pgmux]\nlisten = \"127.0.0.1:6432\n");
  const CommandResult syntax = check_config(path);
  EXPECT_EQ(syntax.exit_code, 2) << syntax.output;
  EXPECT_NE(syntax.output.find(path + ":2:"), std::string::npos) << syntax.output;

  const std::string missing = (dir_ / "missing.toml").string();
  const CommandResult absent = check_config(missing);
  EXPECT_EQ(absent.exit_code, 2) << absent.output;
  EXPECT_NE(absent.output.find(missing), std::string::npos) << absent.output;
}

// Valid files (the documented example, and the tests' typical config) exit 0.
TEST_F(CommandLineTest, CheckConfigAcceptsValidFiles) {
  std::string typical = PgmuxProcess::typical_config();
  for (const auto& [from, to] : {std::pair{std::string("@LISTEN_PORT@"), std::string("7000")},
                                 {"@PRIMARY_PORT@", "5432"},
                                 {"@REPLICA_PORT@", "5433"}}) {
    for (auto pos = typical.find(from); pos != std::string::npos; pos = typical.find(from)) {
      typical.replace(pos, from.size(), to);
    }
  }
  for (const std::string& path :
       {PostgresEnvironment::source_dir() + "/etc/pgmux.toml", write("typical.toml", typical)}) {
    const CommandResult result = run_command({PgmuxProcess::binary_path(), "--check-config", path});
    EXPECT_EQ(result.exit_code, 0) << path << ":\n" << result.output;
    EXPECT_NE(result.output.find("configuration is valid"), std::string::npos) << result.output;
  }
}

// --version and --help exit 0; an unknown argument is a usage error (2).
TEST_F(CommandLineTest, VersionHelpAndBadArguments) {
  const CommandResult version = run_command({PgmuxProcess::binary_path(), "--version"});
  EXPECT_EQ(version.exit_code, 0) << version.output;
  EXPECT_TRUE(std::regex_match(version.output, std::regex(R"(pgmux \d+\.\d+\.\d+\S*\n)")))
      << version.output;
  const CommandResult help = run_command({PgmuxProcess::binary_path(), "--help"});
  EXPECT_EQ(help.exit_code, 0) << help.output;
  EXPECT_NE(help.output.find("Usage: pgmux --config FILE"), std::string::npos) << help.output;
  EXPECT_NE(help.output.find("--check-config"), std::string::npos) << help.output;
  const CommandResult bad = run_command({PgmuxProcess::binary_path(), "--no-such-option"});
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--no-such-option"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace pooler::integration
