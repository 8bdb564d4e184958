// Limits against one noisy address or user (issue 7): connections per address and per
// user, a connection rate per address, failed logins per address, and a per-user query
// rate whose excess waits, then fails with SQLSTATE 53400. Each refusal names its limit;
// everyone else keeps working. Real pgmux, real PostgreSQL, libpq clients.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
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

std::string config_with(const std::string& pgmux_extra, int workers = 1) {
  PgmuxConfigOptions o;
  o.workers = workers;
  o.log_level = "info";
  o.pgmux_extra = pgmux_extra;
  return PgmuxProcess::typical_config(o);
}

TEST(LimitsTest, ConnectionsPerAddress) {
  PgmuxProcess pgmux;
  ASSERT_TRUE(pgmux.start(config_with("max_client_conn_per_address = 2", 2)));
  auto a = connect(pgmux.conninfo());
  auto b = connect(pgmux.conninfo("other", "other_secret", "other"));
  ASSERT_TRUE(a && b) << a.error << b.error;
  auto c = connect(pgmux.conninfo());
  ASSERT_FALSE(c);
  EXPECT_TRUE(contains(c.error, "too many connections from 127.0.0.1")) << c.error;
  EXPECT_TRUE(contains(c.error, "max_client_conn_per_address = 2")) << c.error;
  EXPECT_EQ(query_value(a.conn, "SELECT 1"), "1") << "the admitted clients keep working";
  b.conn.reset();
  // The closed connection's place is free again (released when pgmux sees it close).
  bool admitted = false;
  for (int i = 0; i < 50 && !admitted; ++i) {
    admitted = static_cast<bool>(connect(pgmux.conninfo()));
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(admitted) << pgmux.log_tail();
}

TEST(LimitsTest, ConnectionsPerUserWithOverride) {
  PgmuxProcess pgmux;
  std::string config = config_with("max_user_client_connections = 1");
  // [users.other] may have two.
  const auto at = config.find("[users.other]");
  ASSERT_NE(at, std::string::npos) << config;
  config.insert(config.find('\n', at) + 1, "max_user_client_connections = 2\n");
  ASSERT_TRUE(pgmux.start(config));
  auto app1 = connect(pgmux.conninfo());
  ASSERT_TRUE(app1) << app1.error;
  auto app2 = connect(pgmux.conninfo());
  ASSERT_FALSE(app2);
  EXPECT_TRUE(contains(app2.error, "too many connections for user \"app\"")) << app2.error;
  EXPECT_TRUE(contains(app2.error, "max_user_client_connections = 1")) << app2.error;
  auto other1 = connect(pgmux.conninfo("other", "other_secret", "other"));
  auto other2 = connect(pgmux.conninfo("other", "other_secret", "other"));
  EXPECT_TRUE(other1 && other2) << other1.error << other2.error;
  auto other3 = connect(pgmux.conninfo("other", "other_secret", "other"));
  EXPECT_FALSE(other3);
  // A wrong password is still a wrong password, not a limit.
  auto wrong = connect(pgmux.conninfo("app", "not-it"));
  ASSERT_FALSE(wrong);
  EXPECT_TRUE(contains(wrong.error, "password authentication failed")) << wrong.error;
  app1.conn.reset();
  bool admitted = false;
  for (int i = 0; i < 50 && !admitted; ++i) {
    admitted = static_cast<bool>(connect(pgmux.conninfo()));
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(admitted) << "the user's place is free once its client left";
}

TEST(LimitsTest, ConnectionRatePerAddress) {
  PgmuxProcess pgmux;
  ASSERT_TRUE(pgmux.start(config_with("max_connection_rate_per_address = 5")));
  std::this_thread::sleep_for(1100ms);  // the start-up probe's connection: a full bucket again
  int ok = 0;
  int refused = 0;
  std::string error;
  for (int i = 0; i < 20; ++i) {
    auto c = connect(pgmux.conninfo());
    if (c) {
      ++ok;
    } else {
      ++refused;
      error = c.error;
    }
  }
  EXPECT_GE(ok, 5);
  EXPECT_LE(ok, 8) << "a burst of one second's worth, plus what refilled meanwhile";
  EXPECT_GE(refused, 12);
  EXPECT_TRUE(contains(error, "connecting too fast from 127.0.0.1")) << error;
  std::this_thread::sleep_for(1100ms);
  EXPECT_TRUE(connect(pgmux.conninfo())) << "the bucket refills";
}

// Failed logins block the address for the rest of the minute, whatever the next password.
// The error never tells a missing user from a wrong password.
TEST(LimitsTest, LoginFailuresPerAddress) {
  PgmuxProcess pgmux;
  ASSERT_TRUE(pgmux.start(config_with("max_login_failures_per_address = 3")));
  auto unknown = connect(pgmux.conninfo("nobody", "x"));
  auto wrong = connect(pgmux.conninfo("app", "not-it"));
  ASSERT_FALSE(unknown);
  ASSERT_FALSE(wrong);
  const auto strip_user = [](std::string e) {
    const auto q = e.find('"');
    return q == std::string::npos ? e : e.substr(0, q);
  };
  EXPECT_EQ(strip_user(unknown.error), strip_user(wrong.error));
  EXPECT_FALSE(connect(pgmux.conninfo("app", "still-not-it")));
  auto blocked = connect(pgmux.conninfo());
  ASSERT_FALSE(blocked) << "the fourth attempt, even with the right password";
  EXPECT_TRUE(contains(blocked.error, "too many failed logins from 127.0.0.1")) << blocked.error;
  EXPECT_TRUE(contains(pgmux.log_text(), "refused: too many failed logins")) << pgmux.log_tail();
}

// max_user_query_rate: a single client is slowed to the rate; several clients of the same
// user that wait longer than query_rate_wait get 53400, and other users are not slowed.
TEST(LimitsTest, QueryRatePerUser) {
  PgmuxProcess pgmux;
  ASSERT_TRUE(pgmux.start(config_with("max_user_query_rate = 50\nquery_rate_wait = 0.05")));
  {
    auto c = connect(pgmux.conninfo());
    ASSERT_TRUE(c) << c.error;
    const auto start = Clock::now();
    int failed = 0;
    for (int i = 0; i < 100; ++i) {
      failed += exec(c.conn, "SELECT 1").ok() ? 0 : 1;
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    EXPECT_EQ(failed, 0) << "one client waits at most 20 ms for each token";
    EXPECT_GE(elapsed, 0.9) << "100 queries at 50 per second after a burst of 50";
  }
  std::atomic<int> limited{0};
  std::atomic<int> other_failed{0};
  std::string error;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto c = connect(pgmux.conninfo());
      if (!c) {
        return;
      }
      for (int i = 0; i < 60; ++i) {
        auto r = exec(c.conn, "SELECT 1");
        if (!r.ok()) {
          EXPECT_EQ(r.sqlstate, "53400") << r;
          if (++limited == 1 && t == 0) {
            error = r.error;
          }
        }
      }
    });
  }
  threads.emplace_back([&] {
    auto c = connect(pgmux.conninfo("other", "other_secret", "other"));
    for (int i = 0; i < 200 && c; ++i) {
      other_failed += exec(c.conn, "SELECT 1").ok() ? 0 : 1;
    }
  });
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_GT(limited.load(), 0) << "four clients at once wait longer than query_rate_wait";
  EXPECT_EQ(other_failed.load(), 0) << "another user is not limited";
  EXPECT_TRUE(error.empty() || contains(error, "query rate limit of user \"app\"")) << error;
}

