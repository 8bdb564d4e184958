// [[hba]] rules (issue 7): the first rule matching database, user and client address decides
// the method (trust, md5, scram-sha-256, reject); a login no rule allows is refused with a
// message naming who and from where. Real pgmux and PostgreSQL, libpq clients.

#include <gtest/gtest.h>

#include <string>

#include "tests/integration/pg_client.h"
#include "tests/integration/pgmux_process.h"
#include "tests/integration/postgres_environment.h"
#include "tests/integration/test_util.h"

namespace pooler::integration {
namespace {

TEST(HbaTest, FirstMatchingRuleDecides) {
  PgmuxConfigOptions o;
  o.log_level = "info";
  o.extra =
      "[[hba]]\ndatabase = \"other\"\nmethod = \"reject\"\n"
      "[[hba]]\nuser = \"app_md5\"\nmethod = \"md5\"\n"
      "[[hba]]\nuser = [\"app\"]\naddress = \"127.0.0.0/8\"\nmethod = \"trust\"\n"
      "[[hba]]\naddress = [\"10.0.0.0/8\", \"::1/128\"]\nmethod = \"scram-sha-256\"\n";
  PgmuxProcess pgmux;
  ASSERT_TRUE(pgmux.start(PgmuxProcess::typical_config(o)));

  // Rule 3: app from loopback needs no password (any password is ignored).
  auto trusted = connect(pgmux.conninfo("app", "anything-at-all", "app"));
  ASSERT_TRUE(trusted) << trusted.error;
  EXPECT_EQ(query_value(trusted.conn, "SELECT current_user"), "app");

  // Rule 1: nobody reaches database other.
  auto other_db = connect(pgmux.conninfo("app", "secret", "other"));
  ASSERT_FALSE(other_db);
  EXPECT_TRUE(contains(other_db.error, "[[hba]] rule #1 rejects user \"app\", database \"other\", "
                                       "address 127.0.0.1"))
      << other_db.error;

  // Rule 2: md5 for app_md5, with its password checked.
  auto md5 = connect(pgmux.conninfo("app_md5", "secret_md5", "app"));
  EXPECT_TRUE(md5) << md5.error;
  EXPECT_FALSE(connect(pgmux.conninfo("app_md5", "wrong", "app")));

  // User other from 127.0.0.1: rule 4 is for other networks, so nothing allows it.
  auto none = connect(pgmux.conninfo("other", "other_secret", "app"));
  ASSERT_FALSE(none);
  EXPECT_TRUE(contains(none.error, "no [[hba]] rule allows user \"other\", database \"app\""))
      << none.error;
  EXPECT_TRUE(contains(pgmux.log_text(), "no [[hba]] rule allows")) << pgmux.log_tail();
}

TEST(HbaTest, MalformedRuleIsAConfigError) {
  PgmuxConfigOptions o;
  o.extra = "[[hba]]\naddress = \"10.0.0.300/8\"\nmethod = \"trust\"\n";
  PgmuxProcess pgmux;
  EXPECT_FALSE(pgmux.start(PgmuxProcess::typical_config(o)));
  EXPECT_TRUE(contains(pgmux.log_text(), "'address' must be an IP address or network")) << pgmux.log_text();
}

}  // namespace
}  // namespace pooler::integration
