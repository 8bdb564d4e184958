// The admin console (database "pgmux", alias "pgbouncer") and the HTTP endpoint
// (http_listen) of the real pgmux binary, checked with libpq and a raw socket (issue 6).

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/pg_client.h"
#include "tests/integration/pgmux_process.h"
#include "tests/integration/postgres_environment.h"
#include "tests/integration/test_util.h"

namespace pooler::integration {
namespace {

using namespace std::chrono_literals;

// Prometheus text: "name{labels} value" lines by their full series name.
std::map<std::string, double> parse_metrics(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    const auto sp = line.rfind(' ');
    if (sp == std::string::npos) {
      continue;
    }
    out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  return out;
}

// The rows of `r` whose column `key` is `value`.
std::vector<std::vector<std::string>> rows_where(const PgResult& r, const std::string& key,
                                                 const std::string& value) {
  std::vector<std::vector<std::string>> out;
  const int k = column(r, key);
  for (const auto& row : r.rows) {
    if (k >= 0 && row[static_cast<std::size_t>(k)] == value) {
      out.push_back(row);
    }
  }
  return out;
}

class AdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PgmuxProcess::binary_exists()) {
      GTEST_SKIP() << "pgmux not built: " << PgmuxProcess::binary_path();
    }
  }

  ::testing::AssertionResult start(int pool_size = 10, int workers = 1, bool replica = false) {
    http_port_ = PgmuxProcess::free_port();
    PgmuxConfigOptions options;
    options.replica = replica;
    options.pool_size = pool_size;
    options.workers = workers;
    options.pgmux_extra =
        "admin_users = [\"app\"]\nhttp_listen = \"127.0.0.1:" + std::to_string(http_port_) + "\"";
    return pgmux_.start(PgmuxProcess::typical_config(options));
  }

  // Every test ends with a clean exit: status 0 and no sanitizer report.
  void TearDown() override {
    if (pgmux_.pid() > 0) {
      EXPECT_EQ(pgmux_.stop(), 0) << pgmux_.log_tail();
      EXPECT_EQ(pgmux_.log_text().find("Sanitizer"), std::string::npos) << pgmux_.log_tail(80);
      EXPECT_EQ(pgmux_.log_text().find("runtime error"), std::string::npos) << pgmux_.log_tail(80);
    }
  }

  PgConn connect_to(const std::string& db, const std::string& user = "app",
                    const std::string& password = "secret") {
    auto c = connect(pgmux_.conninfo(user, password, db));
    EXPECT_TRUE(c) << c.error << "\n" << pgmux_.log_tail();
    return std::move(c.conn);
  }
  PgConn admin() { return connect_to("pgmux"); }

  PgmuxProcess pgmux_;
  int http_port_ = 0;
};

