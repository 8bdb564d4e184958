// The process lifecycle of the real pgmux binary (issue 6): systemd notifications over a
// real AF_UNIX datagram socket, SIGHUP reloads under pgbench load, SIGTERM with an open
// transaction and its escalation, a rolling restart on one port, SHOW REPLICAS.

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <optional>
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

// The receiving end of $NOTIFY_SOCKET, as systemd holds it: an AF_UNIX datagram socket
// bound to a path, or to a name in the abstract namespace ('@' in the variable).
class NotifySocket {
 public:
  explicit NotifySocket(bool abstract) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string name = "pgmux-notify-" + std::to_string(::getpid()) + "-" +
                       std::to_string(Clock::now().time_since_epoch().count());
    socklen_t len = 0;
    if (abstract) {
      env_value_ = "@" + name;
      std::memcpy(addr.sun_path + 1, name.data(), name.size());
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    } else {
      path_ = "/tmp/" + name + ".sock";
      env_value_ = path_;
      std::memcpy(addr.sun_path, path_.data(), path_.size());
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path_.size() + 1);
    }
    bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0;
  }
  ~NotifySocket() {
    ::close(fd_);
    if (!path_.empty()) {
      ::unlink(path_.c_str());
    }
  }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  bool bound() const { return bound_; }
  std::string env() const { return "NOTIFY_SOCKET=" + env_value_; }

  // The next datagram, or nullopt if none came within `timeout`.
  std::optional<std::string> next(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) {
      return std::nullopt;
    }
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) {
      return std::nullopt;
    }
    std::string message(buf, static_cast<std::size_t>(n));
    seen_.push_back(message);
    return message;
  }

  // Everything received so far, one datagram per line, for failure messages.
  std::string seen() const {
    std::string out;
    for (const auto& m : seen_) {
      out += "[" + m + "]\n";
    }
    return out;
  }

 private:
  int fd_ = -1;
  bool bound_ = false;
  std::string path_;
  std::string env_value_;
  std::vector<std::string> seen_;
};

struct Bench {
  CommandResult result;
  std::thread thread;
};

// pgbench -n -S (select-only) with `clients` clients through `port` in a thread of its own;
// join `thread` for `result`. `extra` goes before the database name (e.g. "-C").
void start_pgbench(Bench& bench, int port, int seconds, std::vector<std::string> extra = {},
                   int clients = 8) {
  std::vector<std::string> argv = {"env",
                                   "PGPASSWORD=secret",
                                   pg().bindir() + "/pgbench",
                                   "-n",
                                   "-S",
                                   "-c",
                                   std::to_string(clients),
                                   "-j",
                                   "2",
                                   "-T",
                                   std::to_string(seconds),
                                   "-h",
                                   "127.0.0.1",
                                   "-p",
                                   std::to_string(port),
                                   "-U",
                                   "app"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back("app");
  bench.thread = std::thread([&bench, argv] { bench.result = run_command(argv); });
}

// pgbench ran clean: exit 0, zero failed transactions, no aborted client, some work done.
::testing::AssertionResult pgbench_clean(const CommandResult& r) {
  if (!r.ok() || r.output.find("number of failed transactions: 0 ") == std::string::npos ||
      r.output.find("aborted") != std::string::npos ||
      r.output.find("number of transactions actually processed: 0/") != std::string::npos) {
    return ::testing::AssertionFailure() << "pgbench exit " << r.exit_code << ":\n" << r.output;
  }
  return ::testing::AssertionSuccess();
}

// Every row of `r`, for failure messages.
std::string dump(const PgResult& r) {
  std::string out;
  for (const auto& c : r.columns) {
    out += c + "|";
  }
  out += "\n";
  for (const auto& row : r.rows) {
    for (const auto& v : row) {
      out += v + "|";
    }
    out += "\n";
  }
  return out;
}

// net.ipv4.tcp_migrate_req = 1 while it lives; the previous value back afterwards.
class MigrateRequests {
 public:
  MigrateRequests() {
    previous_ = read_value();
    if (previous_ == "1") {
      return;
    }
    if (!write_value("1") || read_value() != "1") {
      error_ = "no write access to " + std::string(kPath) + " (value " + previous_ + ")";
    }
  }
  ~MigrateRequests() {
    if (!previous_.empty() && previous_ != "1") {
      write_value(previous_);
    }
  }
  MigrateRequests(const MigrateRequests&) = delete;
  MigrateRequests& operator=(const MigrateRequests&) = delete;

  bool enabled() const { return error_.empty() && !previous_.empty(); }
  const std::string& error() const { return error_; }

 private:
  static constexpr const char* kPath = "/proc/sys/net/ipv4/tcp_migrate_req";
  static std::string read_value() {
    std::ifstream in(kPath);
    std::string v;
    in >> v;
    return v;
  }
  static bool write_value(const std::string& v) {
    std::ofstream out(kPath);
    out << v << "\n";
    out.flush();
    return static_cast<bool>(out);
  }

  std::string previous_;
  std::string error_;
};

class LifecycleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // pgbench's tables, once per binary, on the primary (the replica gets them by streaming).
    const auto init = run_command({"env", "PGPASSWORD=secret", pg().bindir() + "/pgbench", "-i",
                                   "-s", "1", "-q", "-h", "127.0.0.1", "-p",
                                   std::to_string(pg().primary_port()), "-U", "app", "app"});
    init_error_ = init.ok() ? "" : "pgbench -i failed: " + init.output;
  }

  void SetUp() override {
    if (!pg().has_replica()) {
      GTEST_SKIP() << "needs the fixture's replica";
    }
    ASSERT_EQ(init_error_, "");
    ASSERT_TRUE(pg().wait_replica_caught_up());
  }

  // The fixture's databases with admin_users = ["app"]; `replica` lists the fixture's
  // replica in [databases.*]; reads are balanced round robin so that any replica is seen.
  static std::string config(int pool_size, bool replica, const std::string& pgmux_extra = "") {
    PgmuxConfigOptions options;
    options.pgmux_extra = "query_wait_timeout = 2\n";
    options.pool_size = pool_size;
    options.replica = replica;
    options.log_level = "info";
    options.pgmux_extra += "admin_users = [\"app\"]\n" + pgmux_extra;
    options.database_extra = "load_balance = \"round_robin\"\nhealth_check_period = 0.2";
    return PgmuxProcess::typical_config(options);
  }

  static PgConn client(const PgmuxProcess& p) { return connect(p.conninfo()).conn; }
  static PgConn admin(const PgmuxProcess& p) {
    return connect(p.conninfo("app", "secret", "pgmux")).conn;
  }
  static int port_of(const PgConn& c) {
    auto v = query_value(c, "SELECT inet_server_port()");
    return v ? std::stoi(*v) : -1;
  }
  static bool log_has(const PgmuxProcess& p, const std::string& text) {
    return p.log_text().find(text) != std::string::npos;
  }

  static inline std::string init_error_;
};

