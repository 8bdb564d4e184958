// auth_user + auth_query (issue 7): users defined only in PostgreSQL log in through pgmux.
// With a SCRAM verifier from pg_shadow, pgmux authenticates the client with SCRAM and logs
// in to PostgreSQL with the keys from the client's proof: the plaintext is never in pgmux
// (checked in the process's memory, its config and its log). Real PostgreSQL 15.

#include <gtest/gtest.h>

#include <cstdio>
#include <chrono>
#include <string>
#include <thread>

#include "tests/integration/pg_client.h"
#include "tests/integration/pgmux_process.h"
#include "tests/integration/postgres_environment.h"
#include "tests/integration/test_util.h"

namespace pooler::integration {
namespace {

constexpr const char* kScramPassword = "dyn-plain-pw-1234";

class AuthQueryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto super = connect(PostgresEnvironment::instance().superuser_conninfo(Node::Primary, "app"));
    ASSERT_TRUE(super) << super.error;
    const std::string sql =
        std::string("DROP ROLE IF EXISTS dyn; SET password_encryption = 'scram-sha-256'; "
                    "CREATE ROLE dyn LOGIN PASSWORD '") + kScramPassword + "'; "
        "RESET password_encryption";
    ASSERT_TRUE(exec(super.conn, sql).ok());
  }

  // pgmux with auth_user = postgres (its password is in the config; the looked-up users'
  // are not). `auth_extra` goes to [pgmux].
  ::testing::AssertionResult start(const std::string& auth_password = "postgres",
                                   const std::string& auth_extra = "") {
    PgmuxConfigOptions o;
    o.log_level = "debug";
    o.pgmux_extra = "auth_user = \"postgres\"\n" + auth_extra;
    o.extra = "[users.postgres]\npassword = \"" + auth_password + "\"\n";
    return pgmux_.start(PgmuxProcess::typical_config(o));
  }

  PgmuxProcess pgmux_;
};

TEST_F(AuthQueryTest, ScramUserDefinedOnlyInPostgres) {
  ASSERT_TRUE(start());
  for (int i = 0; i < 2; ++i) {  // the second login finds the pool with the proof's keys
    auto c = connect(pgmux_.conninfo("dyn", kScramPassword, "app"));
    ASSERT_TRUE(c) << c.error << "\n" << pgmux_.log_tail();
    EXPECT_EQ(query_value(c.conn, "SELECT current_user"), "dyn");
    EXPECT_EQ(query_value(c.conn, "SELECT 40 + 2"), "42");
  }
  auto wrong = connect(pgmux_.conninfo("dyn", "not-the-password", "app"));
  ASSERT_FALSE(wrong);
  auto unknown = connect(pgmux_.conninfo("nobody_here", "whatever", "app"));
  ASSERT_FALSE(unknown);
  EXPECT_TRUE(contains(wrong.error, "password authentication failed for user \"dyn\"")) << wrong.error;
  EXPECT_TRUE(contains(unknown.error, "password authentication failed for user \"nobody_here\""))
      << unknown.error << " (the same answer whether the user exists or not)";
  // Configured users are not looked up and still work.
  auto app = connect(pgmux_.conninfo());
  ASSERT_TRUE(app) << app.error;
  EXPECT_EQ(query_value(app.conn, "SELECT current_user"), "app");

  // The plaintext is nowhere in pgmux: not in its memory, config or log.
  const auto scan = run_command(
      {"python3", "-c",
       "import re,sys\n"
       "pid=int(sys.argv[1]); needles=[a.encode() for a in sys.argv[2:]]; found=[0]*len(needles)\n"
       "mem=open(f'/proc/{pid}/mem','rb',0)\n"
       "for line in open(f'/proc/{pid}/maps'):\n"
       "  m=re.match(r'([0-9a-f]+)-([0-9a-f]+) (\\S+)', line)\n"
       "  lo,hi=int(m.group(1),16),int(m.group(2),16)\n"
       "  if 'r' not in m.group(3) or hi-lo>(1<<29): continue\n"
       "  try:\n"
       "    mem.seek(lo); data=mem.read(hi-lo)\n"
       "  except OSError: continue\n"
       "  for i,n in enumerate(needles): found[i]+=data.count(n)\n"
       "print(found[0], found[1])\n",
       // The control: a plaintext password from the config, which the scan must find.
       std::to_string(pgmux_.pid()), kScramPassword, "other_secret"});
  ASSERT_TRUE(scan.ok()) << scan.output;
  int looked_up = -1;
  int control = -1;
  ASSERT_EQ(std::sscanf(scan.output.c_str(), "%d %d", &looked_up, &control), 2) << scan.output;
  EXPECT_GT(control, 0) << "the scan must see the config's plaintext passwords";
  EXPECT_EQ(looked_up, 0) << "the plaintext password is in pgmux's memory";
  EXPECT_FALSE(contains(pgmux_.log_text(), kScramPassword));
  auto config = run_command({"cat", pgmux_.config_path()});
  EXPECT_FALSE(contains(config.output, kScramPassword));
}

