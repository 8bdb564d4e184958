// End-to-end proxying through the real pgmux binary (issue 2, first slice): simple and
// extended protocol answers identical to PostgreSQL's own, errors inside transactions,
// large results and COPY with pgmux's memory bounded, backpressure from a client that
// stops reading, session pooling hygiene, client and server authentication, and psql
// and pgbench as clients. The reference is always the fixture's primary, used directly.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
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

constexpr long kMaxRssGrowthKb = 64 * 1024;

// A role that pgmux lets in without a password (auth = "trust") and logs in to
// PostgreSQL with SCRAM using the password from the config.
constexpr std::string_view kTrustUserToml =
    "[users.trusty]\nauth = \"trust\"\npassword = \"trusty_pw\"\n";

void create_trust_role() {
  auto su = connect(pg().superuser_conninfo(Node::Primary));
  ASSERT_TRUE(su) << su.error;
  const PgResult created = exec(su.conn,
                                "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
                                "'trusty') THEN CREATE ROLE trusty LOGIN PASSWORD 'trusty_pw'; "
                                "END IF; END $$");
  ASSERT_TRUE(created.ok()) << created;
}

// ---- Transcripts: everything a client can observe, as comparable text ----------------

std::string hex(const char* data, int length) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(static_cast<std::size_t>(length) * 2);
  for (int i = 0; i < length; ++i) {
    const auto byte = static_cast<unsigned char>(data[i]);
    out += kDigits[byte >> 4];
    out += kDigits[byte & 15];
  }
  return out;
}

std::string tx_status(PGconn* conn) {
  switch (PQtransactionStatus(conn)) {
    case PQTRANS_IDLE: return "IDLE";
    case PQTRANS_ACTIVE: return "ACTIVE";
    case PQTRANS_INTRANS: return "INTRANS";
    case PQTRANS_INERROR: return "INERROR";
    case PQTRANS_UNKNOWN: return "UNKNOWN";
  }
  return "?";
}

// Status, command tag, columns (name, type, format, typmod), cells (binary ones in hex),
// parameter types of a Describe, and the error fields a client would look at.
std::string describe(const PGresult* r) {
  std::ostringstream out;
  out << PQresStatus(PQresultStatus(r)) << " cmd='" << PQcmdStatus(const_cast<PGresult*>(r))
      << "' tuples='" << PQcmdTuples(const_cast<PGresult*>(r)) << "'";
  const int fields = PQnfields(r);
  for (int f = 0; f < fields; ++f) {
    out << (f == 0 ? " fields:" : ",") << " " << PQfname(r, f) << "(type=" << PQftype(r, f)
        << " fmt=" << PQfformat(r, f) << " mod=" << PQfmod(r, f) << ")";
  }
  for (int p = 0; p < PQnparams(r); ++p) {
    out << (p == 0 ? " params:" : ",") << " " << PQparamtype(r, p);
  }
  for (int row = 0; row < PQntuples(r); ++row) {
    out << "\n  row:";
    for (int f = 0; f < fields; ++f) {
      if (PQgetisnull(r, row, f)) {
        out << " NULL";
      } else if (PQfformat(r, f) == 1) {
        out << " x" << hex(PQgetvalue(r, row, f), PQgetlength(r, row, f));
      } else {
        out << " '" << PQgetvalue(r, row, f) << "'";
      }
    }
  }
  for (const auto& [code, name] : {std::pair{PG_DIAG_SEVERITY_NONLOCALIZED, "S"},
                                   {PG_DIAG_SQLSTATE, "C"},
                                   {PG_DIAG_MESSAGE_PRIMARY, "M"},
                                   {PG_DIAG_MESSAGE_DETAIL, "D"},
                                   {PG_DIAG_MESSAGE_HINT, "H"},
                                   {PG_DIAG_STATEMENT_POSITION, "P"}}) {
    if (const char* value = PQresultErrorField(r, code); value != nullptr) {
      out << " " << name << "=" << value;
    }
  }
  return out.str();
}

using Transcript = std::vector<std::string>;

void record_notice(void* arg, const PGresult* r) {
  auto* transcript = static_cast<Transcript*>(arg);
  transcript->push_back("notice: " + describe(r));
}

// Collects every result of the command just sent, then the transaction status.
void record_results(PGconn* conn, Transcript& out) {
  while (PGresult* r = PQgetResult(conn)) {
    out.push_back(describe(r));
    const bool copy = PQresultStatus(r) == PGRES_COPY_IN || PQresultStatus(r) == PGRES_COPY_OUT;
    PQclear(r);
    if (copy) {
      out.push_back("unexpected COPY");
      break;
    }
  }
  out.push_back("tx=" + tx_status(conn));
}

// The steps of a scenario: each sends with libpq's async API and records the results.
struct Steps {
  PGconn* conn;
  Transcript& out;