// ---- systemd notifications -----------------------------------------------------------

// READY=1 once listening, RELOADING=1 (with MONOTONIC_USEC) then READY=1 around a SIGHUP
// reload, STOPPING=1 on SIGTERM; the datagrams reach a socket bound to a path.
TEST_F(LifecycleTest, NotifyReadyReloadingStopping) {
  NotifySocket notify(/*abstract=*/false);
  ASSERT_TRUE(notify.bound());
  PgmuxProcess pgmux;
  PgmuxOptions options;
  options.env = {notify.env()};
  ASSERT_TRUE(pgmux.start(config(4, false), options));

  EXPECT_EQ(notify.next(10s), "READY=1") << notify.seen() << pgmux.log_tail();
  ASSERT_TRUE(pgmux.signal(SIGHUP));
  const auto reloading = notify.next(10s);
  ASSERT_TRUE(reloading) << notify.seen() << pgmux.log_tail();
  EXPECT_TRUE(reloading->starts_with("RELOADING=1\nMONOTONIC_USEC=")) << *reloading;
  EXPECT_EQ(notify.next(10s), "READY=1") << notify.seen();
  // A broken file is refused, and systemd still hears READY=1 after RELOADING=1.
  pgmux.rewrite_config("[pgmux\n");
  ASSERT_TRUE(pgmux.signal(SIGHUP));
  EXPECT_TRUE(notify.next(10s).value_or("").starts_with("RELOADING=1")) << notify.seen();
  EXPECT_EQ(notify.next(10s), "READY=1") << notify.seen();
  ASSERT_TRUE(pgmux.signal(SIGTERM));
  EXPECT_EQ(notify.next(10s), "STOPPING=1") << notify.seen();
  EXPECT_EQ(pgmux.wait_exit(10s), 0) << pgmux.log_tail();
}

