// Read/write routing (issue 4) against the fixture's real primary and streaming replica.
// Placement is proven by PostgreSQL itself: inet_server_port() and pg_is_in_recovery() in
// the result say which server ran the statement, not pgmux's own account.

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "tests/integration/pg_client.h"
#include "tests/integration/pgmux_process.h"
#include "tests/integration/postgres_environment.h"
#include "tests/integration/test_util.h"

namespace pooler::integration {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Each probe is a query through pgmux: poll every 50 ms, not wait_for's 20 ms.
constexpr auto kPoll = 50ms;

class RoutingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    su_ = connect(pg().superuser_conninfo(Node::Primary, "app")).conn;
    ASSERT_TRUE(su_);
    replica_su_ = connect(pg().superuser_conninfo(Node::Replica, "app")).conn;
    ASSERT_TRUE(replica_su_);
    ASSERT_TRUE(exec(su_, "CREATE TABLE IF NOT EXISTS routed (id serial PRIMARY KEY, v text);"
                          "GRANT ALL ON routed TO app; GRANT ALL ON SEQUENCE routed_id_seq TO app;"
                          "CREATE SEQUENCE IF NOT EXISTS routed_seq; GRANT ALL ON routed_seq TO app;"
                          "CREATE OR REPLACE FUNCTION touch() RETURNS int VOLATILE LANGUAGE sql "
                          "AS 'SELECT 1'; GRANT EXECUTE ON FUNCTION touch() TO app")
                    .ok());
    ASSERT_TRUE(pg().wait_replica_caught_up());
  }

  ::testing::AssertionResult start(const std::string& database_extra = "") {
    PgmuxConfigOptions o;
    o.replica = true;
    o.pool_size = 4;
    o.database_extra = "health_check_period = 0.1\n" + database_extra;
    auto ok = pgmux_.start(PgmuxProcess::typical_config(o));
    if (!ok) {
      return ok;
    }
    // Routing needs one health round (and the pg_proc read) before reads can leave the
    // primary: wait until an autocommit read lands on the replica.
    auto c = client();
    if (!c) {
      return ::testing::AssertionFailure() << "no client";
    }
    if (!wait_for([&] { return port_of(c, "SELECT inet_server_port()") == pg().replica_port(); },
                  10s, kPoll)) {
      return ::testing::AssertionFailure() << "reads never reached the replica\n"
                                           << pgmux_.log_tail();
    }
    return ::testing::AssertionSuccess();
  }

  PgConn client() { return connect(pgmux_.conninfo()).conn; }

  static int port_of(const PgConn& c, const std::string& sql) {
    auto v = query_value(c, sql);
    return v ? std::stoi(*v) : -1;
  }

  PgmuxProcess pgmux_;
  PgConn su_;
  PgConn replica_su_;
};

// Autocommit reads go to the replica; writes, locking reads, data-modifying CTEs, nextval and
// volatile user functions go to the primary.
TEST_F(RoutingTest, PlacementByStatement) {
  ASSERT_TRUE(start());
  auto c = client();
  ASSERT_TRUE(c);
  const int primary = pg().primary_port();
  const int replica = pg().replica_port();
  EXPECT_EQ(port_of(c, "SELECT inet_server_port()"), replica);
  EXPECT_EQ(query_value(c, "SELECT pg_is_in_recovery()"), "t");
  EXPECT_EQ(port_of(c, "SELECT inet_server_port() FROM (SELECT 1) s FOR UPDATE"), primary);
  EXPECT_EQ(port_of(c, "WITH w AS (INSERT INTO routed (v) VALUES ('cte') RETURNING id) "
                       "SELECT inet_server_port() FROM w"),
            primary);
  EXPECT_EQ(port_of(c, "SELECT inet_server_port() + nextval('routed_seq') * 0"), primary);
  EXPECT_EQ(port_of(c, "SELECT inet_server_port() + touch() * 0"), primary);
  EXPECT_EQ(port_of(c, "INSERT INTO routed (v) VALUES ('w') RETURNING inet_server_port()"), primary);
  // The extended protocol: the statement's text decides at Parse. (After the writes above,
  // this client's reads stay on the primary until the replica has replayed them.)
  EXPECT_TRUE(wait_for(
      [&] {
        auto r = exec_params(c.get(), "SELECT inet_server_port() + $1::int", {"0"});
        return r.ok() && std::stoi(r.first()) == replica;
      },
      5s, kPoll));
}

