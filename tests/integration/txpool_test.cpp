// Transaction pooling through the real pgmux binary (issue 3), checked with libpq, psql and
// pgbench against the fixture's PostgreSQL 15. Where PostgreSQL's own behaviour is the
// expectation, the test asks PostgreSQL directly and compares. Backends are counted in
// pg_stat_activity on the primary (user app) from a superuser connection, which is not one.

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
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

// One line per pipeline result ("END" for the NULL after a query), until `syncs` syncs.
std::vector<std::string> read_pipeline(PGconn* c, int syncs) {
  std::vector<std::string> lines;
  const auto deadline = Clock::now() + 10s;
  while (syncs > 0) {
    if (!wait_result_ready(c, deadline)) {
      lines.emplace_back("TIMEOUT");
      return lines;
    }
    PGresult* r = PQgetResult(c);
    if (r == nullptr) {
      lines.emplace_back("END");
      continue;
    }
    const ExecStatusType st = PQresultStatus(r);
    std::string line = PQresStatus(st);
    if (const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE)) {
      line += std::string(" ") + s;
    }
    for (int row = 0; row < PQntuples(r); ++row) {
      line += std::string(row == 0 ? " " : ",") + PQgetvalue(r, row, 0);
    }
    lines.push_back(line);
    syncs -= st == PGRES_PIPELINE_SYNC ? 1 : 0;
    PQclear(r);
    if (st == PGRES_FATAL_ERROR && PQstatus(c) != CONNECTION_OK) {
      lines.emplace_back("BROKEN");
      return lines;
    }
  }
  return lines;
}

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) {
    out += l + "\n";
  }
  return out;
}

void send_params(PGconn* c, const char* sql, std::vector<const char*> params = {}) {
  PQsendQueryParams(c, sql, static_cast<int>(params.size()), nullptr, params.data(), nullptr,
                    nullptr, 0);
}

// A pipeline with named statements, an error that skips the rest until Sync, and
// transactions spanning Syncs. `prepare`: also Parse "pipe_s1" (first run on a connection).
std::vector<std::string> run_pipeline(PGconn* c, bool prepare) {
  if (PQenterPipelineMode(c) != 1) {
    return {"cannot enter pipeline mode"};
  }
  send_params(c, "SELECT $1::int + 1", {"41"});
  if (prepare) {
    PQsendPrepare(c, "pipe_s1", "SELECT upper($1::text)", 1, nullptr);
  }
  const char* abc[] = {"abc"};
  PQsendQueryPrepared(c, "pipe_s1", 1, abc, nullptr, nullptr, 0);
  send_params(c, "SELECT generate_series(1, 3)");
  PQpipelineSync(c);
  send_params(c, "SELECT 1/0");  // fails: the rest until Sync is skipped
  send_params(c, "SELECT 2");
  const char* zzz[] = {"zzz"};
  PQsendQueryPrepared(c, "pipe_s1", 1, zzz, nullptr, nullptr, 0);
  PQpipelineSync(c);
  const char* after[] = {"after"};
  PQsendQueryPrepared(c, "pipe_s1", 1, after, nullptr, nullptr, 0);
  send_params(c, "BEGIN");
  send_params(c, "SELECT 10");
  PQpipelineSync(c);  // ReadyForQuery 'T': the backend stays with this client
  send_params(c, "SELECT 11");
  send_params(c, "COMMIT");
  PQpipelineSync(c);
  send_params(c, "BEGIN");
  send_params(c, "SELECT 1/0");
  send_params(c, "SELECT 12");
  PQpipelineSync(c);  // ReadyForQuery 'E'
  send_params(c, "ROLLBACK");
  PQpipelineSync(c);
  auto lines = read_pipeline(c, 6);
  if (PQexitPipelineMode(c) != 1) {
    lines.emplace_back(std::string("exit pipeline mode: ") + PQerrorMessage(c));
  }
  return lines;
}

// Settings a client may carry: what it sends at startup and what it reads back.
struct ClientSettings {
  std::string application_name;
  std::string timezone;   // PGTZ: startup parameter "timezone"
  std::string datestyle;  // PGDATESTYLE: startup parameter "datestyle"
  std::string options;    // startup "options", e.g. "-c statement_timeout=1234"
};

constexpr const char* kShowSettings =
    "SELECT current_setting('application_name'), current_setting('TimeZone'), "
    "current_setting('DateStyle'), current_setting('search_path'), "
    "current_setting('statement_timeout'), current_setting('work_mem')";

std::string settings_row(const PgResult& r) {
  if (!r.ok() || r.rows.empty()) {
    return "error: " + r.error;
  }
  std::string out;
  for (const auto& v : r.rows[0]) {
    out += v + "|";
  }
  return out;
}

// Connects with `s` as startup parameters (timezone and datestyle through libpq's PGTZ and
// PGDATESTYLE, which it sends in the startup packet). Main thread only: sets env vars.
ConnectResult connect_with(const std::string& conninfo, const ClientSettings& s) {
  std::string info = conninfo;
  if (!s.application_name.empty()) {
    info += " " + make_conninfo({{"application_name", s.application_name}});
  }
  if (!s.options.empty()) {
    info += " " + make_conninfo({{"options", s.options}});
  }
  if (!s.timezone.empty()) {
    ::setenv("PGTZ", s.timezone.c_str(), 1);
  }
  if (!s.datestyle.empty()) {
    ::setenv("PGDATESTYLE", s.datestyle.c_str(), 1);
  }
  auto c = connect(info);
  ::unsetenv("PGTZ");
  ::unsetenv("PGDATESTYLE");
  return c;
}

// A transaction-mode config with `size` backends (workers = 1: counts are exact).
PgmuxConfigOptions pool(int size, std::string log_level = "debug") {
  PgmuxConfigOptions o;
  o.pool_size = size;
  o.log_level = std::move(log_level);
  return o;
}