// wait_for_primary = true holds READY=1 back while a database's primary is down (the
// port is bound all along), and sends it once that server answers; the abstract socket
// name ('@') works. Meanwhile SHOW REPLICAS shows the stopped replica unhealthy and banned.
TEST_F(LifecycleTest, WaitForPrimaryHoldsReadyAbstractSocket) {
  NotifySocket notify(/*abstract=*/true);
  ASSERT_TRUE(notify.bound());
  // Database "late" has the fixture's replica as its primary: stopping that server makes
  // one primary unreachable without disturbing the others.
  const std::string late =
      "[databases.late]\ndbname = \"app\"\nprimary = \"127.0.0.1:@REPLICA_PORT@\"\n";
  ASSERT_TRUE(pg().run_ctl(Node::Replica, {"stop", "-m", "fast", "-w"}).ok());
  PgmuxProcess pgmux;
  PgmuxOptions options;
  options.env = {notify.env()};
  const bool started = pgmux.start(config(4, true, "wait_for_primary = true") + late, options);
  if (!started) {
    pg().run_ctl(Node::Replica, {"start", "-w"});
    FAIL() << pgmux.log_tail();
  }
  const auto early = notify.next(1500ms);
  EXPECT_FALSE(early) << "READY before the primary of 'late' answered: " << *early;
  EXPECT_TRUE(log_has(pgmux, "wait_for_primary: waiting for the primary of database late"))
      << pgmux.log_tail();

  // The replica of "app" is down: unhealthy, banned, with the connection error.
  auto a = admin(pgmux);
  ASSERT_TRUE(a);
  PgResult replicas;
  EXPECT_TRUE(wait_for(
      [&] {
        replicas = exec(a, "SHOW REPLICAS");
        for (const auto& row : replicas.rows) {
          if (row[0] == "app" && row[2] == std::to_string(pg().replica_port()) && row[4] == "0" &&
              !row[static_cast<std::size_t>(column(replicas, "last_error"))].empty()) {
            return true;
          }
        }
        return false;
      },
      5s))
      << dump(replicas) << pgmux.log_tail();

  ASSERT_TRUE(pg().run_ctl(Node::Replica, {"start", "-w"}).ok());
  EXPECT_EQ(notify.next(15s), "READY=1") << notify.seen() << pgmux.log_tail();
  EXPECT_TRUE(wait_for(
      [&] {
        replicas = exec(a, "SHOW REPLICAS");
        for (std::size_t i = 0; i < replicas.rows.size(); ++i) {
          const auto& row = replicas.rows[i];
          if (row[0] == "app" && row[2] == std::to_string(pg().replica_port())) {
            return row[3] == "replica" && row[4] == "1" &&
                   replicas.is_null(i, static_cast<std::size_t>(column(replicas, "banned_until")));
          }
        }
        return false;
      },
      15s))
      << dump(replicas) << pgmux.log_tail();
  EXPECT_EQ(pgmux.stop(), 0) << pgmux.log_tail();
}

// ---- reload --------------------------------------------------------------------------