  void simple(const std::string& sql) {
    out.push_back("> " + sql);
    if (PQsendQuery(conn, sql.c_str()) == 0) {
      out.push_back(std::string("send failed: ") + PQerrorMessage(conn));
      return;
    }
    record_results(conn, out);
  }
  // PQexecParams; params as text, std::nullopt is NULL; result in `result_format`.
  void params(const std::string& sql, const std::vector<std::optional<std::string>>& values,
              int result_format = 0) {
    out.push_back("> params " + sql);
    std::vector<const char*> ptrs;
    for (const auto& v : values) {
      ptrs.push_back(v ? v->c_str() : nullptr);
    }
    if (PQsendQueryParams(conn, sql.c_str(), static_cast<int>(ptrs.size()), nullptr, ptrs.data(),
                          nullptr, nullptr, result_format) == 0) {
      out.push_back(std::string("send failed: ") + PQerrorMessage(conn));
      return;
    }
    record_results(conn, out);
  }
  void prepare(const std::string& name, const std::string& sql) {
    out.push_back("> prepare '" + name + "' " + sql);
    if (PQsendPrepare(conn, name.c_str(), sql.c_str(), 0, nullptr) == 0) {
      out.push_back(std::string("send failed: ") + PQerrorMessage(conn));
      return;
    }
    record_results(conn, out);
  }
  void execute(const std::string& name, const std::vector<std::string>& values) {
    out.push_back("> execute '" + name + "'");
    std::vector<const char*> ptrs;
    for (const auto& v : values) {
      ptrs.push_back(v.c_str());
    }
    if (PQsendQueryPrepared(conn, name.c_str(), static_cast<int>(ptrs.size()), ptrs.data(), nullptr,
                            nullptr, 0) == 0) {
      out.push_back(std::string("send failed: ") + PQerrorMessage(conn));
      return;
    }
    record_results(conn, out);
  }
  void describe_prepared(const std::string& name) {
    out.push_back("> describe '" + name + "'");
    if (PQsendDescribePrepared(conn, name.c_str()) == 0) {
      out.push_back(std::string("send failed: ") + PQerrorMessage(conn));
      return;
    }
    record_results(conn, out);
  }
};

using Scenario = std::function<void(Steps&)>;

Transcript run_scenario(PGconn* conn, const Scenario& scenario) {
  Transcript out;
  PQsetNoticeReceiver(conn, record_notice, &out);
  Steps steps{conn, out};
  scenario(steps);
  PQsetNoticeReceiver(conn, record_notice, nullptr);
  return out;
}

// ---- pgmux memory while data flows --------------------------------------------------

// Samples pgmux's RSS every few milliseconds on a thread until stopped; reports the
// largest growth over the RSS when sampling started.
class RssSampler {
 public:
  explicit RssSampler(const PgmuxProcess& pgmux) : pgmux_(pgmux), baseline_(pgmux.rss_kb()) {
    peak_ = baseline_;
    thread_ = std::jthread([this](std::stop_token stop) {
      while (!stop.stop_requested()) {
        const long now = pgmux_.rss_kb();
        long seen = peak_.load();
        while (now > seen && !peak_.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::sleep_for(5ms);
      }
    });
  }
  long baseline_kb() const { return baseline_; }
  // Stops sampling; the peak RSS minus the baseline.
  long growth_kb() {
    thread_.request_stop();
    if (thread_.joinable()) {
      thread_.join();
    }
    return peak_.load() - baseline_;
  }

 private:
  const PgmuxProcess& pgmux_;
  long baseline_;
  std::atomic<long> peak_{0};
  std::jthread thread_;
};

// ---- A raw look at the first authentication request ---------------------------------

// Sends a StartupMessage for `user` to 127.0.0.1:port and returns the first message
// pgmux answers with (type byte + body), "" if none came within 5 s.
std::string first_auth_message(int port, const std::string& user) {
  const int fd = connect_loopback(port);
  if (fd < 0) {
    return "";
  }
  // The size of the first whole message in `bytes`, or 0 while there is none.
  const auto message_size = [](const std::string& bytes) -> std::size_t {
    if (bytes.size() < 5) {
      return 0;
    }
    std::uint32_t len = 0;
    std::memcpy(&len, bytes.data() + 1, 4);
    const std::size_t size = 1 + std::size_t{ntohl(len)};
    return bytes.size() >= size ? size : 0;
  };
  std::string got;
  const std::string packet = startup_packet({{"user", user}, {"database", "app"}});
  if (::send(fd, packet.data(), packet.size(), MSG_NOSIGNAL) ==
      static_cast<ssize_t>(packet.size())) {
    got = read_socket(fd, 5s, nullptr,
                      [&](const std::string& bytes) { return message_size(bytes) != 0; });
    if (const std::size_t size = message_size(got); size != 0) {
      got.resize(size);
    }
  }
  ::close(fd);
  return got;
}

// The auth code of an Authentication* message ('R'), or -1.
int auth_code(const std::string& message) {
  if (message.size() < 9 || message[0] != 'R') {
    return -1;
  }
  std::uint32_t code = 0;
  std::memcpy(&code, message.data() + 5, 4);
  return static_cast<int>(ntohl(code));
}

// ---- The fixture --------------------------------------------------------------------

PgmuxConfigOptions pool_options(std::string pool_mode = "transaction", int pool_size = 10) {
  PgmuxConfigOptions options;
  options.pool_mode = std::move(pool_mode);
  options.pool_size = pool_size;
  options.replica = false;  // this slice proxies to the primary; routing is tested elsewhere
  options.log_level = "info";
  return options;
}

class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PgmuxProcess::binary_exists()) {
      GTEST_SKIP() << "pgmux binary " << PgmuxProcess::binary_path() << " not built";
    }
  }

  // Starts pgmux; ASSERT_NO_FATAL_FAILURE(start(...)) in tests.
  void start(const PgmuxConfigOptions& options = pool_options()) {
    ASSERT_TRUE(pgmux_.start(PgmuxProcess::typical_config(options)));
  }

  // Starts pgmux for a test of its memory use. Under AddressSanitizer freed memory sits
  // in a quarantine (256 MB by default) before reuse, which would show as RSS growth
  // with every buffer pgmux frees; a small quarantine makes RSS track live memory.
  void start_for_memory_test() {
    PgmuxOptions process;
    const char* asan = std::getenv("ASAN_OPTIONS");
    process.env.push_back("ASAN_OPTIONS=" + std::string(asan != nullptr ? asan : "") +
                          (asan != nullptr && *asan != '\0' ? ":" : "") + "quarantine_size_mb=8");
    ASSERT_TRUE(pgmux_.start(PgmuxProcess::typical_config(pool_options()), process));
  }

  // A libpq client of pgmux; check with ASSERT_TRUE(c) << c.error.
  ConnectResult client(std::string_view user = "app", std::string_view password = "secret") {
    return connect(pgmux_.conninfo(user, password, "app"));
  }

  // Runs `scenario` through pgmux and directly, expecting the same transcript.
  void expect_same_as_direct(const Scenario& scenario) {
    auto via = client();
    ASSERT_TRUE(via) << via.error;
    auto direct = connect(direct_conninfo());
    ASSERT_TRUE(direct) << direct.error;
    const Transcript expected = run_scenario(direct.conn.get(), scenario);
    const Transcript actual = run_scenario(via.conn.get(), scenario);
    for (std::size_t i = 0; i < std::max(expected.size(), actual.size()); ++i) {
      EXPECT_EQ(i < actual.size() ? actual[i] : "<missing>",
                i < expected.size() ? expected[i] : "<missing>")
          << "entry " << i << " (left: through pgmux, right: PostgreSQL directly)";
    }
    EXPECT_EQ(PQstatus(via.conn.get()), CONNECTION_OK) << pgmux_.log_tail();
  }

  PgmuxProcess pgmux_;
};