// Every SHOW answers with PgBouncer's leading columns (pgmux's own come after them).
TEST_F(AdminTest, ShowCommandsHaveDocumentedColumns) {
  ASSERT_TRUE(start());
  auto app = connect_to("app");
  ASSERT_TRUE(app);
  ASSERT_TRUE(exec(app, "SELECT 1").ok());
  auto a = admin();
  ASSERT_TRUE(a);
  const std::map<std::string, std::vector<std::string>> expected = {
      {"POOLS",
       {"database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req",
        "cl_waiting_cancel_req", "sv_active", "sv_active_cancel", "sv_being_canceled", "sv_idle",
        "sv_used", "sv_tested", "sv_login", "maxwait", "maxwait_us", "pool_mode"}},
      {"STATS",
       {"database", "total_server_assignment_count", "total_xact_count", "total_query_count",
        "total_received", "total_sent", "total_xact_time", "total_query_time", "total_wait_time"}},
      {"CLIENTS",
       {"type", "user", "database", "state", "addr", "port", "local_addr", "local_port",
        "connect_time", "request_time", "wait", "wait_us", "close_needed", "ptr", "link",
        "remote_pid", "tls"}},
      {"SERVERS",
       {"type", "user", "database", "replication", "state", "addr", "port", "local_addr",
        "local_port", "connect_time", "request_time", "wait", "wait_us", "close_needed", "ptr",
        "link", "remote_pid", "tls"}},
      {"DATABASES",
       {"name", "host", "port", "database", "force_user", "pool_size", "min_pool_size",
        "reserve_pool"}},
      {"USERS", {"name", "pool_size", "reserve_pool_size", "pool_mode"}},
      {"CONFIG", {"key", "value", "default", "changeable"}},
      {"VERSION", {"version"}},
      {"LISTS", {"list", "items"}},
      {"PREPARED_STATEMENTS", {"worker", "statements", "hits", "misses"}},
  };
  for (const auto& [what, columns] : expected) {
    const auto r = exec(a, "show " + what + ";");
    ASSERT_TRUE(r.ok()) << what << ": " << r;
    ASSERT_GE(r.columns.size(), columns.size()) << what;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      EXPECT_EQ(r.columns[i], columns[i]) << "SHOW " << what << " column " << i;
    }
  }
  EXPECT_NE(exec(a, "SHOW VERSION").first().find("pgmux"), std::string::npos);
  const auto servers = exec(a, "SHOW SERVERS");
  EXPECT_EQ(rows_where(servers, "database", "app").size(), 1u) << servers;
  const auto dbs = exec(a, "SHOW DATABASES");
  EXPECT_EQ(rows_where(dbs, "name", "app").size(), 1u) << dbs;
  const auto lists = exec(a, "SHOW LISTS");
  EXPECT_EQ(rows_where(lists, "list", "databases").at(0)[1], "2") << lists;
  const auto config = exec(a, "SHOW CONFIG");
  EXPECT_EQ(rows_where(config, "key", "admin_users").at(0)[1], "app") << config;
  EXPECT_FALSE(exec(a, "SHOW NONSENSE").ok());
  EXPECT_FALSE(exec(a, "SUSPEND now").ok()) << "SUSPEND takes no argument";
  EXPECT_TRUE(exec(a, "RELOAD").ok());
  EXPECT_TRUE(exec(a, "RECONNECT app").ok());
  EXPECT_FALSE(exec(a, "PAUSE nosuchdb").ok());
  EXPECT_TRUE(exec(app, "SELECT 1").ok()) << "RECONNECT must not break a client";
}

// A client queued behind a one-backend pool shows in SHOW POOLS and SHOW CLIENTS.
TEST_F(AdminTest, WaitingClientShowsInPoolsAndClients) {
  ASSERT_TRUE(start(/*pool_size=*/1));
  auto holder = connect_to("app");
  auto waiter = connect_to("app");
  auto a = admin();
  ASSERT_TRUE(holder && waiter && a);
  ASSERT_TRUE(exec(holder, "BEGIN").ok());
  ASSERT_TRUE(exec(holder, "SELECT 1").ok());
  ASSERT_EQ(PQsendQuery(waiter.get(), "SELECT 2"), 1);
  PgResult pools;
  const bool waiting = wait_for(
      [&] {
        pools = exec(a, "SHOW POOLS");
        const auto rows = rows_where(pools, "database", "app");
        return rows.size() == 1 &&
               rows[0][static_cast<std::size_t>(column(pools, "cl_waiting"))] == "1";
      },
      5s);
  ASSERT_TRUE(waiting) << pools;
  const auto row = rows_where(pools, "database", "app").at(0);
  EXPECT_EQ(row[static_cast<std::size_t>(column(pools, "user"))], "app");
  EXPECT_EQ(row[static_cast<std::size_t>(column(pools, "sv_active"))], "1");
  EXPECT_EQ(row[static_cast<std::size_t>(column(pools, "pool_size"))], "1");
  EXPECT_EQ(row[static_cast<std::size_t>(column(pools, "cl_active"))], "1");
  EXPECT_EQ(row[static_cast<std::size_t>(column(pools, "pool_mode"))], "transaction");

  const auto clients = exec(a, "SHOW CLIENTS");
  ASSERT_TRUE(clients.ok()) << clients;
  const auto app_clients = rows_where(clients, "database", "app");
  EXPECT_EQ(app_clients.size(), 2u) << clients;
  EXPECT_EQ(rows_where(clients, "state", "waiting").size(), 1u) << clients;
  EXPECT_EQ(rows_where(clients, "database", "pgmux").size(), 1u) << clients;

  ASSERT_TRUE(exec(holder, "COMMIT").ok());
  const auto done = finish_query(waiter.get(), 5s);
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->status, PGRES_TUPLES_OK) << done->error;
  const auto stats = exec(a, "SHOW STATS");
  const auto app_stats = rows_where(stats, "database", "app");
  ASSERT_EQ(app_stats.size(), 1u) << stats;
  EXPECT_GE(std::stoi(app_stats[0][1]), 2) << stats;  // server assignments: one per transaction
  // Per database, with PgBouncer's columns: the waiter's wait and both transactions count.
  auto value = [&](const char* name) {
    return std::stoll(app_stats[0][static_cast<std::size_t>(column(stats, name))]);
  };
  EXPECT_GE(value("total_xact_count"), 2) << stats;
  EXPECT_GE(value("total_query_count"), 3) << stats;
  EXPECT_GT(value("total_received"), 0) << stats;
  EXPECT_GT(value("total_sent"), 0) << stats;
  EXPECT_GT(value("total_wait_time"), 0) << stats;
  EXPECT_GT(value("total_xact_time"), value("total_wait_time") / 100) << stats;
  EXPECT_GT(value("avg_query_time"), 0) << stats;
}