// SIGHUP under pgbench load with a bigger pool_size and an added replica: pgbench loses
// nothing; new sessions read from the new replica; SHOW POOLS and SHOW REPLICAS show the
// new settings. Then a broken file is refused and the running config stays; a restart-only
// setting is named in the log and keeps its running value.
TEST_F(LifecycleTest, ReloadUnderLoadAddsReplicaAndPoolSize) {
  PgmuxProcess pgmux;
  ASSERT_TRUE(pgmux.start(config(4, false)));
  {
    auto c = client(pgmux);
    ASSERT_TRUE(c);
    EXPECT_EQ(port_of(c), pg().primary_port()) << "no replica configured yet";
  }

  Bench bench;
  start_pgbench(bench, pgmux.port(), 6);
  std::this_thread::sleep_for(2s);
  pgmux.rewrite_config(config(8, true));
  ASSERT_TRUE(pgmux.signal(SIGHUP));
  bench.thread.join();
  EXPECT_TRUE(pgbench_clean(bench.result)) << pgmux.log_tail();
  EXPECT_TRUE(log_has(pgmux, "reload: database app: pool_size 4 -> 8, replicas 0 -> 1"))
      << pgmux.log_tail();

  // Reads of a new session reach the added replica (round robin over the replicas).
  auto c = client(pgmux);
  ASSERT_TRUE(c);
  EXPECT_TRUE(wait_for([&] { return port_of(c) == pg().replica_port(); }, 10s)) << pgmux.log_tail();
  // pool_size 8 is in force: 6 clients hold a transaction on the primary at once (with 4,
  // the fifth would wait and fail at query_wait_timeout).
  std::vector<PgConn> holders;
  for (int i = 0; i < 6; ++i) {
    holders.push_back(client(pgmux));
    ASSERT_TRUE(holders.back());
    ASSERT_TRUE(exec(holders.back(), "BEGIN").ok());
    const auto r = exec(holders.back(), "/* pgmux:primary */ SELECT 1");
    ASSERT_TRUE(r.ok()) << "client " << i << ": " << r << pgmux.log_tail();
  }
  holders.clear();
  auto a = admin(pgmux);
  ASSERT_TRUE(a);
  const auto replicas = exec(a, "SHOW REPLICAS");
  ASSERT_TRUE(replicas.ok()) << replicas;
  EXPECT_EQ(replicas.columns.at(0), "database");
  bool replica_row = false;
  for (const auto& row : replicas.rows) {
    replica_row |= row[0] == "app" && row[2] == std::to_string(pg().replica_port()) &&
                   row[3] == "replica" && row[4] == "1";
  }
  EXPECT_TRUE(replica_row) << dump(replicas);

  // A broken file: logged, the running config stays (the replica keeps serving reads).
  pgmux.rewrite_config(config(8, true) + "\npool_size = \"many\"\n");
  ASSERT_TRUE(pgmux.signal(SIGHUP));
  EXPECT_TRUE(
      wait_for([&] { return log_has(pgmux, "reload: keeping the running configuration"); }, 5s))
      << pgmux.log_tail();
  EXPECT_TRUE(pgmux.running());
  auto after = client(pgmux);
  ASSERT_TRUE(after);
  EXPECT_TRUE(wait_for([&] { return port_of(after) == pg().replica_port(); }, 5s));
  std::vector<PgConn> still;
  for (int i = 0; i < 6; ++i) {
    still.push_back(client(pgmux));
    ASSERT_TRUE(still.back());
    ASSERT_TRUE(exec(still.back(), "BEGIN").ok());
    ASSERT_TRUE(exec(still.back(), "/* pgmux:primary */ SELECT 1").ok()) << pgmux.log_tail();
  }
  still.clear();

  // workers needs a restart: named in the log, the running value stays.
  std::string text = config(8, true);
  text.replace(text.find("workers = 1"), 11, "workers = 2");
  pgmux.rewrite_config(text);
  ASSERT_TRUE(pgmux.signal(SIGHUP));
  EXPECT_TRUE(wait_for(
      [&] {
        return log_has(pgmux, "change only on restart and keep their running values: workers");
      },
      5s))
      << pgmux.log_tail();
  const auto cfg = exec(a, "SHOW CONFIG");
  bool one_worker = false;
  for (const auto& row : cfg.rows) {
    one_worker |= row[0] == "workers" && row[1] == "1";
  }
  EXPECT_TRUE(one_worker) << cfg;
  EXPECT_EQ(pgmux.stop(), 0) << pgmux.log_tail();
}

// ---- SIGTERM -------------------------------------------------------------------------

// SIGTERM while a client is inside a transaction: the client may still COMMIT, the row is
// there, then pgmux exits 0 on its own. New connections are refused and /readyz says 503
// meanwhile.
TEST_F(LifecycleTest, SigtermLetsOpenTransactionCommit) {
  PgmuxProcess pgmux;
  const int http_port = PgmuxProcess::free_port();
  ASSERT_TRUE(pgmux.start(
      config(4, false, "http_listen = \"127.0.0.1:" + std::to_string(http_port) + "\"")));
  EXPECT_EQ(http_get(http_port, "/readyz").status, 200);
  auto su = connect(pg().superuser_conninfo(Node::Primary, "app")).conn;
  ASSERT_TRUE(su);
  ASSERT_TRUE(exec(su,
                   "DROP TABLE IF EXISTS lifecycle_drain; "
                   "CREATE TABLE lifecycle_drain (id int); "
                   "GRANT ALL ON lifecycle_drain TO app")
                  .ok());
  auto c = client(pgmux);
  ASSERT_TRUE(c);
  ASSERT_TRUE(exec(c, "BEGIN").ok());
  ASSERT_TRUE(exec(c, "INSERT INTO lifecycle_drain VALUES (42)").ok());

  ASSERT_TRUE(pgmux.signal(SIGTERM));
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(pgmux.running()) << "exited with a transaction open";
  EXPECT_FALSE(connect(pgmux.conninfo())) << "accepted a new client while draining";
  EXPECT_EQ(http_get(http_port, "/readyz").status, 503);
  const auto commit = exec(c, "COMMIT");
  EXPECT_TRUE(commit.ok()) << commit;
  EXPECT_EQ(pgmux.wait_exit(10s), 0) << pgmux.log_tail();
  EXPECT_EQ(query_value(su, "SELECT count(*) FROM lifecycle_drain WHERE id = 42"), "1");
  exec(su, "DROP TABLE lifecycle_drain");
}

