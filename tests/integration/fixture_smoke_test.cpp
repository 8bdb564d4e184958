// Checks the integration fixture itself: the throwaway cluster from scripts/pg-cluster
// (roles, auth methods, replication, pg_ctl helpers) and PgmuxProcess (with a stand-in
// binary, and with the real pgmux once it exists). No pgmux on the data path except
// in the last test.

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#ifdef PGMUX_HAVE_CONFIG_LOADER
#include "pooler/config/config_loader.h"
#endif
#include "tests/integration/pg_client.h"
#include "tests/integration/pgmux_process.h"
#include "tests/integration/postgres_environment.h"
#include "tests/integration/test_util.h"

namespace pooler::integration {
namespace {

using namespace std::chrono_literals;

// The app user reaches the primary over TCP with SCRAM, and it is not a standby.
TEST(FixtureTest, PrimaryAcceptsAppOverTcpAndIsNotInRecovery) {
  auto c = connect(pg().tcp_conninfo(Node::Primary, "app", "secret", "app"));
  ASSERT_TRUE(c) << c.error;
  EXPECT_EQ(query_value(c.conn, "SELECT current_user"), "app");
  EXPECT_EQ(query_value(c.conn, "SELECT pg_is_in_recovery()"), "f");
}

// The app user reaches the replica over TCP, and it is a hot standby.
TEST(FixtureTest, ReplicaAcceptsAppOverTcpAndIsInRecovery) {
  ASSERT_TRUE(pg().has_replica());
  auto c = connect(pg().tcp_conninfo(Node::Replica, "app", "secret", "app"));
  ASSERT_TRUE(c) << c.error;
  EXPECT_EQ(query_value(c.conn, "SELECT pg_is_in_recovery()"), "t");
}

// The superuser logs in over the Unix socket (trust) on both nodes.
TEST(FixtureTest, SuperuserConnectsOverUnixSocketToBothNodes) {
  for (Node node : {Node::Primary, Node::Replica}) {
    auto c = connect(pg().superuser_conninfo(node));
    ASSERT_TRUE(c) << to_string(node) << ": " << c.error;
    EXPECT_EQ(query_value(c.conn, "SELECT current_user"), "postgres");
    EXPECT_EQ(query_value(c.conn, "SELECT inet_server_addr() IS NULL"), "t") << "not a socket";
  }
}

// A row committed on the primary is visible on the replica within 5 s.
TEST(FixtureTest, RowInsertedOnPrimaryAppearsOnReplica) {
  const std::string table = unique_name("smoke_repl");
  auto primary = connect(pg().tcp_conninfo(Node::Primary, "app", "secret", "app"));
  ASSERT_TRUE(primary) << primary.error;
  const auto created = exec(primary.conn, "CREATE TABLE " + table + " (id int, note text);" +
                                              "INSERT INTO " + table + " VALUES (42, 'hello')");
  ASSERT_TRUE(created.ok()) << created;

  auto replica = connect(pg().tcp_conninfo(Node::Replica, "app", "secret", "app"));
  ASSERT_TRUE(replica) << replica.error;
  std::optional<std::string> note;
  wait_for(
      [&] {
        note = query_value(replica.conn, "SELECT note FROM " + table + " WHERE id = 42");
        return note.has_value();
      },
      5s);
  EXPECT_EQ(note, "hello") << pg().log_tail(Node::Replica, 10);
  EXPECT_TRUE(exec(primary.conn, "DROP TABLE " + table).ok());
}

// app_md5 has an md5-stored password and logs in with md5; a wrong one gets 28P01.
TEST(FixtureTest, Md5UserLogsInWithMd5) {
  auto su = connect(pg().superuser_conninfo(Node::Primary));
  ASSERT_TRUE(su) << su.error;
  EXPECT_EQ(query_value(su.conn, "SELECT left(rolpassword, 3) FROM pg_authid "
                                 "WHERE rolname = 'app_md5'"),
            "md5");

  auto c = connect(pg().tcp_conninfo(Node::Primary, "app_md5", "secret_md5", "app"));
  ASSERT_TRUE(c) << c.error;
  EXPECT_EQ(query_value(c.conn, "SELECT current_user"), "app_md5");
  // GRANT ALL ON SCHEMA public: app_md5 may create tables in app.
  const std::string table = unique_name("smoke_md5");
  EXPECT_TRUE(exec(c.conn, "CREATE TABLE " + table + " (x int); DROP TABLE " + table).ok());

  auto bad = connect(pg().tcp_conninfo(Node::Primary, "app_md5", "wrong", "app"));
  EXPECT_FALSE(bad);
  EXPECT_NE(bad.error.find("password authentication failed"), std::string::npos) << bad.error;
}

// SCRAM users are rejected with a wrong password, on the replica as well.
TEST(FixtureTest, WrongScramPasswordIsRejected) {
  for (Node node : {Node::Primary, Node::Replica}) {
    auto c = connect(pg().tcp_conninfo(node, "app", "not-the-password", "app"));
    EXPECT_FALSE(c) << to_string(node);
    EXPECT_NE(c.error.find("password authentication failed"), std::string::npos) << c.error;
  }
}

// `other` owns database other; app owns app.
TEST(FixtureTest, DatabasesHaveTheirOwners) {
  auto c = connect(pg().tcp_conninfo(Node::Primary, "other", "other_secret", "other"));
  ASSERT_TRUE(c) << c.error;
  EXPECT_EQ(query_value(c.conn, "SELECT pg_get_userbyid(datdba) FROM pg_database "
                                "WHERE datname = current_database()"),
            "other");
  EXPECT_EQ(query_value(c.conn, "SELECT pg_get_userbyid(datdba) FROM pg_database "
                                "WHERE datname = 'app'"),
            "app");
}

// wait_replica_caught_up() returns once the replica has replayed the latest write.
TEST(FixtureTest, WaitReplicaCaughtUpSeesLatestWrite) {
  const std::string table = unique_name("smoke_lsn");
  auto primary = connect(pg().superuser_conninfo(Node::Primary, "app"));
  ASSERT_TRUE(primary) << primary.error;
  ASSERT_TRUE(exec(primary.conn, "CREATE TABLE " + table + " AS SELECT 7 AS x").ok());
  ASSERT_TRUE(pg().wait_replica_caught_up());
  auto replica = connect(pg().superuser_conninfo(Node::Replica, "app"));
  ASSERT_TRUE(replica) << replica.error;
  const PgResult rows = exec(replica.conn, "SELECT x FROM " + table);
  EXPECT_EQ(rows.first(), "7") << rows;
  EXPECT_TRUE(exec(primary.conn, "DROP TABLE " + table).ok());
}

// run_ctl() restarts the primary and promotes the replica; reset_replica() rebuilds
// it, so the cluster ends this test as it began.
TEST(FixtureTest, CtlRestartsPromotesAndReplicaResets) {
  auto status = pg().run_ctl(Node::Primary, {"status"});
  ASSERT_TRUE(status.ok()) << status.output;

  auto stopped = pg().run_ctl(Node::Primary, {"stop", "-m", "fast"});
  ASSERT_TRUE(stopped.ok()) << stopped.output;
  EXPECT_FALSE(connect(pg().superuser_conninfo(Node::Primary)));
  auto started = pg().run_ctl(Node::Primary, {"start", "-w"});
  ASSERT_TRUE(started.ok()) << started.output << pg().log_tail(Node::Primary);
  auto primary = connect(pg().superuser_conninfo(Node::Primary));
  ASSERT_TRUE(primary) << primary.error;

  auto promoted = pg().run_ctl(Node::Replica, {"promote", "-w"});
  ASSERT_TRUE(promoted.ok()) << promoted.output;
  auto replica = connect(pg().superuser_conninfo(Node::Replica));
  ASSERT_TRUE(replica) << replica.error;
  EXPECT_EQ(query_value(replica.conn, "SELECT pg_is_in_recovery()"), "f");

  auto reset = pg().reset_replica();
  ASSERT_TRUE(reset.ok()) << reset.output;
  replica = connect(pg().superuser_conninfo(Node::Replica));
  ASSERT_TRUE(replica) << replica.error;
  EXPECT_EQ(query_value(replica.conn, "SELECT pg_is_in_recovery()"), "t");
  EXPECT_EQ(query_value(primary.conn,
                        "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"),
            "1");
  EXPECT_TRUE(pg().wait_replica_caught_up());
}

// --- PgmuxProcess ---------------------------------------------------------------------

// A stand-in for pgmux: listens on the port from the config, logs, exits 0 on
// SIGTERM. FAKE_EXIT=N exits at once with N; FAKE_IGNORE_TERM=1 ignores SIGTERM.
constexpr std::string_view kFakePgmux = R"py(#!/usr/bin/env python3
import os, re, signal, socket, sys
config = open(sys.argv[sys.argv.index("--config") + 1]).read()
print("fake pgmux: config", sys.argv[2], flush=True)
if os.environ.get("FAKE_EXIT"):
    print("fake pgmux: exiting early", flush=True)
    sys.exit(int(os.environ["FAKE_EXIT"]))
port = int(re.search(r'listen = \["127\.0\.0\.1:(\d+)"\]', config).group(1))
def on_term(*_):
    print("fake pgmux: SIGTERM", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN if os.environ.get("FAKE_IGNORE_TERM") else on_term)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(16)
print("fake pgmux: listening on", port, flush=True)
while True:
    c, _ = s.accept()
    c.close()
)py";

class PgmuxProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/usr/bin/python3", X_OK) != 0) {
      GTEST_SKIP() << "python3 is needed for the stand-in pgmux";
    }
    dir_ = std::filesystem::temp_directory_path() / ("pgmux-fake-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    fake_ = (dir_ / "fake-pgmux").string();
    std::ofstream(fake_) << kFakePgmux;
    std::filesystem::permissions(fake_, std::filesystem::perms::owner_all);
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  PgmuxOptions fake_options(std::vector<std::string> env = {}) const {
    PgmuxOptions options;
    options.binary = fake_;
    options.env = std::move(env);
    return options;
  }

  std::filesystem::path dir_;
  std::string fake_;
};

