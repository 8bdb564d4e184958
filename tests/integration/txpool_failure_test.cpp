// Transaction pooling when things go wrong (issue 3): backends killed, PostgreSQL
// restarted under pgmux, every timeout, and the pool size limits. The real pgmux binary
// against the fixture's PostgreSQL 15; backends are counted in pg_stat_activity on the
// primary (user app) from a superuser connection, which is not one of them.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "tests/integration/pg_client.h"
#include "tests/integration/pgmux_process.h"
#include "tests/integration/postgres_environment.h"
#include "tests/integration/test_util.h"

namespace pooler::integration {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Collects what libpq passes to the notice receiver: an ErrorResponse that arrives
// while the client is idle (a timeout closing it) is reported that way.
void capture_notices(PGconn* c, std::string* sink) {
  PQsetNoticeReceiver(
      c,
      [](void* arg, const PGresult* r) {
        auto* s = static_cast<std::string*>(arg);
        if (const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE)) {
          *s += std::string("[") + state + "] ";
        }
        *s += PQresultErrorMessage(r);
      },
      sink);
}

// Waits, without sending anything, until the server closes `c`; false at the deadline.
bool wait_closed_by_server(PGconn* c, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    pollfd p{PQsocket(c), POLLIN, 0};
    ::poll(&p, 1, 50);
    const bool alive = PQconsumeInput(c) != 0;
    (void)PQisBusy(c);  // parses what arrived: an ErrorResponse goes to the notice receiver
    if (!alive) {
      return true;
    }
  }
  return false;
}

// ---- Raw sockets (for what libpq cannot do: never send a startup packet) --------------

// The fields of the first ErrorResponse ('E') in `bytes`, by field code ('C', 'M', ...).
std::map<char, std::string> error_fields(const std::string& bytes) {
  std::map<char, std::string> fields;
  for (std::size_t at = 0; at + 5 <= bytes.size();) {
    std::uint32_t raw_len = 0;
    std::memcpy(&raw_len, &bytes[at + 1], 4);
    const auto len = static_cast<std::size_t>(ntohl(raw_len));
    if (bytes[at] == 'E') {
      for (std::size_t p = at + 5; p < bytes.size() && p < at + 1 + len && bytes[p] != '\0';) {
        const char code = bytes[p];
        const auto end = bytes.find('\0', p + 1);
        fields[code] = bytes.substr(p + 1, end - p - 1);
        p = end + 1;
      }
      return fields;
    }
    at += 1 + len;
  }
  return fields;
}

// ---- Fixture -------------------------------------------------------------------------

PgmuxConfigOptions pool(int size, std::string pgmux_extra = "", std::string database_extra = "") {
  PgmuxConfigOptions o;
  o.pool_size = size;
  o.replica = false;
  o.pgmux_extra = std::move(pgmux_extra);
  o.database_extra = std::move(database_extra);
  return o;
}

class TxPoolFailureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PgmuxProcess::binary_exists()) {
      GTEST_SKIP() << "pgmux not built: " << PgmuxProcess::binary_path();
    }
    ASSERT_TRUE(reconnect_superuser());
    // The backends of an earlier test's pgmux are gone, so the counts below are ours.
    ASSERT_TRUE(wait_for([&] { return app_backends() == 0; }, 5s)) << app_backends();
  }

  bool reconnect_superuser() {
    auto su = connect(pg().superuser_conninfo(Node::Primary, "app"));
    EXPECT_TRUE(su) << su.error;
    su_ = std::move(su.conn);
    return su_ != nullptr;
  }

  ::testing::AssertionResult start(const PgmuxConfigOptions& options) {
    return pgmux_.start(PgmuxProcess::typical_config(options));
  }

  PgConn client(const std::string& extra = "") {
    auto c = connect(pgmux_.conninfo() + " " + extra);
    EXPECT_TRUE(c) << c.error << "\n" << pgmux_.log_tail();
    return std::move(c.conn);
  }

  int app_backends(const std::string& where = "true") {
    return integration::app_backends(su_, where);
  }
  std::string activity() { return app_activity(su_); }

  PgmuxProcess pgmux_;
  PgConn su_;
};