// A second SIGTERM while a transaction holds the drain open stops pgmux at once.
TEST_F(LifecycleTest, SecondSigtermStopsAtOnce) {
  PgmuxProcess pgmux;
  ASSERT_TRUE(pgmux.start(config(4, false, "shutdown_timeout = 60")));
  auto c = client(pgmux);
  ASSERT_TRUE(c);
  ASSERT_TRUE(exec(c, "BEGIN").ok());
  ASSERT_TRUE(exec(c, "SELECT 1").ok());
  ASSERT_TRUE(pgmux.signal(SIGTERM));
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(pgmux.running()) << "the open transaction should hold the drain";
  const auto before = Clock::now();
  ASSERT_TRUE(pgmux.signal(SIGTERM));
  EXPECT_EQ(pgmux.wait_exit(5s), 0) << pgmux.log_tail();
  EXPECT_LT(Clock::now() - before, 3s);
  EXPECT_TRUE(log_has(pgmux, "SIGTERM again: stopping now")) << pgmux.log_tail();
  EXPECT_FALSE(exec(c, "COMMIT").ok()) << "the connection should be gone";
}

// ---- rolling restart -----------------------------------------------------------------

// A second pgmux starts on the same port (SO_REUSEPORT) while pgbench runs, then the old
// one gets SIGTERM and drains. pgbench -C opens a connection per transaction, which is what
// a rolling restart must keep working: new connections land on whichever process listens,
// transactions in flight on the old one finish. Zero failed transactions.
//
// Linux resets the connections still queued on a listening socket when it closes, even when
// another socket of its SO_REUSEPORT group could take them, unless net.ipv4.tcp_migrate_req
// is 1 (Linux 5.14+), which moves them to the remaining listeners. The documented rolling
// restart procedure sets it; so does this test (restored afterwards), else a connection
// that arrives in the microseconds before the old listener closes fails.
TEST_F(LifecycleTest, RollingRestartOnOnePort) {
  MigrateRequests migrate;
  if (!migrate.enabled()) {
    GTEST_SKIP() << "cannot set net.ipv4.tcp_migrate_req = 1: " << migrate.error();
  }
  const int port = PgmuxProcess::free_port();
  PgmuxOptions options;
  options.port = port;
  PgmuxProcess old_pgmux;
  ASSERT_TRUE(old_pgmux.start(config(4, false), options));

  // Two loads: a connection per transaction (the handoff itself), and persistent
  // connections, which stay on the old process while they are busy (first half of
  // shutdown_timeout, 30 s here) and end with pgbench's run.
  Bench bench;
  start_pgbench(bench, port, 8, {"-C"}, 6);
  Bench persistent;
  start_pgbench(persistent, port, 8, {}, 4);
  std::this_thread::sleep_for(2s);

  // The old process already answers on the port, so the new one's readiness is its READY=1.
  NotifySocket notify(/*abstract=*/false);
  ASSERT_TRUE(notify.bound());
  PgmuxOptions new_options = options;
  new_options.env = {notify.env()};
  PgmuxProcess new_pgmux;
  ASSERT_TRUE(new_pgmux.start(config(4, false), new_options));
  ASSERT_EQ(notify.next(10s), "READY=1") << new_pgmux.log_tail();
  std::this_thread::sleep_for(1s);

  ASSERT_TRUE(old_pgmux.signal(SIGTERM));
  EXPECT_EQ(old_pgmux.wait_exit(10s), 0) << old_pgmux.log_tail();
  bench.thread.join();
  persistent.thread.join();
  EXPECT_TRUE(pgbench_clean(bench.result)) << old_pgmux.log_tail(10) << new_pgmux.log_tail(10);
  EXPECT_TRUE(pgbench_clean(persistent.result)) << old_pgmux.log_tail(10);

  // The new process took over: it serves a client, and it did serve pgbench.
  auto c = client(new_pgmux);
  ASSERT_TRUE(c);
  EXPECT_EQ(query_value(c, "SELECT 1"), "1");
  auto a = admin(new_pgmux);
  ASSERT_TRUE(a);
  const auto stats = exec(a, "SHOW STATS");
  std::string xacts;
  for (const auto& row : stats.rows) {
    if (row[0] == "*") {
      xacts = row[static_cast<std::size_t>(column(stats, "total_xact_count"))];
    }
  }
  EXPECT_GT(std::stoll(xacts.empty() ? "0" : xacts), 100) << stats;
  EXPECT_EQ(new_pgmux.stop(), 0) << new_pgmux.log_tail();
}

}  // namespace
}  // namespace pooler::integration