// start() fills the placeholders, waits for the port, and stop() reports exit 0.
TEST_F(PgmuxProcessTest, StandInStartsAndStopsCleanly) {
  PgmuxProcess pgmux;
  PgmuxConfigOptions with_replica;
  with_replica.replica = true;
  ASSERT_TRUE(pgmux.start(PgmuxProcess::typical_config(with_replica), fake_options()));
  EXPECT_GT(pgmux.port(), 0);
  EXPECT_GT(pgmux.pid(), 0);
  EXPECT_TRUE(pgmux.running());
  EXPECT_GT(pgmux.rss_kb(), 0);

  std::ifstream in(pgmux.config_path());
  const std::string config((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(config.find("127.0.0.1:" + std::to_string(pg().primary_port())), std::string::npos);
  EXPECT_NE(config.find("127.0.0.1:" + std::to_string(pg().replica_port())), std::string::npos);
  EXPECT_EQ(config.find('@'), std::string::npos) << config;

  EXPECT_EQ(pgmux.stop(), 0);
  EXPECT_FALSE(pgmux.running());
  EXPECT_NE(pgmux.log_text().find("fake pgmux: SIGTERM"), std::string::npos) << pgmux.log_text();
}

// A process that exits before listening makes start() fail fast, with its log.
TEST_F(PgmuxProcessTest, StandInEarlyExitFailsStartWithLog) {
  PgmuxProcess pgmux;
  const auto before = std::chrono::steady_clock::now();
  const auto started = pgmux.start(PgmuxProcess::typical_config(), fake_options({"FAKE_EXIT=3"}));
  EXPECT_FALSE(started);
  EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);
  const std::string message = started.message();
  EXPECT_NE(message.find("exited with status 3"), std::string::npos) << message;
  EXPECT_NE(message.find("fake pgmux: exiting early"), std::string::npos) << message;
}

// A process that ignores SIGTERM is killed after the timeout; status 128 + SIGKILL.
TEST_F(PgmuxProcessTest, StandInIgnoringSigtermIsKilled) {
  PgmuxProcess pgmux;
  ASSERT_TRUE(pgmux.start(PgmuxProcess::typical_config(), fake_options({"FAKE_IGNORE_TERM=1"})));
  EXPECT_TRUE(pgmux.signal(SIGTERM));
  EXPECT_EQ(pgmux.wait_exit(300ms), -1);
  EXPECT_EQ(pgmux.stop(300ms), 128 + SIGKILL);
}

#ifdef PGMUX_HAVE_CONFIG_LOADER
// typical_config() (placeholders filled) is a valid config for the real loader, with
// every option set.
TEST(TypicalConfigTest, LoadsWithTheRealConfigLoader) {
  PgmuxConfigOptions options;
  options.pgmux_extra = "query_wait_timeout = 5";
  options.database_extra = "min_pool_size = 1";
  options.extra = "[users.trusted]\nauth = \"trust\"";
  for (const std::string& config :
       {PgmuxProcess::typical_config(), PgmuxProcess::typical_config(options)}) {
    std::string text = config;
    for (const auto& [from, to] : {std::pair{"@LISTEN_PORT@", "7000"},
                                   {"@PRIMARY_PORT@", "5432"},
                                   {"@REPLICA_PORT@", "5433"}}) {
      for (auto pos = text.find(from); pos != std::string::npos; pos = text.find(from)) {
        text.replace(pos, std::string_view(from).size(), to);
      }
    }
    auto loaded = pooler::config::load_config_string(text, "typical.toml");
    ASSERT_TRUE(loaded.has_value()) << loaded.error().message << "\n" << text;
    EXPECT_EQ(loaded->databases.size(), 2u);
    EXPECT_NE(loaded->find_user("app_md5"), nullptr);
  }
}
#endif

// The real pgmux, once it is built: a query goes through it to the primary.
TEST(RealPgmuxTest, ServesAQueryAndStopsWithStatusZero) {
  if (!PgmuxProcess::binary_exists()) {
    GTEST_SKIP() << "pgmux binary " << PgmuxProcess::binary_path() << " not built yet";
  }
  PgmuxProcess pgmux;
  ASSERT_TRUE(pgmux.start(PgmuxProcess::typical_config()));
  auto c = connect(pgmux.conninfo());
  ASSERT_TRUE(c) << c.error << "\n" << pgmux.log_tail();
  EXPECT_EQ(query_value(c.conn, "SELECT 40 + 2"), "42");
  c.conn.reset();
  EXPECT_EQ(pgmux.stop(), 0) << pgmux.log_tail();
}

}  // namespace
}  // namespace pooler::integration