// PAUSE holds a new query; RESUME lets it run.
TEST_F(AdminTest, PauseHoldsQueriesUntilResume) {
  ASSERT_TRUE(start());
  auto c = connect_to("app");
  auto a = admin();
  ASSERT_TRUE(c && a);
  ASSERT_TRUE(exec(c, "SELECT 1").ok());
  ASSERT_TRUE(exec(a, "PAUSE").ok());
  ASSERT_EQ(PQsendQuery(c.get(), "SELECT 42"), 1);
  EXPECT_FALSE(finish_query(c.get(), 500ms).has_value()) << "a query ran while paused";
  const auto pools = exec(a, "SHOW POOLS");
  EXPECT_EQ(
      rows_where(pools, "database", "app").at(0)[static_cast<std::size_t>(column(pools, "paused"))],
      "1");
  ASSERT_TRUE(exec(a, "RESUME").ok());
  const auto done = finish_query(c.get(), 5s);
  ASSERT_TRUE(done.has_value()) << "still held after RESUME";
  EXPECT_EQ(done->status, PGRES_TUPLES_OK) << done->error;

  // Pausing one database leaves the other alone.
  auto other = connect_to("other");
  ASSERT_TRUE(exec(a, "pause app;").ok());
  EXPECT_TRUE(exec(other, "SELECT 1").ok());
  ASSERT_TRUE(exec(a, "resume app;").ok());
  EXPECT_TRUE(exec(c, "SELECT 1").ok());
}

// SUSPEND stops all traffic once what was queued is written; the admin console keeps
// working; RESUME lets the held queries run, also those of a client that logged in meanwhile.
TEST_F(AdminTest, SuspendHoldsTrafficUntilResume) {
  ASSERT_TRUE(start());
  auto c = connect_to("app");
  auto a = admin();
  ASSERT_TRUE(c && a);
  ASSERT_TRUE(exec(c, "SELECT 1").ok());
  const auto suspended = exec(a, "SUSPEND");
  ASSERT_TRUE(suspended.ok()) << suspended;
  ASSERT_EQ(PQsendQuery(c.get(), "SELECT 42"), 1);
  EXPECT_FALSE(finish_query(c.get(), 500ms).has_value()) << "a query ran while suspended";
  auto late = connect_to("app");  // logs in, then waits like the others
  ASSERT_TRUE(late);
  ASSERT_EQ(PQsendQuery(late.get(), "SELECT 43"), 1);
  EXPECT_FALSE(finish_query(late.get(), 300ms).has_value());
  EXPECT_TRUE(exec(a, "SHOW POOLS").ok()) << "the admin console is not suspended";
  ASSERT_TRUE(exec(a, "RESUME").ok());
  for (PGconn* conn : {c.get(), late.get()}) {
    const auto done = finish_query(conn, 5s);
    ASSERT_TRUE(done.has_value()) << "still held after RESUME";
    EXPECT_EQ(done->status, PGRES_TUPLES_OK) << done->error;
  }
  EXPECT_TRUE(exec(c, "SELECT 1").ok());
}