// Simple-protocol queries (several per message, errors, notices, the empty query, wide
// and non-ASCII values) give exactly what PostgreSQL gives.
TEST_F(ProxyTest, SimpleQueriesMatchDirect) {
  ASSERT_NO_FATAL_FAILURE(start());
  expect_same_as_direct([](Steps& s) {
    s.simple(
        "SELECT 1 AS one, 'two'::text AS two, NULL::int AS three, 4.5::numeric AS four, "
        "true AS five, '2024-02-29'::date AS six");
    s.simple("SELECT n, md5(n::text) AS hash FROM generate_series(1, 500) AS n");
    s.simple("SELECT 1 AS a; SELECT 2 AS b; SELECT 'x' || 'y' AS c");
    s.simple(
        "SELECT 'ünïcødé ✓' AS u, E'tab\\there' AS t, length(repeat('ab', 50000)) AS len, "
        "repeat('ab', 50000) AS long");
    s.simple("VALUES (1, 'a'), (2, NULL), (3, '')");
    s.simple("SELECT 1/0");
    s.simple("SELECT * FROM no_such_table_for_proxy_test");
    s.simple("SELECT 1 AS before_error; SELECT 1/0; SELECT 3 AS never");
    s.simple("");
    s.simple("DO $$ BEGIN RAISE NOTICE 'hello %', 42; RAISE WARNING 'careful'; END $$");
    s.simple(
        "BEGIN; CREATE TEMP TABLE proxy_simple_tmp (x int) ON COMMIT DROP; "
        "INSERT INTO proxy_simple_tmp VALUES (1), (2), (3); "
        "UPDATE proxy_simple_tmp SET x = x + 1; DELETE FROM proxy_simple_tmp WHERE x = 2; "
        "SELECT x FROM proxy_simple_tmp ORDER BY x; COMMIT");
    s.simple("SHOW DateStyle");
    s.simple("SELECT current_user, current_database(), pg_is_in_recovery()");
  });
}

// PQexecParams (text and binary results, NULL parameters, bad values) and
// PQprepare/PQexecPrepared/PQdescribePrepared (named, unnamed, unknown, DEALLOCATE)
// give exactly what PostgreSQL gives.
TEST_F(ProxyTest, ExtendedQueriesMatchDirect) {
  ASSERT_NO_FATAL_FAILURE(start());
  expect_same_as_direct([](Steps& s) {
    s.params("SELECT $1::int + $2::int AS sum, $3::text AS t, $4::text IS NULL AS is_null",
             {"40", "2", "héllo", std::nullopt});
    s.params("SELECT $1::int4 AS i, $2::bytea AS b, $3::float8 AS f", {"258", "\\x00ff10", "0.5"},
             /*result_format=*/1);
    s.params("SELECT n FROM generate_series(1, $1::int) AS n", {"1000"});
    s.params("SELECT $1::int", {"not a number"});
    s.params("SELEC 1", {});
    s.prepare("proxy_double", "SELECT $1::int * 2 AS doubled, $2::text AS label");
    s.describe_prepared("proxy_double");
    for (const char* v : {"1", "21", "-7"}) {
      s.execute("proxy_double", {v, std::string("v") + v});
    }
    s.execute("proxy_missing", {});
    s.prepare("", "SELECT $1::text || '!' AS shout");
    s.execute("", {"unnamed"});
    s.describe_prepared("");
    s.prepare("proxy_bad", "SELECT * FROM no_such_table_for_proxy_test");
    s.simple("DEALLOCATE proxy_double");
    s.execute("proxy_double", {"1", "x"});
    s.params("SELECT 'after errors' AS still", {});
  });
}