// Each test runs its own pgmux; the superuser connection counts that pgmux's backends.
class TxPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PgmuxProcess::binary_exists()) {
      GTEST_SKIP() << "pgmux not built: " << PgmuxProcess::binary_path();
    }
    auto su = connect(pg().superuser_conninfo(Node::Primary, "app"));
    ASSERT_TRUE(su) << su.error;
    su_ = std::move(su.conn);
    // The backends of an earlier test's pgmux are gone, so the counts below are ours.
    ASSERT_TRUE(wait_for([&] { return app_backends() == 0; }, 5s)) << app_backends();
  }

  ::testing::AssertionResult start(PgmuxConfigOptions options) {
    options.replica = false;
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

// ---- pgbench -------------------------------------------------------------------------

class PgbenchTest : public TxPoolTest {
 protected:
  static void SetUpTestSuite() {
    // pgbench's tables, created once per binary directly on the primary.
    const auto init = run_command({"env", "PGPASSWORD=secret", pg().bindir() + "/pgbench", "-i",
                                   "-s", "1", "-q", "-h", "127.0.0.1", "-p",
                                   std::to_string(pg().primary_port()), "-U", "app", "app"});
    init_output_ = init.ok() ? "" : "pgbench -i failed: " + init.output;
  }

  // 200 pgbench clients (-j 2) over 10 backends for 3 s: no failed transaction, and never
  // more than 10 backends in pg_stat_activity. A wait of 10 s for a backend is an error
  // (query_wait_timeout), so a stall fails the test quickly.
  void run(const char* mode) {
    ASSERT_EQ(init_output_, "");
    PgmuxConfigOptions options = pool(10, "info");
    options.pgmux_extra = "query_wait_timeout = 10";
    ASSERT_TRUE(start(options));
    CommandResult bench;
    std::atomic<bool> done = false;
    std::thread runner([&] {
      bench = run_command({"env", "PGPASSWORD=secret", pg().bindir() + "/pgbench", "-n", "-M", mode,
                           "-c", "200", "-j", "2", "-T", "3", "-h", "127.0.0.1", "-p",
                           std::to_string(pgmux_.port()), "-U", "app", "app"});
      done = true;
    });
    int most = 0;
    while (!done) {
      most = std::max(most, app_backends());
      std::this_thread::sleep_for(50ms);
    }
    runner.join();
    EXPECT_EQ(bench.exit_code, 0) << bench.output;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(bench.output, m, std::regex("processed: (\\d+)"))) << bench.output;
    EXPECT_GT(std::stol(m[1].str()), 200) << bench.output;
    ASSERT_TRUE(std::regex_search(bench.output, m, std::regex("failed transactions: (\\d+)")))
        << bench.output;
    EXPECT_EQ(m[1].str(), "0") << bench.output;
    EXPECT_LE(most, 10);
    EXPECT_GE(most, 2);
  }
  static inline std::string init_output_;
};

// pgbench -M simple: one Query message per statement.
TEST_F(PgbenchTest, SimpleProtocol) { run("simple"); }

// pgbench -M extended: unnamed Parse/Bind/Execute/Sync per statement.
TEST_F(PgbenchTest, ExtendedProtocol) { run("extended"); }

// pgbench -M prepared: each client prepares its statements by name with a blocking
// PQprepare just before their first use, then runs them on whichever backend it gets.
TEST_F(PgbenchTest, PreparedProtocol) { run("prepared"); }

// ---- psql ----------------------------------------------------------------------------

constexpr std::string_view kPsqlScript = R"sql(
SET work_mem = '3MB';
SHOW work_mem;
BEGIN;
CREATE TEMP TABLE psql_t (x int);
INSERT INTO psql_t SELECT generate_series(1, 5);
COMMIT;
SELECT sum(x) FROM psql_t;
PREPARE psql_q(int) AS SELECT $1 * 2;
EXECUTE psql_q(21);
DEALLOCATE psql_q;
EXECUTE psql_q(1);
SELECT 1/0;
BEGIN;
SET LOCAL work_mem = '5MB';
SHOW work_mem;
COMMIT;
SHOW work_mem;
RESET ALL;
SHOW work_mem;
SELECT current_setting('application_name');
SELECT 'a' AS one \gset
\echo :one
SELECT 1; SELECT 2;
)sql";

// A psql script (SET, temp table, SQL PREPARE, errors, \gset) prints through pgmux exactly
// what it prints against PostgreSQL.
TEST_F(TxPoolTest, PsqlScriptPrintsWhatPostgresPrints) {
  ASSERT_TRUE(start(pool(2)));
  const auto script = std::filesystem::temp_directory_path() / (unique_name("txpool") + ".sql");
  std::ofstream(script) << kPsqlScript;
  auto run = [&](int port) {
    return run_command({"env", "PGPASSWORD=secret", pg().bindir() + "/psql", "-X", "-A", "-t",
                        "-h", "127.0.0.1", "-p", std::to_string(port), "-U", "app", "-d", "app",
                        "-f", script.string()});
  };
  const auto direct = run(pg().primary_port());
  const auto pooled = run(pgmux_.port());
  std::filesystem::remove(script);
  EXPECT_EQ(pooled.exit_code, direct.exit_code);
  EXPECT_EQ(pooled.output, direct.output);
  EXPECT_NE(direct.output.find("division by zero"), std::string::npos) << direct.output;
}

// ---- libpq pipeline mode -------------------------------------------------------------

