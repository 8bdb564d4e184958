// Logs (issue 2): JSON lines with log_format = "json", every line about a connection naming
// it, and no password in any log line, whatever the clients do.

#include <gtest/gtest.h>

#include <chrono>
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

}  // namespace
}  // namespace pooler::integration