// Preparing a second statement under a name already in use is an error (42P05), and
// the name keeps its first statement; only the unnamed statement may be replaced.
// Regression (was a bug): under transaction pooling pgmux answers ParseComplete and silently rebinds the
// name to the new statement (ClientSession::handle_parse: "re-Parse under the same name
// replaces it"); the next Execute then runs the wrong statement.
TEST_F(ProxyTest, DuplicatePreparedStatementNameIsAnError) {
  ASSERT_NO_FATAL_FAILURE(start());
  expect_same_as_direct([](Steps& s) {
    s.prepare("proxy_dup", "SELECT $1::int * 2 AS doubled");
    s.prepare("proxy_dup", "SELECT 'replaced' AS other");
    s.execute("proxy_dup", {"5"});
    s.simple("DEALLOCATE proxy_dup");
  });
}

// A pipeline of Parse/Bind/Execute with one Sync, an error in the middle aborting the
// rest up to the Sync, then a second pipeline: the same results as PostgreSQL's.
TEST_F(ProxyTest, PipelineMatchesDirect) {
  ASSERT_NO_FATAL_FAILURE(start());
  expect_same_as_direct([](Steps& s) {
    if (PQenterPipelineMode(s.conn) == 0) {
      s.out.push_back("cannot enter pipeline mode");
      return;
    }
    const char* one[] = {"1"};
    const char* zero[] = {"0"};
    PQsendQueryParams(s.conn, "SELECT $1::int AS a", 1, nullptr, one, nullptr, nullptr, 0);
    PQsendQueryParams(s.conn, "SELECT 10 / $1::int AS b", 1, nullptr, zero, nullptr, nullptr, 0);
    PQsendQueryParams(s.conn, "SELECT 3 AS skipped", 0, nullptr, nullptr, nullptr, nullptr, 0);
    PQpipelineSync(s.conn);
    PQsendPrepare(s.conn, "proxy_pipe", "SELECT $1::int + 1 AS next", 0, nullptr);
    PQsendQueryPrepared(s.conn, "proxy_pipe", 1, one, nullptr, nullptr, 0);
    PQpipelineSync(s.conn);
    // Results: each query's, then NULL; a PIPELINE_SYNC after each Sync.
    int syncs = 0;
    int nulls_in_a_row = 0;
    while (syncs < 2 && nulls_in_a_row < 2) {
      PGresult* r = PQgetResult(s.conn);
      if (r == nullptr) {
        ++nulls_in_a_row;
        continue;
      }
      nulls_in_a_row = 0;
      s.out.push_back(describe(r));
      syncs += PQresultStatus(r) == PGRES_PIPELINE_SYNC ? 1 : 0;
      PQclear(r);
    }
    s.out.push_back("syncs=" + std::to_string(syncs));
    PQexitPipelineMode(s.conn);
    s.simple("DEALLOCATE proxy_pipe");
  });
}

// Division by zero inside BEGIN: the client sees 22012, later statements 25P02 until
// ROLLBACK, which works; the connection is then usable, through both protocols.
TEST_F(ProxyTest, ErrorInsideTransactionThenRollbackLeavesConnectionUsable) {
  ASSERT_NO_FATAL_FAILURE(start());
  expect_same_as_direct([](Steps& s) {
    s.simple("BEGIN");
    s.simple("SELECT 1/0");
    s.simple("SELECT 1");
    s.params("SELECT $1::int", {"2"});
    s.simple("ROLLBACK");
    s.simple("SELECT 'usable' AS after_rollback");
    s.simple("BEGIN");
    s.params("SELECT 1 / $1::int", {"0"});
    s.simple("COMMIT");  // in a failed transaction COMMIT answers ROLLBACK
    s.params("SELECT 'usable again' AS after_commit", {});
  });

  // The same, asserted directly rather than by comparison.
  auto c = client();
  ASSERT_TRUE(c) << c.error;
  const PgResult begin = exec(c.conn, "BEGIN");
  ASSERT_TRUE(begin.ok()) << begin;
  const PgResult failed = exec(c.conn, "SELECT 1/0");
  EXPECT_EQ(failed.sqlstate, "22012") << failed;
  EXPECT_NE(failed.error.find("division by zero"), std::string::npos) << failed;
  EXPECT_EQ(PQtransactionStatus(c.conn.get()), PQTRANS_INERROR);
  EXPECT_EQ(exec(c.conn, "SELECT 1").sqlstate, "25P02");
  const PgResult rollback = exec(c.conn, "ROLLBACK");
  EXPECT_TRUE(rollback.ok()) << rollback;
  EXPECT_EQ(PQtransactionStatus(c.conn.get()), PQTRANS_IDLE);
  EXPECT_EQ(query_value(c.conn, "SELECT 6 * 7"), "42");
}