// Pipelines (named statements, an error skipping to Sync, transactions across Syncs) give
// what PostgreSQL gives, with three pipelining clients sharing two backends.
TEST_F(TxPoolTest, PipelineResultsMatchPostgres) {
  ASSERT_TRUE(start(pool(2)));
  auto direct = connect(direct_conninfo());
  ASSERT_TRUE(direct) << direct.error;
  const auto first = run_pipeline(direct.conn.get(), true);
  const auto again = run_pipeline(direct.conn.get(), false);
  ASSERT_EQ(first.front(), "PGRES_TUPLES_OK 42") << join(first);
  EXPECT_NE(join(first).find("PGRES_FATAL_ERROR 22012\nEND\nPGRES_PIPELINE_ABORTED"),
            std::string::npos) << join(first);

  std::vector<std::vector<std::string>> got(3);
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      auto c = connect(pgmux_.conninfo());
      if (!c) {
        got[t] = {c.error};
        return;
      }
      for (int i = 0; i < 15; ++i) {
        const auto lines = run_pipeline(c.conn.get(), i == 0);
        if (lines != (i == 0 ? first : again)) {
          got[t] = lines;
          return;
        }
        if (query_value(c.conn, "SELECT 'plain'") != "plain") {
          got[t] = {"plain query after the pipeline failed"};
          return;
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  for (int t = 0; t < 3; ++t) {
    EXPECT_TRUE(got[t].empty()) << "client " << t << ":\n" << join(got[t]) << "expected:\n"
                                << join(first);
  }
}

// A Flush request without Sync makes the results arrive; the Sync comes later.
TEST_F(TxPoolTest, PipelineFlushRequestWithoutSync) {
  ASSERT_TRUE(start(pool(1)));
  auto c = client();
  ASSERT_TRUE(c);
  PGconn* p = c.get();
  ASSERT_EQ(PQenterPipelineMode(p), 1);
  send_params(p, "SELECT 7");
  PQsendPrepare(p, "flush_s", "SELECT $1::int * 2", 1, nullptr);
  const char* v[] = {"21"};
  PQsendQueryPrepared(p, "flush_s", 1, v, nullptr, nullptr, 0);
  ASSERT_EQ(PQsendFlushRequest(p), 1);
  ASSERT_EQ(PQflush(p), 0);
  // No Sync yet: the three results and their NULLs must arrive anyway.
  const auto deadline = Clock::now() + 3s;
  std::vector<std::string> lines;
  for (int i = 0; i < 6; ++i) {
    if (!wait_result_ready(p, deadline)) {
      lines.emplace_back("TIMEOUT");
      break;
    }
    PGresult* r = PQgetResult(p);
    lines.push_back(r == nullptr ? "END"
                                 : std::string(PQresStatus(PQresultStatus(r))) +
                                       (PQntuples(r) > 0 ? std::string(" ") + PQgetvalue(r, 0, 0) : ""));
    PQclear(r);
  }
  EXPECT_EQ(join(lines), "PGRES_TUPLES_OK 7\nEND\nPGRES_COMMAND_OK\nEND\nPGRES_TUPLES_OK 42\nEND\n");
  // An error before the Sync, flushed: reported, and the next query is aborted.
  send_params(p, "SELECT 1/0");
  ASSERT_EQ(PQsendFlushRequest(p), 1);
  ASSERT_EQ(PQflush(p), 0);
  send_params(p, "SELECT 8");
  PQpipelineSync(p);
  EXPECT_EQ(join(read_pipeline(p, 1)),
            "PGRES_FATAL_ERROR 22012\nEND\nPGRES_PIPELINE_ABORTED\nEND\nPGRES_PIPELINE_SYNC\n");
  ASSERT_EQ(PQexitPipelineMode(p), 1) << PQerrorMessage(p);
  EXPECT_EQ(query_value(c, "SELECT 'after'"), "after");
}

// A Parse skipped because an earlier message of the pipeline failed does not exist
// afterwards, as in PostgreSQL: executing it fails with 26000.
TEST_F(TxPoolTest, StatementSkippedInFailedPipelineDoesNotExist) {
  ASSERT_TRUE(start(pool(1)));
  auto check = [](PGconn* p) {
    EXPECT_EQ(PQenterPipelineMode(p), 1);
    send_params(p, "SELECT 1/0");
    PQsendPrepare(p, "skipped_s", "SELECT 1", 0, nullptr);
    PQpipelineSync(p);
    const auto lines = join(read_pipeline(p, 1));
    EXPECT_EQ(PQexitPipelineMode(p), 1);
    PGresult* r = PQexecPrepared(p, "skipped_s", 0, nullptr, nullptr, nullptr, 0);
    const PgResult res = copy_result(p, r);
    PQclear(r);
    return lines + res.sqlstate;
  };
  auto direct = connect(direct_conninfo());
  ASSERT_TRUE(direct) << direct.error;
  const std::string expected = check(direct.conn.get());
  EXPECT_NE(expected.find("26000"), std::string::npos) << expected;
  auto c = client();
  ASSERT_TRUE(c);
  EXPECT_EQ(check(c.get()), expected);
}

// ---- Named prepared statements -------------------------------------------------------

std::optional<std::string> exec_prepared(PGconn* c, const char* name, const std::string& arg,
                                         std::string* sqlstate = nullptr) {
  const char* v[] = {arg.c_str()};
  PGresult* r = PQexecPrepared(c, name, 1, v, nullptr, nullptr, 0);
  const PgResult res = copy_result(c, r);
  PQclear(r);
  if (sqlstate != nullptr) {
    *sqlstate = res.sqlstate;
  }
  if (!res.ok() || res.rows.empty()) {
    return std::nullopt;
  }
  return res.rows[0][0];
}

bool prepare(PGconn* c, const char* name, const std::string& sql) {
  PGresult* r = PQprepare(c, name, sql.c_str(), 1, nullptr);
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  return ok;
}

// Ten clients each prepare "s1" (eight texts, two clients sharing one) over two backends,
// concurrently: each always gets its own statement's result, on both backends.
TEST_F(TxPoolTest, NamedStatementsDoNotCollideAcrossBackends) {
  ASSERT_TRUE(start(pool(2)));
  constexpr int kClients = 10;
  std::vector<std::string> errors(kClients);
  std::vector<std::set<std::string>> pids(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      auto c = connect(pgmux_.conninfo());
      if (!c) {
        errors[i] = c.error;
        return;
      }
      const int factor = i < 8 ? i + 2 : 100;  // clients 8 and 9 share a text
      if (!prepare(c.conn.get(), "s1", "SELECT $1::int * " + std::to_string(factor) +
                                           ", pg_backend_pid()")) {
        errors[i] = "prepare failed";
        return;
      }
      for (int j = 0; j < 40; ++j) {
        const std::string arg = std::to_string(j);
        const char* v[] = {arg.c_str()};
        PGresult* r = PQexecPrepared(c.conn.get(), "s1", 1, v, nullptr, nullptr, 0);
        const PgResult res = copy_result(c.conn.get(), r);
        PQclear(r);
        if (!res.ok() || res.first() != std::to_string(j * factor)) {
          errors[i] = "j=" + arg + ": " + res.first() + " " + res.error;
          return;
        }
        pids[i].insert(res.rows[0][1]);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  std::set<std::string> all;
  int on_both = 0;
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(errors[i], "") << "client " << i;
    all.insert(pids[i].begin(), pids[i].end());
    on_both += pids[i].size() == 2 ? 1 : 0;
  }
  EXPECT_EQ(all.size(), 2u);
  EXPECT_GT(on_both, 0) << "no client ran its statement on both backends";
}

// On one shared backend: DEALLOCATE s1 and DEALLOCATE ALL from one client remove only that
// client's statements, like on a backend of its own.
TEST_F(TxPoolTest, DeallocateRemovesOnlyTheSendersStatements) {
  ASSERT_TRUE(start(pool(1)));
  auto a = client(), b = client(), c = client(), d = client();
  ASSERT_TRUE(a && b && c && d);
  ASSERT_TRUE(prepare(a.get(), "s1", "SELECT 'a:' || $1::text"));
  ASSERT_TRUE(prepare(b.get(), "s1", "SELECT 'b:' || $1::text"));
  ASSERT_TRUE(prepare(b.get(), "s2", "SELECT 'b2:' || $1::text"));
  ASSERT_TRUE(prepare(c.get(), "s1", "SELECT 'c:' || $1::text"));
  ASSERT_TRUE(prepare(d.get(), "s1", "SELECT 'a:' || $1::text"));  // same text as a's
  auto all_work = [&](std::vector<std::pair<PGconn*, std::string>> expected) {
    for (const auto& [conn, prefix] : expected) {
      EXPECT_EQ(exec_prepared(conn, "s1", "x"), prefix + ":x") << prefix;
    }
  };
  all_work({{a.get(), "a"}, {b.get(), "b"}, {c.get(), "c"}, {d.get(), "a"}});

  ASSERT_TRUE(exec(a, "DEALLOCATE s1").ok());
  std::string state;
  EXPECT_EQ(exec_prepared(a.get(), "s1", "x", &state), std::nullopt);
  EXPECT_EQ(state, "26000");
  all_work({{b.get(), "b"}, {c.get(), "c"}, {d.get(), "a"}});
  ASSERT_TRUE(prepare(a.get(), "s1", "SELECT 'A:' || $1::text"));  // the name is free again
  all_work({{a.get(), "A"}, {b.get(), "b"}, {c.get(), "c"}, {d.get(), "a"}});

  ASSERT_TRUE(exec(b, "DEALLOCATE ALL").ok());
  EXPECT_EQ(exec_prepared(b.get(), "s1", "x", &state), std::nullopt);
  EXPECT_EQ(state, "26000");
  EXPECT_EQ(exec_prepared(b.get(), "s2", "x", &state), std::nullopt);
  EXPECT_EQ(state, "26000");
  all_work({{a.get(), "A"}, {c.get(), "c"}, {d.get(), "a"}});
}

// Two clients with a statement "s1" each on one backend, for the tests below.
class SharedStatementsTest : public TxPoolTest {
 protected:
  void SetUp() override {
    TxPoolTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) {
      return;
    }
    ASSERT_TRUE(start(pool(1)));
    a_ = client();
    b_ = client();
    ASSERT_TRUE(a_ && b_);
    ASSERT_TRUE(prepare(a_.get(), "s1", "SELECT 'a:' || $1::text"));
    ASSERT_TRUE(prepare(b_.get(), "s1", "SELECT 'b:' || $1::text"));
  }
  // b's s1 is gone (26000, as in PostgreSQL) and a's still works.
  void expect_only_b_lost_s1() {
    std::string state;
    EXPECT_EQ(exec_prepared(b_.get(), "s1", "x", &state), std::nullopt);
    EXPECT_EQ(state, "26000");
    for (int attempt = 0; attempt < 2; ++attempt) {
      EXPECT_EQ(exec_prepared(a_.get(), "s1", "x", &state), "a:x") << attempt << " " << state;
    }
  }
  PgConn a_, b_;
};

// DISCARD ALL from one client drops its statements only; the other client's statement on
// the same backend keeps working.
TEST_F(SharedStatementsTest, DiscardAllLeavesOtherClientsStatements) {
  ASSERT_TRUE(exec(b_, "DISCARD ALL").ok());
  expect_only_b_lost_s1();
}

// DEALLOCATE s1 inside a transaction block works as in PostgreSQL.
TEST_F(SharedStatementsTest, DeallocateInsideTransaction) {
  ASSERT_TRUE(exec(b_, "BEGIN").ok());
  const auto r = exec(b_, "DEALLOCATE s1");
  EXPECT_TRUE(r.ok()) << r;
  EXPECT_TRUE(exec(b_, "COMMIT").ok());
  expect_only_b_lost_s1();
}

// DEALLOCATE ALL inside a transaction block removes the sender's statements only.
TEST_F(SharedStatementsTest, DeallocateAllInsideTransaction) {
  ASSERT_TRUE(exec(b_, "BEGIN").ok());
  EXPECT_TRUE(exec(b_, "DEALLOCATE ALL").ok());
  EXPECT_TRUE(exec(b_, "COMMIT").ok());
  expect_only_b_lost_s1();
}

// DEALLOCATE ALL sent with the extended protocol removes the sender's statements only.
TEST_F(SharedStatementsTest, DeallocateAllExtendedProtocol) {
  EXPECT_TRUE(exec_params(b_.get(), "DEALLOCATE ALL", {}).ok());
  expect_only_b_lost_s1();
}

// ---- Session settings ----------------------------------------------------------------

// Three clients with different startup settings (application_name, timezone, datestyle,
// options -c search_path/statement_timeout) share one backend: each always sees its own,
// exactly what PostgreSQL shows for the same startup packet, in and out of transactions.
TEST_F(TxPoolTest, StartupParametersFollowTheClient) {
  ASSERT_TRUE(start(pool(1)));
  const std::vector<ClientSettings> settings = {
      {"alpha", "Europe/Berlin", "SQL, DMY", "-c statement_timeout=1234 -c search_path=pg_catalog"},
      {"beta", "America/New_York", "German, DMY", "-c search_path=public,pg_temp"},
      {"", "", "", ""},
  };
  std::vector<std::string> expected;
  std::vector<PgConn> clients;
  for (const auto& s : settings) {
    auto direct = connect_with(direct_conninfo(), s);
    ASSERT_TRUE(direct) << direct.error;
    expected.push_back(settings_row(exec(direct.conn, kShowSettings)));
    auto c = connect_with(pgmux_.conninfo(), s);
    ASSERT_TRUE(c) << c.error;
    clients.push_back(std::move(c.conn));
  }
  EXPECT_NE(expected[0], expected[1]);
  EXPECT_NE(expected[0].find("1234ms"), std::string::npos) << expected[0];
  for (int round = 0; round < 8; ++round) {
    for (std::size_t i = 0; i < clients.size(); ++i) {
      PGconn* c = clients[i].get();
      EXPECT_EQ(settings_row(exec(c, kShowSettings)), expected[i]) << "client " << i;
      EXPECT_EQ(settings_row(exec_params(c, kShowSettings, {})), expected[i]) << "client " << i;
      EXPECT_EQ(query_value(c, "SHOW application_name"), settings[i].application_name);
      ASSERT_TRUE(exec(c, "BEGIN").ok());
      EXPECT_EQ(settings_row(exec(c, kShowSettings)), expected[i]) << "client " << i;
      ASSERT_TRUE(exec(c, "COMMIT").ok());
    }
  }
  // The same, concurrently.
  std::vector<std::string> errors(clients.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < clients.size(); ++i) {
    threads.emplace_back([&, i] {
      for (int n = 0; n < 30 && errors[i].empty(); ++n) {
        const auto row = settings_row(exec(clients[i].get(), kShowSettings));
        if (row != expected[i]) {
          errors[i] = row;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  for (std::size_t i = 0; i < clients.size(); ++i) {
    EXPECT_EQ(errors[i], "") << "client " << i << " expected " << expected[i];
  }
  // statement_timeout from options is really in force.
  const auto slow = exec(clients[0], "SELECT pg_sleep(3)");
  EXPECT_EQ(slow.sqlstate, "57014") << slow;
}

// The ParameterStatus values a client sees at login are its own, as PostgreSQL reports
// them for the same startup packet (timezone and datestyle arrive in lower case).
TEST_F(TxPoolTest, LoginParameterStatusMatchesPostgres) {
  ASSERT_TRUE(start(pool(1)));
  const ClientSettings s{"ps_app", "Europe/Berlin", "SQL, DMY", ""};
  auto direct = connect_with(direct_conninfo(), s);
  ASSERT_TRUE(direct) << direct.error;
  auto c = connect_with(pgmux_.conninfo(), s);
  ASSERT_TRUE(c) << c.error;
  for (const char* name : {"application_name", "TimeZone", "DateStyle", "IntervalStyle",
                           "client_encoding", "server_encoding", "standard_conforming_strings",
                           "integer_datetimes", "is_superuser", "session_authorization"}) {
    const char* want = PQparameterStatus(direct.conn.get(), name);
    const char* got = PQparameterStatus(c.conn.get(), name);
    EXPECT_STREQ(got, want) << name;
  }
}

// A session SET is seen by its client afterwards, never by another client on the same
// backend; SET LOCAL and a SET rolled back do not stick; RESET and RESET ALL go back to
// the startup values, as in PostgreSQL.
TEST_F(TxPoolTest, SessionSetFollowsItsClientOnly) {
  ASSERT_TRUE(start(pool(1)));
  const ClientSettings s{"setter", "", "", "-c statement_timeout=1234"};
  auto a_conn = connect_with(pgmux_.conninfo(), s);
  ASSERT_TRUE(a_conn) << a_conn.error;
  PgConn a = std::move(a_conn.conn);
  auto b = client("application_name=bystander");
  ASSERT_TRUE(b);
  auto show = [](const PgConn& c, const char* name) {
    return query_value(c, std::string("SELECT current_setting('") + name + "')").value_or("?");
  };
  ASSERT_TRUE(exec(a, "SET work_mem = '7MB'").ok());
  ASSERT_TRUE(exec(a, "SET application_name = 'renamed'").ok());
  ASSERT_TRUE(exec(a, "SET TIME ZONE 'Asia/Tokyo'").ok());
  ASSERT_TRUE(exec_params(a.get(), "SET statement_timeout = '4321'", {}).ok());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(show(a, "work_mem"), "7MB");
    EXPECT_EQ(show(a, "application_name"), "renamed");
    EXPECT_EQ(show(a, "TimeZone"), "Asia/Tokyo");
    EXPECT_EQ(show(a, "statement_timeout"), "4321ms");
    EXPECT_EQ(show(b, "work_mem"), "4MB");
    EXPECT_EQ(show(b, "application_name"), "bystander");
    EXPECT_EQ(show(b, "statement_timeout"), "0");
    EXPECT_NE(show(b, "TimeZone"), "Asia/Tokyo");
  }
  // SET LOCAL ends with the transaction; a SET rolled back is undone; one committed stays.
  ASSERT_TRUE(exec(a, "BEGIN; SET LOCAL work_mem = '9MB'").ok());
  EXPECT_EQ(show(a, "work_mem"), "9MB");
  ASSERT_TRUE(exec(a, "COMMIT").ok());
  EXPECT_EQ(show(a, "work_mem"), "7MB");
  EXPECT_EQ(show(b, "work_mem"), "4MB");
  ASSERT_TRUE(exec(a, "BEGIN").ok());
  ASSERT_TRUE(exec(a, "SET work_mem = '11MB'").ok());
  ASSERT_TRUE(exec(a, "ROLLBACK").ok());
  EXPECT_EQ(show(a, "work_mem"), "7MB");
  ASSERT_TRUE(exec(a, "BEGIN").ok());
  ASSERT_TRUE(exec(a, "SET work_mem = '12MB'").ok());
  ASSERT_TRUE(exec(a, "COMMIT").ok());
  EXPECT_EQ(show(b, "work_mem"), "4MB");
  EXPECT_EQ(show(a, "work_mem"), "12MB");
  // RESET one setting, then RESET ALL: back to what the client started with.
  ASSERT_TRUE(exec(a, "RESET work_mem").ok());
  EXPECT_EQ(show(a, "work_mem"), "4MB");
  EXPECT_EQ(show(a, "application_name"), "renamed");
  ASSERT_TRUE(exec(a, "RESET ALL").ok());
  EXPECT_EQ(show(b, "application_name"), "bystander");
  EXPECT_EQ(show(a, "application_name"), "setter");
  EXPECT_EQ(show(a, "statement_timeout"), "1234ms");
  EXPECT_NE(show(a, "TimeZone"), "Asia/Tokyo");
  ASSERT_TRUE(exec(a, "RESET statement_timeout").ok());
  EXPECT_EQ(show(a, "statement_timeout"), "1234ms");
}

// A SET sent as the first statement on a backend that pgmux first had to bring to the
// client's settings is remembered like any other SET.
TEST_F(TxPoolTest, SetRightAfterBackendSwitchIsKept) {
  ASSERT_TRUE(start(pool(1)));
  auto a = client("application_name=first"), b = client("application_name=second");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(exec(a, "SET work_mem = '7MB'").ok());
  ASSERT_EQ(query_value(b, "SELECT 1"), "1");
  EXPECT_EQ(query_value(a, "SELECT current_setting('work_mem')"), "7MB");
  ASSERT_TRUE(exec(a, "SET work_mem = '8MB'").ok());  // after b: a settings sync again
  ASSERT_EQ(query_value(b, "SELECT 1"), "1");
  EXPECT_EQ(query_value(a, "SELECT current_setting('work_mem')"), "8MB");
}

// A session setting changed by a SET inside a multi-statement query, or by set_config(...,
// false), stays with the client like a plain SET, as on PostgreSQL.
TEST_F(TxPoolTest, SetInMultiStatementAndSetConfigAreKept) {
  ASSERT_TRUE(start(pool(1)));
  auto a = client(), b = client();
  ASSERT_TRUE(a && b);
  ASSERT_EQ(query_value(a, "SELECT 1"), "1");
  ASSERT_TRUE(exec(a, "SET work_mem = '5MB'; SELECT 1").ok());
  ASSERT_EQ(query_value(b, "SELECT 1"), "1");
  EXPECT_EQ(query_value(a, "SELECT current_setting('work_mem')"), "5MB");
  ASSERT_TRUE(exec(a, "SELECT set_config('work_mem', '6MB', false)").ok());
  ASSERT_EQ(query_value(b, "SELECT 1"), "1");
  EXPECT_EQ(query_value(a, "SELECT current_setting('work_mem')"), "6MB");
}

// PQparameterStatus("application_name") follows the client's own SET, never another
// client's settings on the same backend, exactly as on PostgreSQL.
TEST_F(TxPoolTest, ParameterStatusFollowsOwnSet) {
  ASSERT_TRUE(start(pool(1)));
  auto steps = [](PGconn* a, PGconn* b) {
    std::string seen = PQparameterStatus(a, "application_name");
    exec(a, "SELECT 1");
    exec(a, "SET application_name = 'changed'");
    seen += std::string(",") + PQparameterStatus(a, "application_name");
    for (int i = 0; i < 3; ++i) {
      exec(b, "SELECT 1");
      exec(a, "SELECT 1");
      seen += std::string(",") + PQparameterStatus(a, "application_name");
    }
    return seen + "/" + PQparameterStatus(b, "application_name");
  };
  auto da = connect(direct_conninfo() + " application_name=mine");
  auto db = connect(direct_conninfo() + " application_name=theirs");
  ASSERT_TRUE(da && db);
  const std::string expected = steps(da.conn.get(), db.conn.get());
  EXPECT_EQ(expected, "mine,changed,changed,changed,changed/theirs");
  auto a = client("application_name=mine");
  auto b = client("application_name=theirs");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(steps(a.get(), b.get()), expected);
}

// RESET and RESET ALL go back to the client's startup values, as in PostgreSQL, in what
// the client is told (ParameterStatus) and in what its statements see in the same
// transaction, pinned or not.
TEST_F(TxPoolTest, ResetRestoresStartupValues) {
  ASSERT_TRUE(start(pool(2)));
  auto steps = [](PGconn* a) {
    std::string seen;
    auto note = [&](const std::string& sql) {
      const auto r = exec(a, sql);
      seen += (r.rows.empty() ? std::string("-") : r.first()) + "/" +
              PQparameterStatus(a, "application_name") + ",";
    };
    note("SET application_name = 'changed'");
    note("RESET application_name");
    note("SET application_name = 'again'");
    note("RESET ALL");
    note("BEGIN");
    note("SET statement_timeout = 99");
    note("RESET ALL");
    note("SELECT current_setting('application_name') || ' ' || current_setting('statement_timeout')");
    note("COMMIT");
    note("CREATE TEMP TABLE reset_pin (v int)");  // pinned from here on
    note("SET application_name = 'pinned'");
    note("RESET ALL");
    note("SELECT current_setting('application_name') || ' ' || current_setting('statement_timeout')");
    return seen;
  };
  const std::string extra = " application_name=mine options='-c statement_timeout=1234'";
  auto direct = connect(direct_conninfo() + extra);
  ASSERT_TRUE(direct) << direct.error;
  const std::string expected = steps(direct.conn.get());
  EXPECT_NE(expected.find("mine 1234ms"), std::string::npos) << expected;
  auto a = client(extra);
  ASSERT_TRUE(a);
  EXPECT_EQ(steps(a.get()), expected);
}

// ---- Pinning -------------------------------------------------------------------------

// Runs trivial queries on `clients` connections until stopped; counts failures.
class Busy {
 public:
  Busy(const std::string& conninfo, int clients) {
    for (int i = 0; i < clients; ++i) {
      threads_.emplace_back([this, conninfo] {
        auto c = connect(conninfo);
        if (!c) {
          ++failures_;
          return;
        }
        while (!stop_) {
          failures_ += exec(c.conn, "SELECT pg_sleep(0.005)").ok() ? 0 : 1;
          ++queries_;
        }
      });
    }
    // Busy for real before the test goes on.
    wait_for([&] { return queries_ >= 2 * clients || failures_ > 0; }, 5s);
  }
  ~Busy() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) {
        t.join();
      }
    }
  }
  int failures() const { return failures_; }
  int queries() const { return queries_; }

 private:
  std::atomic<bool> stop_ = false;
  std::atomic<int> failures_ = 0;
  std::atomic<int> queries_ = 0;
  std::vector<std::thread> threads_;
};

// A LISTENing client gets the NOTIFY sent by another client while three more keep the
// pool's other backend busy; it stays on one backend until it disconnects.
TEST_F(TxPoolTest, ListenReceivesNotifyWhileOthersAreBusy) {
  ASSERT_TRUE(start(pool(2)));
  auto listener = client();
  ASSERT_TRUE(listener);
  ASSERT_TRUE(exec(listener, "LISTEN txpool_chan").ok());
  const auto pid = query_value(listener, "SELECT pg_backend_pid()");
  Busy busy(pgmux_.conninfo(), 3);
  auto notifier = client();
  ASSERT_TRUE(notifier);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(exec(notifier, "NOTIFY txpool_chan, 'hello " + std::to_string(i) + "'").ok());
    // The listener is idle: the notification must come on its own.
    PGnotify* n = nullptr;
    const auto deadline = Clock::now() + 5s;
    while (n == nullptr && Clock::now() < deadline) {
      pollfd p{PQsocket(listener.get()), POLLIN, 0};
      ::poll(&p, 1, 50);
      PQconsumeInput(listener.get());
      n = PQnotifies(listener.get());
    }
    ASSERT_NE(n, nullptr) << "no notification " << i;
    EXPECT_STREQ(n->relname, "txpool_chan");
    EXPECT_EQ(std::string(n->extra), "hello " + std::to_string(i));
    PQfreemem(n);
    EXPECT_EQ(query_value(listener, "SELECT pg_backend_pid()"), pid);
  }
  busy.stop();
  EXPECT_EQ(busy.failures(), 0);
  EXPECT_GT(busy.queries(), 0);
  EXPECT_LE(app_backends(), 2);
}

// A temporary table is seen only by the client that made it, across its transactions;
// once it disconnects, the next client on that backend finds no trace of it.
TEST_F(TxPoolTest, TemporaryTableStaysWithItsClient) {
  ASSERT_TRUE(start(pool(2)));
  auto a = client(), b = client();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(exec(a, "CREATE TEMP TABLE txpool_tmp (v int)").ok());
  ASSERT_TRUE(exec(a, "INSERT INTO txpool_tmp VALUES (1), (2), (3)").ok());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(exec(b, "SELECT count(*) FROM txpool_tmp").sqlstate, "42P01");
    EXPECT_EQ(query_value(a, "SELECT count(*) FROM txpool_tmp"), "3");
    ASSERT_TRUE(exec(a, "BEGIN; INSERT INTO txpool_tmp VALUES (4); COMMIT").ok());
    ASSERT_TRUE(exec(a, "DELETE FROM txpool_tmp WHERE v = 4").ok());
  }
  ASSERT_TRUE(exec(b, "CREATE TEMP TABLE txpool_tmp (v int)").ok());  // b's own
  EXPECT_EQ(query_value(b, "SELECT count(*) FROM txpool_tmp"), "0");
  EXPECT_EQ(query_value(a, "SELECT count(*) FROM txpool_tmp"), "3");
  const auto a_pid = query_value(a, "SELECT pg_backend_pid()");
  a.reset();
  auto c = client();
  ASSERT_TRUE(c);
  ASSERT_TRUE(wait_for([&] { return query_value(c, "SELECT pg_backend_pid()") == a_pid; }, 3s))
      << "the backend of the departed client was not reused";
  EXPECT_EQ(exec(c, "SELECT count(*) FROM txpool_tmp").sqlstate, "42P01");
}

// A session advisory lock is held across the client's transactions, blocks others, and
// is released when the client unlocks it or disconnects.
TEST_F(TxPoolTest, SessionAdvisoryLockHeldAcrossTransactions) {
  ASSERT_TRUE(start(pool(2)));
  auto a = client(), b = client();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(exec(a, "SELECT pg_advisory_lock(4242)").ok());
  const auto pid = query_value(a, "SELECT pg_backend_pid()");
  auto holder = [&](int key) {
    return query_value(su_, "SELECT string_agg(pid::text, ',') FROM pg_locks WHERE locktype = "
                            "'advisory' AND objid = " + std::to_string(key) + " AND granted");
  };
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(query_value(b, "SELECT pg_try_advisory_lock(4242)"), "f");
    ASSERT_TRUE(exec(a, "BEGIN; SELECT 1; COMMIT").ok());
    EXPECT_EQ(query_value(a, "SELECT pg_backend_pid()"), pid);
    EXPECT_EQ(holder(4242), pid);
  }
  EXPECT_EQ(query_value(a, "SELECT pg_advisory_unlock(4242)"), "t");
  EXPECT_EQ(query_value(b, "SELECT pg_try_advisory_lock(4242)"), "t");
  EXPECT_EQ(query_value(b, "SELECT pg_advisory_unlock(4242)"), "t");
  // Disconnecting while holding one releases it.
  ASSERT_TRUE(exec(a, "SELECT pg_advisory_lock(4343)").ok());
  a.reset();
  EXPECT_TRUE(wait_for([&] { return !holder(4343).has_value(); }, 10s)) << holder(4343).value_or("");
  EXPECT_EQ(query_value(b, "SELECT pg_try_advisory_lock(4343)"), "t");
}