// A request waiting for its token can be cancelled like any running query.
TEST(LimitsTest, ThrottledRequestCanBeCancelled) {
  PgmuxProcess pgmux;
  ASSERT_TRUE(pgmux.start(config_with("max_user_query_rate = 1\nquery_rate_wait = 30")));
  auto c = connect(pgmux.conninfo());
  ASSERT_TRUE(c) << c.error;
  ASSERT_TRUE(exec(c.conn, "SELECT 1").ok());  // the burst's one token
  ASSERT_EQ(PQsendQuery(c.conn.get(), "SELECT 2"), 1);
  std::this_thread::sleep_for(100ms);  // it waits for the next token, a second away
  PGcancel* cancel = PQgetCancel(c.conn.get());
  char err[256];
  ASSERT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
  PQfreeCancel(cancel);
  PGresult* r = PQgetResult(c.conn.get());
  ASSERT_NE(r, nullptr);
  EXPECT_STREQ(PQresultErrorField(r, PG_DIAG_SQLSTATE), "57014");
  PQclear(r);
  while ((r = PQgetResult(c.conn.get())) != nullptr) {
    PQclear(r);
  }
  std::this_thread::sleep_for(1100ms);
  EXPECT_EQ(query_value(c.conn, "SELECT 3"), "3") << "the session goes on";
}

}  // namespace
}  // namespace pooler::integration