// An explicit read-write transaction stays on the primary throughout; a read-only one may
// use the replica; a hint overrides.
TEST_F(RoutingTest, TransactionsAndHints) {
  ASSERT_TRUE(start());
  auto c = client();
  ASSERT_TRUE(c);
  const int primary = pg().primary_port();
  const int replica = pg().replica_port();
  ASSERT_TRUE(exec(c, "BEGIN").ok());
  EXPECT_EQ(port_of(c, "SELECT inet_server_port()"), primary);
  EXPECT_EQ(port_of(c, "SELECT inet_server_port()"), primary);
  ASSERT_TRUE(exec(c, "COMMIT").ok());
  // That transaction counts as a write (read-your-writes): wait until it no longer holds
  // this client's reads on the primary.
  ASSERT_TRUE(
      wait_for([&] { return port_of(c, "SELECT inet_server_port()") == replica; }, 5s, kPoll));
  EXPECT_EQ(port_of(c, "BEGIN READ ONLY; SELECT inet_server_port()"), replica);
  ASSERT_TRUE(exec(c, "COMMIT").ok());
  EXPECT_EQ(port_of(c, "/* pgmux:primary */ SELECT inet_server_port()"), primary);
  ASSERT_TRUE(exec(c, "SET pgmux.route = 'primary'").ok());
  EXPECT_EQ(port_of(c, "SELECT inet_server_port()"), primary);
  ASSERT_TRUE(exec(c, "RESET pgmux.route").ok());
  EXPECT_EQ(port_of(c, "SELECT inet_server_port()"), replica);
}

// With replay paused on the replica, a client's INSERT followed at once by its SELECT sees
// its row (read-your-writes); another client's reads leave the replica once its lag passes
// max_replica_lag.
TEST_F(RoutingTest, ReadYourWritesAndLag) {
  ASSERT_TRUE(start("max_replica_lag = \"64kB\""));
  auto writer = client(), other = client();
  ASSERT_TRUE(writer && other);
  ASSERT_TRUE(exec(replica_su_, "SELECT pg_wal_replay_pause()").ok());
  for (int i = 0; i < 5; ++i) {
    const std::string v = "ryw-" + std::to_string(i);
    ASSERT_TRUE(exec(writer, "INSERT INTO routed (v) VALUES ('" + v + "')").ok());
    EXPECT_EQ(query_value(writer, "SELECT count(*) FROM routed WHERE v = '" + v + "'"), "1") << v;
  }
  // Lag beyond 64 kB: the other client's reads move to the primary.
  ASSERT_TRUE(exec(su_, "INSERT INTO routed (v) SELECT repeat('x', 100) FROM generate_series(1, 5000)").ok());
  EXPECT_TRUE(
      wait_for([&] { return port_of(other, "SELECT inet_server_port()") == pg().primary_port(); },
               5s, kPoll));
  ASSERT_TRUE(exec(replica_su_, "SELECT pg_wal_replay_resume()").ok());
  EXPECT_TRUE(
      wait_for([&] { return port_of(other, "SELECT inet_server_port()") == pg().replica_port(); },
               10s, kPoll));
  // Once the replica caught up, the writer reads from it again.
  EXPECT_TRUE(
      wait_for([&] { return port_of(writer, "SELECT inet_server_port()") == pg().replica_port(); },
               10s, kPoll));
}

// A stopped replica: reads go to the primary without errors beyond a query in flight; when
// it is back, reads return to it.
TEST_F(RoutingTest, ReplicaDownAndBack) {
  ASSERT_TRUE(start());
  auto c = client();
  ASSERT_TRUE(c);
  replica_su_.reset();
  ASSERT_TRUE(pg().run_ctl(Node::Replica, {"stop", "-m", "fast"}).ok());
  int errors = 0;
  EXPECT_TRUE(wait_for(
      [&] {
        auto v = query_value(c, "SELECT inet_server_port()");
        if (!v) {
          ++errors;
          if (PQstatus(c.get()) != CONNECTION_OK) {
            c = client();
          }
          return false;
        }
        return std::stoi(*v) == pg().primary_port();
      },
      5s, kPoll));
  EXPECT_LE(errors, 1);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(port_of(c, "SELECT inet_server_port()"), pg().primary_port());
  }
  ASSERT_TRUE(pg().run_ctl(Node::Replica, {"start", "-w"}).ok());
  EXPECT_TRUE(wait_for(
      [&] { return port_of(c, "SELECT inet_server_port()") == pg().replica_port(); }, 15s, kPoll))
      << pgmux_.log_tail();
}

// pgbench through pgmux with routing on: zero failed transactions.
TEST_F(RoutingTest, PgbenchClean) {
  ASSERT_TRUE(start());
  const std::string port = std::to_string(pgmux_.port());
  auto init = run_command({"env", "PGPASSWORD=secret", "pgbench", "-i", "-s", "1", "-q", "-h",
                           "127.0.0.1", "-p", port, "-U", "app", "app"});
  ASSERT_TRUE(init.ok()) << init.output;
  for (const char* mode : {"simple", "extended", "prepared"}) {
    auto run = run_command({"env", "PGPASSWORD=secret", "pgbench", "-n", "-c", "16", "-j", "2",
                            "-T", "2", "-M", mode, "-h", "127.0.0.1", "-p", port, "-U", "app",
                            "app"});
    EXPECT_TRUE(run.ok()) << mode << "\n" << run.output;
    EXPECT_NE(run.output.find("number of failed transactions: 0 "), std::string::npos)
        << mode << "\n" << run.output;
  }
}