// Two pinned clients (LISTEN, temp table) on a pool of three leave one backend to six
// clients doing transactions: all commit, with their own rows; afterwards the pinned
// backends come back clean.
TEST_F(TxPoolTest, PinnedClientsDoNotBreakOthers) {
  ASSERT_TRUE(start(pool(3)));
  const std::string table = unique_name("txpool_rows");
  ASSERT_TRUE(exec(su_, "CREATE TABLE " + table + " (client int, n int); GRANT ALL ON " + table +
                            " TO app").ok());
  auto listener = client(), temp = client();
  ASSERT_TRUE(listener && temp);
  ASSERT_TRUE(exec(listener, "LISTEN pinned_chan").ok());
  ASSERT_TRUE(exec(temp, "CREATE TEMP TABLE pinned_tmp (v int)").ok());
  std::vector<std::string> errors(6);
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      auto c = connect(pgmux_.conninfo());
      for (int n = 0; c && n < 25 && errors[i].empty(); ++n) {
        const auto r = exec(c.conn, "BEGIN; INSERT INTO " + table + " VALUES (" +
                                        std::to_string(i) + ", " + std::to_string(n) +
                                        "); SELECT count(*) FROM " + table + " WHERE client = " +
                                        std::to_string(i) + "; COMMIT");
        errors[i] = r.ok() ? "" : r.error;
      }
      errors[i] += c ? "" : c.error;
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(errors[i], "") << "client " << i;
    EXPECT_EQ(query_value(su_, "SELECT count(*) FROM " + table + " WHERE client = " +
                                   std::to_string(i)),
              "25");
  }
  EXPECT_LE(app_backends(), 3);
  listener.reset();
  temp.reset();
  // Three fresh clients holding transactions use all three backends: none is left listening,
  // with a temp table, or inside a transaction.
  std::vector<PgConn> fresh;
  for (int i = 0; i < 3; ++i) {
    fresh.push_back(client());
    ASSERT_TRUE(fresh.back());
    ASSERT_TRUE(exec(fresh.back(), "BEGIN").ok());
    EXPECT_EQ(query_value(fresh.back(), "SELECT count(*) FROM pg_listening_channels()"), "0");
    EXPECT_EQ(exec(fresh.back(), "SELECT to_regclass('pinned_tmp') IS NULL").first(), "t");
  }
  for (auto& f : fresh) {
    EXPECT_TRUE(exec(f, "COMMIT").ok());
  }
  EXPECT_TRUE(exec(su_, "DROP TABLE " + table).ok());
}