// A 1,000,000-row result read in single-row mode arrives whole, and pgmux's RSS does
// not grow with it (rows are streamed, not collected).
TEST_F(ProxyTest, MillionRowResultKeepsRssBounded) {
  ASSERT_NO_FATAL_FAILURE(start_for_memory_test());
  auto c = client();
  ASSERT_TRUE(c) << c.error;
  ASSERT_EQ(query_value(c.conn, "SELECT 1"), "1");

  RssSampler rss(pgmux_);
  ASSERT_EQ(PQsendQuery(c.conn.get(),
                        "SELECT n, 'row number ' || n AS label FROM generate_series(1, 1000000) n"),
            1);
  ASSERT_EQ(PQsetSingleRowMode(c.conn.get()), 1);
  long rows = 0;
  long long sum = 0;
  std::string last_label;
  ExecStatusType final_status = PGRES_FATAL_ERROR;
  while (PGresult* r = PQgetResult(c.conn.get())) {
    if (PQresultStatus(r) == PGRES_SINGLE_TUPLE) {
      ++rows;
      sum += std::atoll(PQgetvalue(r, 0, 0));
      if (rows == 1000000) {
        last_label = PQgetvalue(r, 0, 1);
      }
    } else {
      final_status = PQresultStatus(r);
      if (final_status != PGRES_TUPLES_OK) {
        ADD_FAILURE() << describe(r);
      }
    }
    PQclear(r);
  }
  const long growth = rss.growth_kb();
  EXPECT_EQ(final_status, PGRES_TUPLES_OK);
  EXPECT_EQ(rows, 1000000);
  EXPECT_EQ(sum, 500000500000LL);
  EXPECT_EQ(last_label, "row number 1000000");
  EXPECT_LT(growth, kMaxRssGrowthKb) << "pgmux RSS grew from " << rss.baseline_kb() << " KiB";
  EXPECT_EQ(query_value(c.conn, "SELECT 'after'"), "after");
}

// A 50 MB bytea (100 MB as hex text, in ONE DataRow and ONE CopyData message) passes
// through whole, and pgmux's RSS stays far below the message size.
TEST_F(ProxyTest, FiftyMegabyteByteaKeepsRssBounded) {
  ASSERT_NO_FATAL_FAILURE(start_for_memory_test());
  auto c = client();
  ASSERT_TRUE(c) << c.error;
  ASSERT_EQ(query_value(c.conn, "SELECT 1"), "1");
  constexpr int kBytes = 50'000'000;

  {
    RssSampler rss(pgmux_);
    ASSERT_EQ(PQsendQuery(c.conn.get(), "SELECT repeat('x', 50000000)::bytea AS blob"), 1);
    ASSERT_EQ(PQsetSingleRowMode(c.conn.get()), 1);
    int rows = 0;
    while (PGresult* r = PQgetResult(c.conn.get())) {
      if (PQresultStatus(r) == PGRES_SINGLE_TUPLE) {
        ++rows;
        const int length = PQgetlength(r, 0, 0);
        EXPECT_EQ(length, 2 + 2 * kBytes);
        const char* value = PQgetvalue(r, 0, 0);
        EXPECT_EQ(std::string_view(value, 6), "\\x7878");
        EXPECT_EQ(std::string_view(value + length - 4, 4), "7878");
      } else {
        EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << describe(r);
      }
      PQclear(r);
    }
    const long growth = rss.growth_kb();
    EXPECT_EQ(rows, 1);
    EXPECT_LT(growth, kMaxRssGrowthKb) << "SELECT: pgmux RSS grew from " << rss.baseline_kb();
  }

  {
    RssSampler rss(pgmux_);
    PGresult* started =
        PQexec(c.conn.get(), "COPY (SELECT repeat('x', 50000000)::bytea) TO STDOUT");
    ASSERT_EQ(PQresultStatus(started), PGRES_COPY_OUT) << describe(started);
    PQclear(started);
    char* line = nullptr;
    int lines = 0;
    int length = 0;
    while ((length = PQgetCopyData(c.conn.get(), &line, 0)) > 0) {
      ++lines;
      // Text COPY doubles the backslash of \x and ends the row with a newline.
      EXPECT_EQ(length, 3 + 2 * kBytes + 1);
      EXPECT_EQ(std::string_view(line, 7), "\\\\x7878");
      PQfreemem(line);
    }
    EXPECT_EQ(length, -1) << PQerrorMessage(c.conn.get());
    PGresult* done = PQgetResult(c.conn.get());
    EXPECT_EQ(PQresultStatus(done), PGRES_COMMAND_OK) << describe(done);
    PQclear(done);
    while (PGresult* extra = PQgetResult(c.conn.get())) {
      PQclear(extra);
    }
    const long growth = rss.growth_kb();
    EXPECT_EQ(lines, 1);
    EXPECT_LT(growth, kMaxRssGrowthKb) << "COPY: pgmux RSS grew from " << rss.baseline_kb();
  }
  EXPECT_EQ(query_value(c.conn, "SELECT 'after'"), "after");
}