// ---- Backend failure -----------------------------------------------------------------

// A backend terminated during the client's pg_sleep(5): the client gets an error at once,
// and the next client gets a fresh, working backend from the refilled pool of one.
TEST_F(TxPoolFailureTest, KilledBackendGivesErrorAndPoolRefills) {
  ASSERT_TRUE(start(pool(1)));
  auto victim = client(), bystander = client();
  ASSERT_TRUE(victim && bystander);
  const auto pid = query_value(victim, "SELECT pg_backend_pid()");
  ASSERT_TRUE(pid);
  ASSERT_EQ(PQsendQuery(victim.get(), "select pg_sleep(5)"), 1);
  ASSERT_TRUE(wait_for([&] { return app_backends("state = 'active'") == 1; }, 5s)) << activity();
  const auto killed = Clock::now();
  ASSERT_EQ(query_value(su_, "SELECT pg_terminate_backend(" + *pid + ")"), "t");
  const auto res = finish_query(victim.get(), 3s);
  ASSERT_TRUE(res.has_value()) << "the client hangs after its backend died";
  EXPECT_FALSE(res->ok());
  EXPECT_NE(res->error, "");
  EXPECT_LT(seconds_since(killed), 1.0);

  auto next = client();
  ASSERT_TRUE(next);
  for (PGconn* c : {bystander.get(), next.get()}) {
    const auto t = Clock::now();
    const auto fresh = exec(c, "SELECT pg_backend_pid()");
    ASSERT_TRUE(fresh.ok()) << fresh << "\n" << pgmux_.log_tail(10);
    EXPECT_NE(fresh.first(), *pid);
    EXPECT_LT(seconds_since(t), 1.0);
  }
  EXPECT_EQ(app_backends(), 1);
}

// Restarts the primary if a test leaves it stopped.
struct PrimaryRestarter {
  bool stopped = false;
  ~PrimaryRestarter() {
    if (stopped) {
      pg().run_ctl(Node::Primary, {"start", "-w"});
    }
  }
};

// PostgreSQL stops under pgmux: the query in flight and queries meanwhile fail with an
// error (no hang); once it accepts connections again, service resumes within 2 s without
// restarting pgmux, also for a client that stayed connected and idle.
TEST_F(TxPoolFailureTest, PostgresRestartIsSurvived) {
  ASSERT_TRUE(start(pool(2)));
  auto running = client(), idle = client();
  ASSERT_TRUE(running && idle);
  ASSERT_EQ(query_value(idle, "SELECT 1"), "1");
  ASSERT_EQ(PQsendQuery(running.get(), "select pg_sleep(30)"), 1);
  ASSERT_TRUE(wait_for([&] { return app_backends("state = 'active'") == 1; }, 5s)) << activity();

  PrimaryRestarter restarter;
  su_.reset();
  auto stopped = pg().run_ctl(Node::Primary, {"stop", "-m", "fast"});
  ASSERT_TRUE(stopped.ok()) << stopped.output;
  restarter.stopped = true;
  const auto in_flight = finish_query(running.get(), 5s);
  ASSERT_TRUE(in_flight.has_value()) << "the query in flight hangs";
  EXPECT_FALSE(in_flight->ok());

  // A prober retries a query (reconnecting when needed) from now on.
  std::atomic<bool> stop = false;
  std::atomic<std::int64_t> first_ok_ns = 0;
  std::atomic<int> failures = 0;
  std::atomic<double> slowest_failure = 0;
  std::atomic<bool> restarted = false;
  std::thread prober([&] {
    PgConn c;
    while (!stop && first_ok_ns == 0) {
      if (!c) {
        auto r = connect(pgmux_.conninfo());
        c = std::move(r.conn);
      }
      const auto t = Clock::now();
      const bool was_restarted = restarted;
      if (c && exec(c, "SELECT 1").ok()) {
        if (was_restarted) {
          first_ok_ns = Clock::now().time_since_epoch().count();
        }
      } else {
        ++failures;
        slowest_failure = std::max(slowest_failure.load(), seconds_since(t));
        if (c && PQstatus(c.get()) != CONNECTION_OK) {
          c.reset();
        }
      }
      std::this_thread::sleep_for(50ms);
    }
  });
  std::this_thread::sleep_for(1500ms);  // long enough for reconnect attempts to back off
  const int down_failures = failures;
  std::thread starter([] { pg().run_ctl(Node::Primary, {"start", "-w"}); });
  Clock::time_point accepting;
  const bool up = wait_for([&] {
    auto c = connect(pg().superuser_conninfo(Node::Primary));
    if (c) {
      accepting = Clock::now();
      restarted = true;
    }
    return static_cast<bool>(c);
  }, 30s);
  starter.join();
  restarter.stopped = !up;
  ASSERT_TRUE(up) << pg().log_tail(Node::Primary);
  wait_for([&] { return first_ok_ns != 0; }, 5s);
  stop = true;
  prober.join();
  EXPECT_GT(down_failures, 0) << "queries while PostgreSQL was down did not fail";
  EXPECT_LT(slowest_failure.load(), 3.0) << "a failing query took this long (s)";
  ASSERT_NE(first_ok_ns, 0) << "no service within 5 s of PostgreSQL accepting connections\n"
                            << pgmux_.log_tail(20);
  const double resumed = std::chrono::duration<double>(
                             Clock::time_point(Clock::duration(first_ok_ns.load())) - accepting)
                             .count();
  EXPECT_LT(resumed, 2.0) << "service resumed this long after PostgreSQL accepted connections";
  RecordProperty("resumed_after_ms", static_cast<int>(resumed * 1000));
  // The client that stayed idle across the restart just goes on.
  EXPECT_EQ(query_value(idle, "SELECT 'idle client'"), "idle client") << pgmux_.log_tail(10);
  EXPECT_TRUE(pgmux_.running());
  ASSERT_TRUE(reconnect_superuser());
}