// A failed transaction (status 'E') keeps its backend until ROLLBACK, as PostgreSQL keeps
// the session: the next statement gets 25P02, not a fresh backend.
TEST_F(TxPoolTest, FailedTransactionKeepsItsBackend) {
  ASSERT_TRUE(start(pool(2)));
  auto a = client();
  ASSERT_TRUE(a);
  Busy busy(pgmux_.conninfo(), 2);
  ASSERT_TRUE(exec(a, "BEGIN").ok());
  EXPECT_EQ(exec(a, "SELECT 1/0").sqlstate, "22012");
  EXPECT_EQ(PQtransactionStatus(a.get()), PQTRANS_INERROR);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(exec(a, "SELECT 1").sqlstate, "25P02");
    EXPECT_EQ(exec_params(a.get(), "SELECT $1::int", {"1"}).sqlstate, "25P02");
  }
  EXPECT_EQ(exec(a, "ROLLBACK").status, PGRES_COMMAND_OK);
  EXPECT_EQ(PQtransactionStatus(a.get()), PQTRANS_IDLE);
  ASSERT_TRUE(exec(a, "BEGIN").ok());
  EXPECT_TRUE(query_value(a, "SELECT pg_backend_pid()").has_value());
  EXPECT_TRUE(exec(a, "COMMIT").ok());
  busy.stop();
  EXPECT_EQ(busy.failures(), 0);
}