// A client that asks for ~200 MB and reads nothing for 3 s: pgmux stops reading from
// the server (which then waits in ClientWrite) instead of buffering; RSS stays flat;
// afterwards the client drains every row.
TEST_F(ProxyTest, StalledReaderGetsBackpressure) {
  ASSERT_NO_FATAL_FAILURE(start_for_memory_test());
  auto c = client();
  ASSERT_TRUE(c) << c.error;
  auto su = connect(pg().superuser_conninfo(Node::Primary));
  ASSERT_TRUE(su) << su.error;
  const std::string backend_pid = query_value(c.conn, "SELECT pg_backend_pid()").value_or("");
  ASSERT_FALSE(backend_pid.empty());

  constexpr int kRows = 200'000;
  constexpr int kWidth = 1000;  // 200,000 rows x ~1 KB = ~200 MB
  RssSampler rss(pgmux_);
  ASSERT_EQ(PQsetnonblocking(c.conn.get(), 1), 0);
  ASSERT_EQ(PQsendQuery(c.conn.get(),
                        "SELECT n, repeat('x', 1000) AS filler "
                        "FROM generate_series(1, 200000) AS n /* stall */"),
            1);
  while (PQflush(c.conn.get()) == 1) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(PQsetSingleRowMode(c.conn.get()), 1);

  // Not reading. The server must end up blocked writing to pgmux.
  const auto stall_end = Clock::now() + 3s;
  std::string wait_event;
  while (Clock::now() < stall_end) {
    wait_event = query_value(su.conn,
                             "SELECT coalesce(wait_event, state) FROM pg_stat_activity "
                             "WHERE query LIKE '%/* stall */' AND pid <> pg_backend_pid()")
                     .value_or("<no such backend>");
    std::this_thread::sleep_for(100ms);
  }
  const long stalled_growth = rss.growth_kb();
  EXPECT_EQ(wait_event, "ClientWrite") << "the server should wait for pgmux to read";
  EXPECT_LT(stalled_growth, kMaxRssGrowthKb)
      << "pgmux RSS grew from " << rss.baseline_kb() << " KiB while the client did not read";

  RssSampler drain_rss(pgmux_);
  ASSERT_EQ(PQsetnonblocking(c.conn.get(), 0), 0);
  long rows = 0;
  long long bytes = 0;
  while (PGresult* r = PQgetResult(c.conn.get())) {
    if (PQresultStatus(r) == PGRES_SINGLE_TUPLE) {
      ++rows;
      bytes += PQgetlength(r, 0, 1);
    } else {
      EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << describe(r);
    }
    PQclear(r);
  }
  EXPECT_EQ(rows, kRows);
  EXPECT_EQ(bytes, static_cast<long long>(kRows) * kWidth);
  EXPECT_LT(drain_rss.growth_kb(), kMaxRssGrowthKb);
  EXPECT_EQ(query_value(c.conn, "SELECT 'after'"), "after");
}

// COPY FROM STDIN of 100,000 rows sent in chunks lands whole; COPY TO STDOUT gives them
// back; a malformed row fails the COPY with 22P02 and the connection stays usable.
TEST_F(ProxyTest, CopyInAndOutOf100kRows) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto c = client();
  ASSERT_TRUE(c) << c.error;
  const std::string table = unique_name("proxy_copy");
  ASSERT_TRUE(exec(c.conn, "CREATE TABLE " + table + " (id int PRIMARY KEY, note text)").ok());

  PGresult* in = PQexec(c.conn.get(), ("COPY " + table + " FROM STDIN").c_str());
  ASSERT_EQ(PQresultStatus(in), PGRES_COPY_IN) << describe(in);
  PQclear(in);
  std::string chunk;
  for (int id = 1; id <= 100'000; ++id) {
    chunk += std::to_string(id) + "\tnote " + std::to_string(id) + "\n";
    if (id % 1000 == 0) {
      ASSERT_EQ(PQputCopyData(c.conn.get(), chunk.data(), static_cast<int>(chunk.size())), 1)
          << PQerrorMessage(c.conn.get());
      chunk.clear();
    }
  }
  ASSERT_EQ(PQputCopyEnd(c.conn.get(), nullptr), 1);
  PGresult* copied = PQgetResult(c.conn.get());
  EXPECT_EQ(PQresultStatus(copied), PGRES_COMMAND_OK) << describe(copied);
  EXPECT_STREQ(PQcmdTuples(copied), "100000");
  PQclear(copied);
  while (PGresult* extra = PQgetResult(c.conn.get())) {
    PQclear(extra);
  }
  EXPECT_EQ(query_value(c.conn, "SELECT count(*) || ' ' || sum(id) FROM " + table),
            "100000 5000050000");

  PGresult* out = PQexec(c.conn.get(), ("COPY " + table + " TO STDOUT").c_str());
  ASSERT_EQ(PQresultStatus(out), PGRES_COPY_OUT) << describe(out);
  PQclear(out);
  long lines = 0;
  long long id_sum = 0;
  bool well_formed = true;
  char* line = nullptr;
  int length = 0;
  while ((length = PQgetCopyData(c.conn.get(), &line, 0)) > 0) {
    ++lines;
    const std::string_view text(line, static_cast<std::size_t>(length));
    const auto tab = text.find('\t');
    const std::string id(text.substr(0, tab));
    well_formed =
        well_formed && tab != std::string_view::npos && text.substr(tab + 1) == "note " + id + "\n";
    id_sum += std::atoll(id.c_str());
    PQfreemem(line);
  }
  EXPECT_EQ(length, -1) << PQerrorMessage(c.conn.get());
  PGresult* done = PQgetResult(c.conn.get());
  EXPECT_EQ(PQresultStatus(done), PGRES_COMMAND_OK) << describe(done);
  EXPECT_STREQ(PQcmdTuples(done), "100000");
  PQclear(done);
  while (PGresult* extra = PQgetResult(c.conn.get())) {
    PQclear(extra);
  }
  EXPECT_EQ(lines, 100000);
  EXPECT_EQ(id_sum, 5000050000LL);
  EXPECT_TRUE(well_formed);

  // A bad row: the server rejects the COPY; the client gets the error and goes on.
  PGresult* bad = PQexec(c.conn.get(), ("COPY " + table + " FROM STDIN").c_str());
  ASSERT_EQ(PQresultStatus(bad), PGRES_COPY_IN) << describe(bad);
  PQclear(bad);
  const std::string rows = "200001\tfine\nnot-a-number\tbad\n";
  ASSERT_EQ(PQputCopyData(c.conn.get(), rows.data(), static_cast<int>(rows.size())), 1);
  ASSERT_EQ(PQputCopyEnd(c.conn.get(), nullptr), 1);
  PGresult* rejected = PQgetResult(c.conn.get());
  EXPECT_EQ(PQresultStatus(rejected), PGRES_FATAL_ERROR);
  EXPECT_STREQ(PQresultErrorField(rejected, PG_DIAG_SQLSTATE), "22P02") << describe(rejected);
  PQclear(rejected);
  while (PGresult* extra = PQgetResult(c.conn.get())) {
    PQclear(extra);
  }
  EXPECT_EQ(query_value(c.conn, "SELECT count(*) FROM " + table), "100000");
  EXPECT_TRUE(exec(c.conn, "DROP TABLE " + table).ok());
}