// ---- Timeouts ------------------------------------------------------------------------

// With the only backend in another client's transaction, a query waits query_wait_timeout
// (1 s) and gets an error naming it; the connection stays usable.
TEST_F(TxPoolFailureTest, QueryWaitTimeout) {
  ASSERT_TRUE(start(pool(1, "query_wait_timeout = 1")));
  auto holder = client(), waiter = client();
  ASSERT_TRUE(holder && waiter);
  ASSERT_TRUE(exec(holder, "BEGIN").ok());
  auto t = Clock::now();
  const auto simple = exec(waiter, "SELECT 1");
  EXPECT_FALSE(simple.ok());
  EXPECT_NE(simple.error.find("query_wait_timeout"), std::string::npos) << simple;
  EXPECT_GT(seconds_since(t), 0.9);
  EXPECT_LT(seconds_since(t), 2.5);
  t = Clock::now();
  const auto extended = exec_params(waiter.get(), "SELECT $1::int", {"5"});
  EXPECT_NE(extended.error.find("query_wait_timeout"), std::string::npos) << extended;
  EXPECT_GT(seconds_since(t), 0.9);
  ASSERT_TRUE(exec(holder, "COMMIT").ok());
  EXPECT_EQ(query_value(waiter, "SELECT 'after'"), "after");
  EXPECT_EQ(exec_params(waiter.get(), "SELECT $1::int", {"5"}).first(), "5");
}

// A client idle inside a transaction longer than idle_transaction_timeout is closed with
// an error naming it; its transaction is rolled back and the backend reused. A client
// idle outside a transaction is left alone.
TEST_F(TxPoolFailureTest, IdleTransactionTimeout) {
  ASSERT_TRUE(start(pool(1, "idle_transaction_timeout = 0.5")));
  ASSERT_TRUE(exec(su_, "CREATE TABLE txfail_idle (v int); "
                        "GRANT ALL ON txfail_idle TO app").ok());
  auto patient = client(), idler = client();
  ASSERT_TRUE(patient && idler);
  ASSERT_EQ(query_value(patient, "SELECT 1"), "1");
  std::string notices;
  capture_notices(idler.get(), &notices);
  ASSERT_TRUE(exec(idler, "BEGIN; INSERT INTO txfail_idle VALUES (1)").ok());
  const auto pid = query_value(idler, "SELECT pg_backend_pid()");
  const auto t = Clock::now();
  ASSERT_TRUE(wait_closed_by_server(idler.get(), 4s)) << "not closed";
  EXPECT_GT(seconds_since(t), 0.4);
  EXPECT_NE(notices.find("idle_transaction_timeout"), std::string::npos)
      << notices << PQerrorMessage(idler.get());
  EXPECT_TRUE(wait_for([&] { return app_backends("state LIKE 'idle in transaction%'") == 0; }, 2s))
      << activity();
  EXPECT_EQ(query_value(su_, "SELECT count(*) FROM txfail_idle"), "0");
  EXPECT_EQ(query_value(patient, "SELECT pg_backend_pid()"), pid);
  EXPECT_TRUE(exec(su_, "DROP TABLE txfail_idle").ok());
}

