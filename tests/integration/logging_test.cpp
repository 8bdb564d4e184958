// Logs (issue 2): JSON lines with log_format = "json", every line about a connection naming
// it, and no password in any log line, whatever the clients do.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "tests/integration/pg_client.h"
#include "tests/integration/pgmux_process.h"
#include "tests/integration/postgres_environment.h"

namespace pooler::integration {
namespace {

// A run with successful and failed logins and queries, in JSON; the log is then read whole.
TEST(LoggingTest, JsonLinesWithoutSecrets) {
  PgmuxConfigOptions o;
  o.log_level = "debug";
  o.pgmux_extra = "log_format = \"json\"\nstats_period = 0.2";
  PgmuxProcess pgmux;
  ASSERT_TRUE(pgmux.start(PgmuxProcess::typical_config(o)));
  {
    auto ok = connect(pgmux.conninfo());
    ASSERT_TRUE(ok) << ok.error;
    EXPECT_EQ(query_value(ok.conn, "SELECT 1"), "1");
    EXPECT_FALSE(exec(ok.conn, "SELECT 1/0").ok());
  }
  EXPECT_FALSE(connect(pgmux.conninfo("app", "not-the-secret")));
  EXPECT_FALSE(connect(pgmux.conninfo("app_md5", "wrong-md5-secret")));
  EXPECT_FALSE(connect(pgmux.conninfo("nobody", "nobodys-secret")));
  EXPECT_FALSE(connect(pgmux.conninfo("app", "secret", "no_such_db")));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a stats line or two
  EXPECT_EQ(pgmux.stop(), 0);

  const std::string log = pgmux.log_text();
  ASSERT_FALSE(log.empty());
  // Every line is one JSON object (checked by a real JSON parser).
  const auto parsed = run_command(
      {"python3", "-c",
       "import json,sys\n"
       "n=0\n"
       "for line in open(sys.argv[1]):\n"
       "  if line.strip():\n"
       "    o=json.loads(line); assert isinstance(o, dict) and 'msg' in o and 'level' in o; n+=1\n"
       "print(n)\n",
       pgmux.log_path()});
  ASSERT_TRUE(parsed.ok()) << parsed.output << "\n" << log;
  EXPECT_GT(std::stoi(parsed.output), 5) << log;
  // Failed logins are logged with the client's id and address.
  EXPECT_NE(log.find("password authentication failed for user"), std::string::npos) << log;
  EXPECT_NE(log.find("127.0.0.1:"), std::string::npos) << log;
  EXPECT_NE(log.find("\"stats worker"), std::string::npos) << log;
  // No password, right or wrong, reaches the log.
  for (const char* secret :
       {"\"secret\"", "'secret'", " secret", "not-the-secret", "wrong-md5-secret", "nobodys-secret",
        "secret_md5", "other_secret"}) {
    EXPECT_EQ(log.find(secret), std::string::npos) << secret << "\n" << log;
  }
}

// log_queries: one JSON line per finished query with the client, user, database, route,
// duration and the normalized text, never a literal value.
TEST(LoggingTest, QueryEventsAsJsonFields) {
  PgmuxConfigOptions o;
  o.log_level = "info";
  o.pgmux_extra = "log_format = \"json\"\nlog_queries = true";
  PgmuxProcess pgmux;
  ASSERT_TRUE(pgmux.start(PgmuxProcess::typical_config(o)));
  {
    auto c = connect(pgmux.conninfo());
    ASSERT_TRUE(c) << c.error;
    EXPECT_EQ(query_value(c.conn, "SELECT 'private-value-4242'::text"), "private-value-4242");
    EXPECT_FALSE(exec(c.conn, "SELECT 1/0").ok());
  }
  EXPECT_EQ(pgmux.stop(), 0);
  const auto checked = run_command(
      {"python3", "-c",
       "import json,sys\n"
       "events=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]\n"
       "q=[e for e in events if e.get('msg')=='query']\n"
       "assert len(q)==2, q\n"
       "for e in q:\n"
       "  assert e['user']=='app' and e['database']=='app' and e['route']=='primary', e\n"
       "  assert isinstance(e['client'], int) and isinstance(e['duration_ms'], float), e\n"
       "assert q[0]['query']=='SELECT $1::text' and q[0]['rows']==1 and q[0]['error'] is False, q[0]\n"
       "assert q[1]['error'] is True, q[1]\n"
       "print('ok')\n",
       pgmux.log_path()});
  EXPECT_TRUE(checked.ok()) << checked.output << "\n" << pgmux.log_text();
  EXPECT_EQ(pgmux.log_text().find("private-value-4242"), std::string::npos) << pgmux.log_text();
}

// Secrets stay out of everything pgmux writes: at debug level, with per-query logs and
// index advice on, no password, SCRAM exchange or parameter value reaches the log, the
// advice file or the admin console's answers.
TEST(LoggingTest, NoSecretsAtDebugLevel) {
  char dir[] = "/tmp/pgmux-secrets-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string advice_file = std::string(dir) + "/advice.jsonl";
  PgmuxConfigOptions o;
  o.log_level = "trace";
  o.pgmux_extra = "log_queries = true\nadmin_users = [\"app\"]";
  o.extra = "[index_advice]\nenabled = true\nmin_calls = 1\nfile = \"" + advice_file + "\"\n";
  PgmuxProcess pgmux;
  ASSERT_TRUE(pgmux.start(PgmuxProcess::typical_config(o)));
  std::string answers;
  {
    auto c = connect(pgmux.conninfo());
    ASSERT_TRUE(c) << c.error;
    for (int i = 0; i < 3; ++i) {
      const auto r = exec_params(c.conn.get(), "SELECT $1::text AS v WHERE $1::text <> ''",
                                 {"param-secret-9911"});
      ASSERT_TRUE(r.ok()) << r;
      EXPECT_EQ(r.first(), "param-secret-9911");
    }
    EXPECT_FALSE(exec(c.conn, "SELECT 'literal-secret-4471'::int").ok());
    auto a = connect(pgmux.conninfo("app", "secret", "pgmux"));
    ASSERT_TRUE(a) << a.error;
    for (const char* show : {"SHOW QUERIES", "SHOW CLIENTS", "SHOW INDEX_ADVICE", "SHOW CONFIG"}) {
      answers += exec(a.conn, show).rows.empty() ? "" : "rows";
      for (const auto& row : exec(a.conn, show).rows) {
        for (const auto& cell : row) {
          answers += cell + "\n";
        }
      }
    }
  }
  EXPECT_FALSE(connect(pgmux.conninfo("app", "wrong-password-7781")));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the advisor's sample
  EXPECT_EQ(pgmux.stop(), 0);
  std::string advice;
  {
    std::ifstream in(advice_file);
    std::stringstream ss;
    ss << in.rdbuf();
    advice = ss.str();
  }
  const std::string log = pgmux.log_text();
  ASSERT_NE(log.find(" query client="), std::string::npos) << "query events are logged";
  for (const std::string& where : {log, advice, answers}) {
    for (const char* secret : {"param-secret-9911", "literal-secret-4471", "wrong-password-7781",
                               "other_secret", "secret_md5", "\"secret\"", "'secret'",
                               "SCRAM-SHA-256$", ",p=", "n,,n=", "c=biws"}) {
      EXPECT_EQ(where.find(secret), std::string::npos) << secret << " in:\n" << where.substr(0, 4000);
    }
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pooler::integration