// Only admin_users get in; the "pgbouncer" alias answers too.
TEST_F(AdminTest, NonAdminRefusedAndPgbouncerAlias) {
  ASSERT_TRUE(start());
  auto refused = connect(pgmux_.conninfo("other", "other_secret", "pgmux"));
  EXPECT_FALSE(refused);
  EXPECT_NE(refused.error.find("not allowed to connect to the admin console"), std::string::npos)
      << refused.error;
  auto bad_password = connect(pgmux_.conninfo("app", "wrong", "pgmux"));
  EXPECT_FALSE(bad_password);
  auto alias = connect_to("pgbouncer");
  ASSERT_TRUE(alias);
  EXPECT_TRUE(exec(alias, "SHOW POOLS").ok());
  EXPECT_EQ(exec(alias, "SHOW LISTS").columns.size(), 2u);
}

// KILL closes the database's clients.
TEST_F(AdminTest, KillClosesClients) {
  ASSERT_TRUE(start());
  auto c = connect_to("app");
  auto a = admin();
  ASSERT_TRUE(c && a);
  ASSERT_TRUE(exec(c, "SELECT 1").ok());
  ASSERT_TRUE(exec(a, "KILL app").ok());
  EXPECT_TRUE(wait_for([&] { return !exec(c, "SELECT 1").ok(); }, 5s));
  EXPECT_TRUE(exec(a, "SHOW VERSION").ok()) << "KILL must spare the admin console";
}

// /metrics is valid Prometheus text whose counters move with traffic; the probes answer.
TEST_F(AdminTest, HttpEndpoint) {
  ASSERT_TRUE(start(10, /*workers=*/2));
  EXPECT_EQ(http_get(http_port_, "/healthz").status, 200);
  EXPECT_EQ(http_get(http_port_, "/healthz").body, "ok\n");
  EXPECT_EQ(http_get(http_port_, "/readyz").status, 200);
  EXPECT_EQ(http_get(http_port_, "/nope").status, 404);

  auto c = connect_to("app");
  ASSERT_TRUE(c);
  ASSERT_TRUE(exec(c, "SELECT 1").ok());
  const auto first = http_get(http_port_, "/metrics");
  ASSERT_EQ(first.status, 200);
  for (const char* name :
       {"pgmux_clients", "pgmux_server_connections", "pgmux_clients_waiting",
        "pgmux_max_wait_seconds", "pgmux_queries_total", "pgmux_transactions_total",
        "pgmux_bytes_received_total", "pgmux_bytes_sent_total",
        "pgmux_prepared_statement_cache_hits_total", "pgmux_prepared_statement_cache_misses_total",
        "pgmux_pinned_clients", "pgmux_logins_failed_total"}) {
    EXPECT_NE(first.body.find(std::string("# HELP ") + name + " "), std::string::npos) << name;
    EXPECT_NE(first.body.find(std::string("# TYPE ") + name + " "), std::string::npos) << name;
  }
  const auto before = parse_metrics(first.body);
  EXPECT_EQ(before.at("pgmux_clients{database=\"app\",user=\"app\",state=\"idle\"}"), 1.0)
      << first.body;
  EXPECT_EQ(before.at("pgmux_server_connections{database=\"app\",user=\"app\",state=\"idle\"}"),
            1.0)
      << first.body;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(exec(c, "SELECT " + std::to_string(i)).ok());
  }
  EXPECT_FALSE(exec(c, "SELECT 1/0").ok());
  const auto after = parse_metrics(http_get(http_port_, "/metrics").body);
  EXPECT_GE(after.at("pgmux_queries_total") - before.at("pgmux_queries_total"), 10.0);
  // Latency histogram (cumulative buckets) and errors by SQLSTATE class move with traffic.
  const std::string count = "pgmux_request_duration_seconds_count{route=\"primary\"}";
  EXPECT_GE(after.at(count) - before.at(count), 11.0);
  EXPECT_EQ(after.at("pgmux_request_duration_seconds_bucket{route=\"primary\",le=\"+Inf\"}"),
            after.at(count));
  EXPECT_GT(after.at("pgmux_request_duration_seconds_sum{route=\"primary\"}"), 0.0);
  EXPECT_EQ(after.at("pgmux_errors_total{class=\"22\"}"), 1.0);
  EXPECT_GE(after.at("pgmux_query_shapes"), 2.0);
  EXPECT_EQ(after.at("pgmux_index_advice_records"), 0.0);
  EXPECT_GE(after.at("pgmux_transactions_total") - before.at("pgmux_transactions_total"), 10.0);
  EXPECT_GT(after.at("pgmux_bytes_received_total"), before.at("pgmux_bytes_received_total"));

  const auto pools = http_get(http_port_, "/pools");
  EXPECT_EQ(pools.status, 200);
  EXPECT_NE(pools.body.find("\"database\": \"app\""), std::string::npos) << pools.body;

  // Two workers: SHOW PREPARED_STATEMENTS has a row from each.
  auto a = admin();
  ASSERT_TRUE(a);
  EXPECT_EQ(exec(a, "SHOW PREPARED_STATEMENTS").rows.size(), 2u);

  // SHOW QUERIES: one row per shape, literals replaced, counts summed over workers.
  const auto queries = exec(a, "SHOW QUERIES");
  ASSERT_TRUE(queries.ok()) << queries;
  ASSERT_GE(queries.columns.size(), 10u);
  EXPECT_EQ(queries.columns.front(), "database");
  EXPECT_EQ(queries.columns.back(), "query");
  bool found = false;
  for (const auto& row : queries.rows) {
    if (row.back() == "SELECT $1") {
      found = true;
      EXPECT_GE(std::stoi(row[2]), 11) << "calls";  // SELECT 1 and SELECT 0..9
    }
    EXPECT_EQ(row.back().find("SELECT 7"), std::string::npos) << "no literal values";
  }
  EXPECT_TRUE(found) << queries;
  EXPECT_TRUE(exec(a, "SHOW INDEX_ADVICE").ok());
  EXPECT_EQ(http_get(http_port_, "/index_advice").body, "[]\n");
}