// A logged-in client that sends nothing for client_idle_timeout is closed with an error
// naming it, while a client sending a query every 200 ms stays.
TEST_F(TxPoolFailureTest, ClientIdleTimeout) {
  ASSERT_TRUE(start(pool(2, "client_idle_timeout = 0.5")));
  auto sleeper = client(), chatty = client();
  ASSERT_TRUE(sleeper && chatty);
  std::string notices;
  capture_notices(sleeper.get(), &notices);
  ASSERT_EQ(query_value(sleeper, "SELECT 1"), "1");
  std::atomic<int> chatty_failures = 0;
  std::thread talker([&] {
    for (int i = 0; i < 12; ++i) {
      chatty_failures += exec(chatty, "SELECT 1").ok() ? 0 : 1;
      std::this_thread::sleep_for(200ms);
    }
  });
  const auto t = Clock::now();
  const bool closed = wait_closed_by_server(sleeper.get(), 4s);
  talker.join();
  ASSERT_TRUE(closed) << "the idle client was not closed";
  EXPECT_GT(seconds_since(t), 0.4);
  EXPECT_NE(notices.find("client_idle_timeout"), std::string::npos)
      << notices << PQerrorMessage(sleeper.get());
  EXPECT_EQ(chatty_failures, 0);
  EXPECT_EQ(query_value(chatty, "SELECT 'alive'"), "alive");
}

// A connection that never sends a startup packet, and one that stops in the middle of
// authentication, are closed after client_login_timeout with an ErrorResponse naming it.
TEST_F(TxPoolFailureTest, ClientLoginTimeout) {
  ASSERT_TRUE(start(pool(1, "client_login_timeout = 0.5")));
  for (const bool send_startup : {false, true}) {
    const int fd = connect_loopback(pgmux_.port());
    ASSERT_GE(fd, 0);
    if (send_startup) {
      const std::string packet = startup_packet({{"user", "app"}, {"database", "app"}});
      ASSERT_EQ(::send(fd, packet.data(), packet.size(), 0), static_cast<ssize_t>(packet.size()));
    }
    const auto t = Clock::now();
    bool closed = false;
    const std::string bytes = read_socket(fd, 4s, &closed);
    ::close(fd);
    EXPECT_TRUE(closed) << "startup=" << send_startup;
    EXPECT_GT(seconds_since(t), 0.4);
    const auto fields = error_fields(bytes);
    ASSERT_TRUE(fields.contains('M')) << "no ErrorResponse; startup=" << send_startup;
    EXPECT_NE(fields.at('M').find("client_login_timeout"), std::string::npos) << fields.at('M');
  }
  // A client that logs in normally is not affected.
  auto c = client();
  ASSERT_TRUE(c);
  std::this_thread::sleep_for(1200ms);
  EXPECT_EQ(query_value(c, "SELECT 1"), "1");
}