// SET default_transaction_read_only = on makes a plain BEGIN a read-only transaction, which
// may run on the replica; after RESET, BEGIN goes to the primary again.
TEST_F(RoutingTest, DefaultTransactionReadOnlyHonoured) {
  ASSERT_TRUE(start());
  auto c = client();
  ASSERT_TRUE(c);
  ASSERT_TRUE(exec(c, "SET default_transaction_read_only = on").ok());
  ASSERT_TRUE(exec(c, "BEGIN").ok());
  EXPECT_EQ(port_of(c, "SELECT inet_server_port()"), pg().replica_port());
  ASSERT_TRUE(exec(c, "COMMIT").ok());
  ASSERT_TRUE(exec(c, "RESET default_transaction_read_only").ok());
  ASSERT_TRUE(exec(c, "BEGIN").ok());
  EXPECT_EQ(port_of(c, "SELECT inet_server_port()"), pg().primary_port());
  ASSERT_TRUE(exec(c, "COMMIT").ok());
}

// BEGIN and SET TRANSACTION READ ONLY as separate messages: the transaction may run on the
// replica; a plain BEGIN followed by a read stays on the primary; an empty transaction works.
TEST_F(RoutingTest, BeginThenSetTransactionReadOnly) {
  ASSERT_TRUE(start());
  auto c = client();
  ASSERT_TRUE(c);
  ASSERT_TRUE(exec(c, "BEGIN").ok());
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_INTRANS);
  ASSERT_TRUE(exec(c, "SET TRANSACTION READ ONLY").ok());
  EXPECT_EQ(port_of(c, "SELECT inet_server_port()"), pg().replica_port());
  EXPECT_EQ(port_of(c, "SELECT inet_server_port()"), pg().replica_port());
  ASSERT_TRUE(exec(c, "COMMIT").ok());
  ASSERT_TRUE(exec(c, "BEGIN").ok());
  EXPECT_EQ(port_of(c, "SELECT inet_server_port()"), pg().primary_port());
  ASSERT_TRUE(exec(c, "ROLLBACK").ok());
  ASSERT_TRUE(exec(c, "BEGIN").ok());
  ASSERT_TRUE(exec(c, "COMMIT").ok());
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_IDLE);
  ASSERT_TRUE(exec(c, "BEGIN").ok());
  EXPECT_EQ(port_of(c, "INSERT INTO routed (v) VALUES ('held') RETURNING inet_server_port()"),
            pg().primary_port());
  ASSERT_TRUE(exec(c, "COMMIT").ok());
  EXPECT_EQ(query_value(su_, "SELECT count(*) > 0 FROM routed WHERE v = 'held'"), "t");
}

// A function listed in read_only_functions that writes after all: the replica refuses it
// (25006) before any row reached the client, so pgmux runs it again on the primary and the
// client gets its answer, by the simple and the extended protocol.
TEST_F(RoutingTest, ReplicaRefusalRetriedOnPrimary) {
  ASSERT_TRUE(exec(su_, "CREATE OR REPLACE FUNCTION routed_write() RETURNS int VOLATILE "
                        "LANGUAGE sql AS $$ INSERT INTO routed (v) VALUES ('fn') RETURNING 1 $$;"
                        "GRANT EXECUTE ON FUNCTION routed_write() TO app")
                  .ok());
  ASSERT_TRUE(pg().wait_replica_caught_up());
  ASSERT_TRUE(start("read_only_functions = [\"routed_write\"]"));
  auto c = client();
  ASSERT_TRUE(c);
  const auto before = std::stoi(query_value(su_, "SELECT count(*) FROM routed WHERE v = 'fn'").value_or("-1"));
  EXPECT_EQ(query_value(c, "SELECT routed_write()"), "1");
  auto r = exec_params(c.get(), "SELECT routed_write() + $1::int", {"0"});
  EXPECT_TRUE(r.ok()) << r;
  EXPECT_EQ(query_value(su_, "SELECT count(*) FROM routed WHERE v = 'fn'"), std::to_string(before + 2));
  EXPECT_NE(pgmux_.log_text().find("refused a statement as a write"), std::string::npos)
      << pgmux_.log_tail();
}

// Promotion: stop the primary, promote the replica, and writes through pgmux succeed against
// the new primary within 10 s without restarting pgmux. Last: it leaves the cluster promoted.
TEST_F(RoutingTest, ZzPromotionFollowed) {
  ASSERT_TRUE(start());
  auto c = client();
  ASSERT_TRUE(c);
  su_.reset();
  replica_su_.reset();
  ASSERT_TRUE(pg().run_ctl(Node::Primary, {"stop", "-m", "fast"}).ok());
  ASSERT_TRUE(pg().run_ctl(Node::Replica, {"promote", "-w"}).ok());
  const auto start = Clock::now();
  EXPECT_TRUE(wait_for(
      [&] {
        if (!c || PQstatus(c.get()) != CONNECTION_OK) {
          c = client();
          if (!c) {
            return false;
          }
        }
        auto v = query_value(c, "INSERT INTO routed (v) VALUES ('after') RETURNING inet_server_port()");
        return v && std::stoi(*v) == pg().replica_port();
      },
      10s, kPoll))
      << pgmux_.log_tail();
  EXPECT_LT(Clock::now() - start, 10s);
}

}  // namespace
}  // namespace pooler::integration