// An md5 hash from pg_shadow: the client authenticates with md5, and so does pgmux with the
// server. The fixture's server takes md5 only for app_md5, so that user is left out of
// [users] here to be looked up.
// A password changed in PostgreSQL takes effect once the cached answer expires: the new
// password logs in, and new server connections use the keys from the new proof.
TEST_F(AuthQueryTest, PasswordChangedInPostgres) {
  ASSERT_TRUE(start("postgres", "auth_cache_ttl = 0.2"));
  auto first = connect(pgmux_.conninfo("dyn", kScramPassword, "app"));
  ASSERT_TRUE(first) << first.error;
  ASSERT_TRUE(exec(first.conn, "BEGIN").ok());  // holds the pool's first backend
  {
    auto super = connect(PostgresEnvironment::instance().superuser_conninfo(Node::Primary, "app"));
    ASSERT_TRUE(super) << super.error;
    ASSERT_TRUE(exec(super.conn, "ALTER ROLE dyn PASSWORD 'dyn-new-pw-42'").ok());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(connect(pgmux_.conninfo("dyn", kScramPassword, "app"))) << "the old password";
  auto second = connect(pgmux_.conninfo("dyn", "dyn-new-pw-42", "app"));
  ASSERT_TRUE(second) << second.error;
  // A second backend: logged in with the new proof's keys.
  EXPECT_EQ(query_value(second.conn, "SELECT current_user"), "dyn") << pgmux_.log_tail();
  ASSERT_TRUE(exec(first.conn, "COMMIT").ok());
  auto super = connect(PostgresEnvironment::instance().superuser_conninfo(Node::Primary, "app"));
  ASSERT_TRUE(exec(super.conn, std::string("ALTER ROLE dyn PASSWORD '") + kScramPassword + "'").ok());
}

TEST_F(AuthQueryTest, Md5UserDefinedOnlyInPostgres) {
  PgmuxConfigOptions o;
  o.log_level = "debug";
  o.pgmux_extra = "auth_user = \"postgres\"";
  o.extra = "[users.postgres]\npassword = \"postgres\"\n";
  std::string config = PgmuxProcess::typical_config(o);
  const auto at = config.find("[users.app_md5]");
  ASSERT_NE(at, std::string::npos) << config;
  const auto next = config.find("\n[", at);
  config.erase(at, next == std::string::npos ? std::string::npos : next + 1 - at);
  ASSERT_TRUE(pgmux_.start(config));
  auto c = connect(pgmux_.conninfo("app_md5", "secret_md5", "app"));
  ASSERT_TRUE(c) << c.error << "\n" << pgmux_.log_tail();
  EXPECT_EQ(query_value(c.conn, "SELECT current_user"), "app_md5");
  EXPECT_FALSE(connect(pgmux_.conninfo("app_md5", "wrong", "app")));
}

// auth_user cannot log in: looked-up users are refused as unknown ones are, the failure is
// logged, and configured users are not affected.
TEST_F(AuthQueryTest, AuthUserRefusedByPostgres) {
  ASSERT_TRUE(start("not-postgres-password"));
  auto c = connect(pgmux_.conninfo("dyn", kScramPassword, "app"));
  ASSERT_FALSE(c);
  EXPECT_TRUE(contains(c.error, "password authentication failed for user \"dyn\"")) << c.error;
  EXPECT_TRUE(contains(pgmux_.log_text(), "auth_query: cannot connect to database app as postgres"))
      << pgmux_.log_tail();
  auto app = connect(pgmux_.conninfo());
  EXPECT_TRUE(app) << app.error;
}

// A config whose auth_user is not a configured user with a plaintext password is refused.
TEST_F(AuthQueryTest, AuthUserMustBeConfigured) {
  PgmuxConfigOptions o;
  o.pgmux_extra = "auth_user = \"ghost\"";
  PgmuxProcess p;
  EXPECT_FALSE(p.start(PgmuxProcess::typical_config(o)));
  EXPECT_TRUE(contains(p.log_text(), "auth_user \"ghost\" of database")) << p.log_text();
}

}  // namespace
}  // namespace pooler::integration