// A database whose server accepts TCP connections but never answers: the client gets an
// error naming server_connect_timeout (0.5 s) instead of waiting forever.
TEST_F(TxPoolFailureTest, ServerConnectTimeout) {
  const int silent = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(silent, 16), 0);  // the kernel completes handshakes; nobody answers
  socklen_t len = sizeof addr;
  ::getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  PgmuxConfigOptions options = pool(1);
  options.extra = "[databases.silent]\ndbname = \"app\"\nprimary = \"127.0.0.1:" +
                  std::to_string(port) + "\"\npool_size = 1\nserver_connect_timeout = 0.5\n";
  ASSERT_TRUE(start(options));
  for (int attempt = 0; attempt < 2; ++attempt) {
    const auto t = Clock::now();
    auto c = connect(pgmux_.conninfo("app", "secret", "silent"));
    std::string error = c ? "" : c.error;
    if (c) {  // logged in anyway: then the first query must fail
      error = exec(c.conn, "SELECT 1").error;
    }
    EXPECT_NE(error.find("server_connect_timeout"), std::string::npos)
        << "attempt " << attempt << ": " << error << "\n" << pgmux_.log_tail(10);
    EXPECT_GT(seconds_since(t), 0.4);
    EXPECT_LT(seconds_since(t), 3.0);
  }
  ::close(silent);
  // The other databases are not affected.
  auto ok = client();
  ASSERT_TRUE(ok);
  EXPECT_EQ(query_value(ok, "SELECT 1"), "1");
}