// ---- Cancel --------------------------------------------------------------------------

// PQcancel of pg_sleep(30) gets 57014 back within a second; the connection goes on.
TEST_F(TxPoolTest, CancelStopsRunningQueryWithinASecond) {
  ASSERT_TRUE(start(pool(2)));
  auto c = client();
  ASSERT_TRUE(c);
  ASSERT_EQ(PQsendQuery(c.get(), "select pg_sleep(30)"), 1);
  ASSERT_TRUE(wait_for([&] {
    return app_backends("state = 'active' AND query = 'select pg_sleep(30)'") == 1;
  }, 5s)) << activity();
  PGcancel* cancel = PQgetCancel(c.get());
  char err[256] = {};
  const auto start = Clock::now();
  EXPECT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
  PQfreeCancel(cancel);
  const auto res = finish_query(c.get(), 5s);
  ASSERT_TRUE(res.has_value()) << "the cancelled query did not end";
  EXPECT_LT(seconds_since(start), 1.0);
  EXPECT_EQ(res->sqlstate, "57014") << *res;
  EXPECT_EQ(query_value(c, "SELECT 'still here'"), "still here");
}

// A cancel from a client with nothing running touches nobody: not the query another client
// runs on the only backend, not its own open transaction.
TEST_F(TxPoolTest, CancelWithNothingRunningDoesNothing) {
  ASSERT_TRUE(start(pool(1)));
  auto idle = client(), busy = client();
  ASSERT_TRUE(idle && busy);
  ASSERT_EQ(PQsendQuery(busy.get(), "SELECT pg_sleep(1), 'slept'"), 1);
  ASSERT_TRUE(wait_for([&] { return app_backends("state = 'active'") == 1; }, 5s)) << activity();
  auto send_cancel = [](PGconn* c) {
    PGcancel* cancel = PQgetCancel(c);
    char err[256] = {};
    EXPECT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
    PQfreeCancel(cancel);
  };
  send_cancel(idle.get());
  const auto res = finish_query(busy.get(), 5s);
  ASSERT_TRUE(res.has_value());
  EXPECT_TRUE(res->ok()) << *res;
  ASSERT_TRUE(exec(idle, "BEGIN").ok());
  send_cancel(idle.get());
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(query_value(idle, "SELECT 'in transaction'"), "in transaction");
  EXPECT_TRUE(exec(idle, "COMMIT").ok());
}