// With a replica configured, /metrics shows each host's health and the replica's lag.
TEST_F(AdminTest, HostHealthAndLagInMetrics) {
  ASSERT_TRUE(start(10, 1, /*replica=*/true));
  const std::string primary = "127.0.0.1:" + std::to_string(PostgresEnvironment::instance().primary_port());
  const std::string replica = "127.0.0.1:" + std::to_string(PostgresEnvironment::instance().replica_port());
  std::map<std::string, double> m;
  const std::string up_replica =
      "pgmux_host_up{database=\"app\",host=\"" + replica + "\",role=\"replica\"}";
  ASSERT_TRUE(wait_for([&] {
    m = parse_metrics(http_get(http_port_, "/metrics").body);
    return m.contains(up_replica);
  }, 10s));
  EXPECT_EQ(m.at(up_replica), 1.0);
  EXPECT_EQ(m.at("pgmux_host_up{database=\"app\",host=\"" + primary + "\",role=\"primary\"}"), 1.0);
  const std::string lag = "pgmux_replica_lag_bytes{database=\"app\",host=\"" + replica + "\"}";
  ASSERT_TRUE(m.contains(lag));
  EXPECT_GE(m.at(lag), 0.0);
}

// RECONNECT closes idle backends now and a backend in use once its transaction ends.
TEST_F(AdminTest, ReconnectReplacesBackendInUseAfterRelease) {
  ASSERT_TRUE(start());
  auto c = connect_to("app");
  auto a = admin();
  ASSERT_TRUE(c && a);
  ASSERT_TRUE(exec(c, "BEGIN").ok());
  const auto before = query_value(c, "SELECT pg_backend_pid()");
  ASSERT_TRUE(before);
  ASSERT_TRUE(exec(a, "RECONNECT").ok());
  EXPECT_EQ(query_value(c, "SELECT pg_backend_pid()"), before) << "the transaction keeps it";
  ASSERT_TRUE(exec(c, "COMMIT").ok());
  const auto after = query_value(c, "SELECT pg_backend_pid()");
  ASSERT_TRUE(after);
  EXPECT_NE(*after, *before);
}

// SHUTDOWN drains and exits as SIGTERM does.
TEST_F(AdminTest, ShutdownExits) {
  ASSERT_TRUE(start());
  auto a = admin();
  ASSERT_TRUE(a);
  EXPECT_TRUE(exec(a, "SHUTDOWN").ok());
  EXPECT_EQ(pgmux_.wait_exit(10s), 0) << pgmux_.log_tail();
}

}  // namespace
}  // namespace pooler::integration