// server_lifetime = 1 s: the backend is replaced between transactions (its pid changes
// and the old one leaves pg_stat_activity), never in the middle of one.
TEST_F(TxPoolFailureTest, ServerLifetime) {
  ASSERT_TRUE(start(pool(1, "server_lifetime = 1")));
  auto c = client();
  ASSERT_TRUE(c);
  ASSERT_TRUE(exec(c, "BEGIN").ok());
  const auto in_tx = query_value(c, "SELECT pg_backend_pid()");
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(query_value(c, "SELECT pg_backend_pid()"), in_tx) << "replaced inside a transaction";
  ASSERT_TRUE(exec(c, "COMMIT").ok());
  std::vector<std::string> pids;
  const auto end = Clock::now() + 3500ms;
  while (Clock::now() < end) {
    const auto pid = query_value(c, "SELECT pg_backend_pid()");
    ASSERT_TRUE(pid);
    if (pids.empty() || pids.back() != *pid) {
      pids.push_back(*pid);
    }
    EXPECT_LE(app_backends(), 1);
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_GE(pids.size(), 3u) << "pids seen: " << pids.size();
  EXPECT_EQ(std::set(pids.begin(), pids.end()).size(), pids.size()) << "a closed pid came back";
  EXPECT_EQ(app_backends("pid = " + *in_tx), 0);
}

// server_idle_timeout = 1 s: backends left unused close (pg_stat_activity empties), not
// before about a second.
TEST_F(TxPoolFailureTest, ServerIdleTimeout) {
  ASSERT_TRUE(start(pool(3, "server_idle_timeout = 1")));
  {
    std::vector<PgConn> clients;
    for (int i = 0; i < 3; ++i) {
      clients.push_back(client());
      ASSERT_TRUE(clients.back());
      ASSERT_TRUE(exec(clients.back(), "BEGIN").ok());
    }
    for (auto& c : clients) {
      ASSERT_TRUE(exec(c, "COMMIT").ok());
    }
  }
  const auto t = Clock::now();
  EXPECT_EQ(app_backends(), 3);
  EXPECT_TRUE(wait_for([&] { return app_backends() == 0; }, 4s)) << activity();
  EXPECT_GT(seconds_since(t), 0.7);
}

// ---- Pool sizes ----------------------------------------------------------------------

// min_pool_size = 3: with no clients left, three backends stay open, also after a burst
// to five that server_idle_timeout trims back.
TEST_F(TxPoolFailureTest, MinPoolSizeKeepsBackendsWarm) {
  ASSERT_TRUE(start(pool(5, "server_idle_timeout = 0.5", "min_pool_size = 3")));
  {
    auto first = client();
    ASSERT_TRUE(first);
    ASSERT_EQ(query_value(first, "SELECT 1"), "1");
  }
  EXPECT_TRUE(wait_for([&] { return app_backends() == 3; }, 3s)) << activity();
  {
    std::vector<PgConn> burst;
    for (int i = 0; i < 5; ++i) {
      burst.push_back(client());
      ASSERT_TRUE(burst.back());
      ASSERT_TRUE(exec(burst.back(), "BEGIN").ok());
    }
    EXPECT_EQ(app_backends(), 5);
    for (auto& c : burst) {
      ASSERT_TRUE(exec(c, "COMMIT").ok());
    }
  }
  EXPECT_TRUE(wait_for([&] { return app_backends() == 3; }, 4s)) << activity();
  for (int i = 0; i < 8; ++i) {
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(app_backends(), 3) << "with no clients, at " << i * 200 << " ms";
  }
}

// reserve_pool_size = 1 after reserve_pool_timeout = 0.5 s: a client waiting that long
// gets an extra backend; pool_size + reserve is the ceiling.
TEST_F(TxPoolFailureTest, ReservePoolOpensForWaitingClients) {
  ASSERT_TRUE(start(pool(1, "", "reserve_pool_size = 1\nreserve_pool_timeout = 0.5")));
  auto a = client(), b = client(), c = client();
  ASSERT_TRUE(a && b && c);
  ASSERT_TRUE(exec(a, "BEGIN").ok());
  const auto a_pid = query_value(a, "SELECT pg_backend_pid()");
  const auto t = Clock::now();
  ASSERT_EQ(PQsendQuery(b.get(), "SELECT pg_backend_pid()"), 1);
  std::this_thread::sleep_for(250ms);
  EXPECT_EQ(app_backends(), 1) << "the reserve opened before reserve_pool_timeout";
  const auto got = finish_query(b.get(), 3s);
  ASSERT_TRUE(got.has_value()) << "no reserve backend";
  ASSERT_TRUE(got->ok()) << *got;
  EXPECT_GT(seconds_since(t), 0.4);
  EXPECT_LT(seconds_since(t), 2.0);
  EXPECT_NE(got->first(), a_pid.value_or(""));
  EXPECT_EQ(app_backends(), 2);
  // Both backends busy: a third client waits, and no third backend opens.
  ASSERT_TRUE(exec(b, "BEGIN").ok());
  ASSERT_EQ(PQsendQuery(c.get(), "SELECT 'c ran'"), 1);
  EXPECT_EQ(finish_query(c.get(), 1200ms), std::nullopt) << "ran beyond pool_size + reserve";
  EXPECT_EQ(app_backends(), 2);
  ASSERT_TRUE(exec(a, "COMMIT").ok());
  const auto c_result = finish_query(c.get(), 2s);
  ASSERT_TRUE(c_result.has_value());
  EXPECT_EQ(c_result->first(), "c ran");
  EXPECT_TRUE(exec(b, "COMMIT").ok());
}

// max_client_conn = 3: a fourth client is refused with SQLSTATE 53300 (seen on the wire
// and by libpq); once one leaves, a new one gets in.
TEST_F(TxPoolFailureTest, MaxClientConnRefusesExtraClient) {
  ASSERT_TRUE(start(pool(2, "max_client_conn = 3")));
  std::vector<PgConn> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(client());
    ASSERT_TRUE(clients.back());
    ASSERT_EQ(query_value(clients.back(), "SELECT 1"), "1");
  }
  const int fd = connect_loopback(pgmux_.port());
  ASSERT_GE(fd, 0);
  const std::string packet = startup_packet({{"user", "app"}, {"database", "app"}});
  ::send(fd, packet.data(), packet.size(), MSG_NOSIGNAL);
  bool closed = false;
  const auto fields = error_fields(read_socket(fd, 3s, &closed));
  ::close(fd);
  EXPECT_TRUE(closed);
  EXPECT_EQ(fields.contains('C') ? fields.at('C') : "none", "53300");
  auto refused = connect(pgmux_.conninfo());
  EXPECT_FALSE(refused);
  EXPECT_NE(refused.error.find("max_client_conn"), std::string::npos) << refused.error;
  clients.pop_back();
  EXPECT_TRUE(wait_for([&] { return static_cast<bool>(connect(pgmux_.conninfo())); }, 2s));
  for (auto& c : clients) {
    EXPECT_EQ(query_value(c, "SELECT 1"), "1");
  }
}

}  // namespace
}  // namespace pooler::integration