// ---- Disconnects ---------------------------------------------------------------------

// A client leaving inside a transaction (with or without a Terminate message): no backend
// stays idle in transaction, its insert is rolled back, and the backend is reused.
TEST_F(TxPoolTest, DisconnectInTransactionRollsBack) {
  ASSERT_TRUE(start(pool(1)));
  const std::string table = unique_name("txpool_dc");
  ASSERT_TRUE(exec(su_, "CREATE TABLE " + table + " (v int); GRANT ALL ON " + table + " TO app").ok());
  for (const bool abrupt : {false, true}) {
    auto c = client();
    ASSERT_TRUE(c);
    ASSERT_TRUE(exec(c, "BEGIN; INSERT INTO " + table + " VALUES (1)").ok());
    const auto pid = query_value(c, "SELECT pg_backend_pid()");
    EXPECT_EQ(app_backends("state = 'idle in transaction'"), 1);
    if (abrupt) {
      ::shutdown(PQsocket(c.get()), SHUT_RDWR);  // no Terminate reaches pgmux
    }
    c.reset();
    EXPECT_TRUE(wait_for([&] { return app_backends("state LIKE 'idle in transaction%'") == 0; }, 2s))
        << "abrupt=" << abrupt << "\n" << activity();
    EXPECT_EQ(query_value(su_, "SELECT count(*) FROM " + table), "0");
    auto next = client();
    ASSERT_TRUE(next);
    EXPECT_EQ(query_value(next, "SELECT pg_backend_pid()"), pid) << "abrupt=" << abrupt;
  }
  EXPECT_TRUE(exec(su_, "DROP TABLE " + table).ok());
}