// Session pooling with one backend: the second client gets the first one's backend
// (same pg_backend_pid) but none of its state: temp table, SET, prepared statement,
// advisory lock and LISTEN are gone (DISCARD ALL on release).
TEST_F(ProxyTest, SessionPoolingResetsAndReusesTheBackend) {
  ASSERT_NO_FATAL_FAILURE(start(pool_options("session", 1)));
  std::string first_pid;
  std::string default_work_mem;
  {
    auto first = client();
    ASSERT_TRUE(first) << first.error;
    first_pid = query_value(first.conn, "SELECT pg_backend_pid()").value_or("");
    default_work_mem = query_value(first.conn, "SHOW work_mem").value_or("");
    ASSERT_FALSE(first_pid.empty());
    for (const char* sql :
         {"CREATE TEMP TABLE session_leftover (x int)", "INSERT INTO session_leftover VALUES (1)",
          "SET work_mem = '7MB'", "SET application_name = 'first_client'",
          "PREPARE session_stmt AS SELECT 1", "SELECT pg_advisory_lock(4242)",
          "LISTEN session_channel"}) {
      const PgResult r = exec(first.conn, sql);
      ASSERT_TRUE(r.ok()) << sql << ": " << r;
    }
    EXPECT_EQ(query_value(first.conn, "SHOW work_mem"), "7MB");
  }  // disconnect: the backend goes back to the pool

  auto second = client();
  ASSERT_TRUE(second) << second.error;
  EXPECT_EQ(query_value(second.conn, "SELECT pg_backend_pid()"), first_pid)
      << "pool_size 1 in session mode must hand over the same backend";
  EXPECT_EQ(query_value(second.conn, "SELECT to_regclass('pg_temp.session_leftover') IS NULL"),
            "t");
  EXPECT_EQ(exec(second.conn, "SELECT * FROM session_leftover").sqlstate, "42P01");
  EXPECT_EQ(query_value(second.conn, "SHOW work_mem"), default_work_mem);
  EXPECT_NE(query_value(second.conn, "SHOW application_name"), "first_client");
  EXPECT_EQ(query_value(second.conn, "SELECT count(*) FROM pg_prepared_statements"), "0");
  EXPECT_EQ(query_value(second.conn,
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND pid = pg_backend_pid()"),
            "0");
  EXPECT_EQ(query_value(second.conn, "SELECT count(*) FROM pg_listening_channels()"), "0");
}

// The client side: app gets a SCRAM-SHA-256 challenge and logs in with it.
TEST_F(ProxyTest, ScramUserLogsIn) {
  ASSERT_NO_FATAL_FAILURE(start());
  const std::string request = first_auth_message(pgmux_.port(), "app");
  EXPECT_EQ(auth_code(request), 10) << "expected AuthenticationSASL";
  EXPECT_NE(request.find("SCRAM-SHA-256"), std::string::npos);
  auto c = client("app", "secret");
  ASSERT_TRUE(c) << c.error;
  EXPECT_TRUE(PQconnectionUsedPassword(c.conn.get()));
  EXPECT_EQ(query_value(c.conn, "SELECT current_user"), "app");
}

// The client side: app_md5 (auth = "md5") gets an MD5 challenge and logs in with it.
TEST_F(ProxyTest, Md5UserLogsIn) {
  ASSERT_NO_FATAL_FAILURE(start());
  const std::string request = first_auth_message(pgmux_.port(), "app_md5");
  EXPECT_EQ(auth_code(request), 5) << "expected AuthenticationMD5Password";
  EXPECT_EQ(request.size(), 1u + 4 + 4 + 4) << "type, length, code, salt";
  auto c = client("app_md5", "secret_md5");
  ASSERT_TRUE(c) << c.error;
  EXPECT_TRUE(PQconnectionUsedPassword(c.conn.get()));
  EXPECT_EQ(query_value(c.conn, "SELECT current_user"), "app_md5");
}

// A trust user gets AuthenticationOk at once and logs in without a password.
TEST_F(ProxyTest, TrustUserLogsInWithoutPassword) {
  ASSERT_NO_FATAL_FAILURE(create_trust_role());
  PgmuxConfigOptions options = pool_options();
  options.extra = kTrustUserToml;
  ASSERT_NO_FATAL_FAILURE(start(options));
  EXPECT_EQ(auth_code(first_auth_message(pgmux_.port(), "trusty")), 0)
      << "expected AuthenticationOk";
  auto c = connect(make_conninfo({{"host", "127.0.0.1"},
                                  {"port", std::to_string(pgmux_.port())},
                                  {"user", "trusty"},
                                  {"dbname", "app"},
                                  {"sslmode", "disable"},
                                  {"gssencmode", "disable"}}));
  ASSERT_TRUE(c) << c.error;
  EXPECT_FALSE(PQconnectionUsedPassword(c.conn.get()));
  EXPECT_EQ(query_value(c.conn, "SELECT current_user"), "trusty");
}

// The server side: pgmux logs in to PostgreSQL with whatever pg_hba.conf demands,
// SCRAM for app and trusty, md5 for app_md5, as the server log shows
// (log_connections, switched on for this test only).
TEST_F(ProxyTest, BackendLoginUsesTheMethodTheServerDemands) {
  ASSERT_NO_FATAL_FAILURE(create_trust_role());
  auto su = connect(pg().superuser_conninfo(Node::Primary));
  ASSERT_TRUE(su) << su.error;
  ASSERT_TRUE(exec(su.conn, "ALTER SYSTEM SET log_connections = on").ok());
  ASSERT_TRUE(exec(su.conn, "SELECT pg_reload_conf()").ok());
  struct Restore {
    PGconn* conn;
    ~Restore() {
      exec(conn, "ALTER SYSTEM RESET log_connections");
      exec(conn, "SELECT pg_reload_conf()");
    }
  } restore{su.conn.get()};
  // New sessions see the reloaded setting once the postmaster has read it.
  const auto deadline = Clock::now() + 5s;
  while (Clock::now() < deadline) {
    auto probe = connect(pg().superuser_conninfo(Node::Primary));
    if (probe && query_value(probe.conn, "SHOW log_connections") == "on") {
      break;
    }
    std::this_thread::sleep_for(50ms);
  }

  PgmuxConfigOptions options = pool_options();
  options.extra = kTrustUserToml;
  ASSERT_NO_FATAL_FAILURE(start(options));
  struct Login {
    std::string user;
    std::string password;
    std::string method;
  };
  for (const Login& login :
       {Login{"app", "secret", "scram-sha-256"}, Login{"app_md5", "secret_md5", "md5"},
        Login{"trusty", "", "scram-sha-256"}}) {
    SCOPED_TRACE(login.user);
    auto c = client(login.user, login.password);
    ASSERT_TRUE(c) << c.error;
    const std::string pid = query_value(c.conn, "SELECT pg_backend_pid()").value_or("?");
    std::ifstream log(pg().log_path(Node::Primary));
    std::string line;
    std::string found;
    while (std::getline(log, line)) {
      if (line.find("[" + pid + "]") != std::string::npos &&
          line.find("connection authenticated") != std::string::npos) {
        found = line;
      }
    }
    EXPECT_NE(found.find("identity=\"" + login.user + "\" method=" + login.method),
              std::string::npos)
        << "backend pid " << pid << ": '" << found << "'\n"
        << pg().log_tail(Node::Primary, 20);
  }
}

// psql -c through pgmux: several commands, one after another, and an error exit.
TEST_F(ProxyTest, PsqlRunsThroughPgmux) {
  ASSERT_NO_FATAL_FAILURE(start());
  const CommandResult ok = run_command({"psql", "-X", "-A", "-t", "-d", pgmux_.conninfo(), "-c",
                                        "SELECT 40 + 2", "-c", "SELECT current_user"});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_EQ(ok.output, "42\napp\n");

  const CommandResult failed = run_command({"psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
                                            pgmux_.conninfo(), "-c", "SELECT 1/0"});
  EXPECT_EQ(failed.exit_code, 1) << failed.output;
  EXPECT_NE(failed.output.find("division by zero"), std::string::npos) << failed.output;
}

// pgbench -i, then 8 clients for 3 s through pgmux (transaction pooling): no failed
// transactions, and some were processed.
TEST_F(ProxyTest, PgbenchRunsWithoutFailures) {
  ASSERT_NO_FATAL_FAILURE(start());
  const CommandResult init = run_command({"pgbench", "-i", "-q", "-s", "1", pgmux_.conninfo()});
  ASSERT_EQ(init.exit_code, 0) << init.output << pgmux_.log_tail();

  const CommandResult run =
      run_command({"pgbench", "-c", "8", "-j", "2", "-T", "3", pgmux_.conninfo()});
  EXPECT_EQ(run.exit_code, 0) << run.output << pgmux_.log_tail();
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(run.output, m, std::regex(R"(number of failed transactions: (\d+))")))
      << run.output;
  EXPECT_EQ(m[1], "0") << run.output;
  ASSERT_TRUE(std::regex_search(run.output, m,
                                std::regex(R"(number of transactions actually processed: (\d+))")))
      << run.output;
  EXPECT_GT(std::stol(m[1]), 0) << run.output;

  auto c = client();
  ASSERT_TRUE(c) << c.error;
  EXPECT_EQ(query_value(c.conn, "SELECT count(*) FROM pgbench_accounts"), "100000");
  EXPECT_TRUE(exec(c.conn,
                   "DROP TABLE pgbench_accounts, pgbench_branches, pgbench_history, "
                   "pgbench_tellers")
                  .ok());
}

}  // namespace
}  // namespace pooler::integration