// A client leaving in the middle of an extended-protocol exchange (Execute and Flush sent,
// no Sync): the backend is brought back to idle and serves the next client.
TEST_F(TxPoolTest, DisconnectWithoutSyncLeavesBackendClean) {
  ASSERT_TRUE(start(pool(1)));
  auto c = client();
  ASSERT_TRUE(c);
  const auto pid = query_value(c, "SELECT pg_backend_pid()");
  ASSERT_EQ(PQenterPipelineMode(c.get()), 1);
  send_params(c.get(), "SELECT $1::int", {"7"});
  ASSERT_EQ(PQsendFlushRequest(c.get()), 1);
  ASSERT_EQ(PQflush(c.get()), 0);
  ASSERT_TRUE(wait_result_ready(c.get(), Clock::now() + 3s));
  PGresult* r = PQgetResult(c.get());
  EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK);
  PQclear(r);
  c.reset();
  EXPECT_TRUE(wait_for([&] { return app_backends("state = 'idle'") == 1; }, 2s)) << activity();
  auto next = client();
  ASSERT_TRUE(next);
  EXPECT_EQ(query_value(next, "SELECT pg_backend_pid()"), pid);
  EXPECT_EQ(query_value(next, "SELECT count(*) FROM pg_prepared_statements"), "0");
}

// A client leaving in the middle of COPY FROM STDIN: nothing it sent is committed and the
// backend serves the next client. (query_wait_timeout 2 s and lock_timeout keep a failure
// from hanging the suite.)
// Regression: pgmux once waited for the COPY to end before sending CopyFail, while the
// server waited for COPY data, so the backend stayed in COPY forever.
TEST_F(TxPoolTest, DisconnectDuringCopyInRollsBack) {
  PgmuxConfigOptions options = pool(1);
  options.pgmux_extra = "query_wait_timeout = 2";
  ASSERT_TRUE(start(options));
  const std::string table = unique_name("txpool_copy");
  ASSERT_TRUE(exec(su_, "CREATE TABLE " + table + " (v int); GRANT ALL ON " + table + " TO app").ok());
  auto c = client();
  ASSERT_TRUE(c);
  const auto pid = query_value(c, "SELECT pg_backend_pid()");
  PGresult* copy = PQexec(c.get(), ("COPY " + table + " FROM STDIN").c_str());
  const ExecStatusType copy_status = PQresultStatus(copy);
  PQclear(copy);
  ASSERT_EQ(copy_status, PGRES_COPY_IN);
  ASSERT_EQ(PQputCopyData(c.get(), "1\n2\n3\n", 6), 1);
  ASSERT_EQ(PQflush(c.get()), 0);
  c.reset();
  EXPECT_TRUE(wait_for([&] { return app_backends("state = 'idle'") == 1; }, 2s)) << activity();
  auto next = client();
  ASSERT_TRUE(next);
  EXPECT_EQ(query_value(next, "SELECT pg_backend_pid()"), pid);
  EXPECT_EQ(query_value(next, "SELECT count(*) FROM " + table), "0");
  EXPECT_TRUE(exec(su_, "SET lock_timeout = '1s'; DROP TABLE " + table + "; RESET lock_timeout").ok());
}

// A client that gives up while queued for a backend is forgotten: the backend freed later
// goes to the next client, which works.
TEST_F(TxPoolTest, DisconnectWhileWaitingForBackend) {
  ASSERT_TRUE(start(pool(1)));
  auto holder = client(), quitter = client(), next = client();
  ASSERT_TRUE(holder && quitter && next);
  ASSERT_TRUE(exec(holder, "BEGIN").ok());
  ASSERT_EQ(PQsendQuery(quitter.get(), "SELECT 'never'"), 1);
  ASSERT_EQ(finish_query(quitter.get(), 300ms), std::nullopt);
  quitter.reset();
  ASSERT_EQ(PQsendQuery(next.get(), "SELECT 'next'"), 1);
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(exec(holder, "COMMIT").ok());
  const auto r = finish_query(next.get(), 3s);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->first(), "next") << *r;
  EXPECT_EQ(query_value(holder, "SELECT 'holder again'"), "holder again");
}

// A client leaving during pg_sleep(10): the query is cancelled (the backend is idle within
// about a second) and the backend serves the next client.
TEST_F(TxPoolTest, DisconnectDuringQueryCancelsIt) {
  ASSERT_TRUE(start(pool(1)));
  auto c = client();
  ASSERT_TRUE(c);
  const auto pid = query_value(c, "SELECT pg_backend_pid()");
  ASSERT_TRUE(pid);
  ASSERT_EQ(PQsendQuery(c.get(), "select pg_sleep(10)"), 1);
  ASSERT_TRUE(wait_for([&] { return app_backends("state = 'active'") == 1; }, 5s)) << activity();
  const auto start = Clock::now();
  c.reset();
  EXPECT_TRUE(wait_for([&] { return app_backends("state = 'idle' AND pid = " + *pid) == 1; }, 3s))
      << activity();
  EXPECT_LT(seconds_since(start), 1.5);
  auto next = client();
  ASSERT_TRUE(next);
  const auto t = Clock::now();
  EXPECT_EQ(query_value(next, "SELECT pg_backend_pid()"), pid);
  EXPECT_LT(seconds_since(t), 1.0);
}

}  // namespace
}  // namespace pooler::integration
