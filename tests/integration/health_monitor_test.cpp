// The health monitor (issue 4: health, lag, roles that follow the servers) against the
// fixture's real primary + streaming replica. The monitor runs on its own net::Loop thread
// with the default 1 s period, connecting as postgres/postgres over TCP (SCRAM); the test
// thread changes the servers with libpq and pg_ctl and waits for snapshots that show it.
// The hosts are listed replica first, so every role the snapshots show comes from
// pg_is_in_recovery(), not from the order. The promotion test must stay last: it leaves the
// old primary stopped (each binary has its own cluster).

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "pooler/backend/health_monitor.h"
#include "pooler/backend/host_state.h"
#include "pooler/net/loop.h"
#include "pooler/net/timer.h"
#include "tests/integration/pg_client.h"
#include "tests/integration/postgres_environment.h"
#include "tests/integration/test_util.h"

namespace pooler::integration {
namespace {

using namespace std::chrono_literals;
using backend::HealthSnapshot;
using Clock = std::chrono::steady_clock;
using SnapshotPtr = std::shared_ptr<const HealthSnapshot>;

constexpr int kReplica = 0;  // index in the monitor's host list
constexpr int kPrimary = 1;

// A HealthMonitor on its own loop thread; snapshots are handed to the test thread.
class MonitorThread {
 public:
  explicit MonitorThread(backend::HealthMonitorOptions options) {
    std::promise<void> started;
    thread_ = std::thread([this, &started, options = std::move(options)]() mutable {
      net::Loop loop;
      monitor_ = std::make_unique<backend::HealthMonitor>(
          loop, std::move(options), [this](SnapshotPtr snapshot) {
            std::lock_guard lock(mutex_);
            latest_ = std::move(snapshot);
            changed_.notify_all();
          });
      monitor_->start();
      loop_ = &loop;
      started.set_value();
      loop.run();
      loop_ = nullptr;
    });
    started.get_future().wait();
  }

  ~MonitorThread() {
    loop_->post([this] {
      monitor_.reset();
      loop_->close_internal_handles();
    });
    thread_.join();
  }

  SnapshotPtr latest() {
    std::lock_guard lock(mutex_);
    return latest_;
  }

  // The first snapshot for which `accept` is true, waiting up to `timeout`; nullptr if none.
  SnapshotPtr wait_for(const std::function<bool(const HealthSnapshot&)>& accept,
                       std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    const auto deadline = Clock::now() + timeout;
    std::uint64_t seen = 0;
    for (;;) {
      if (latest_ != nullptr && latest_->generation != seen) {
        seen = latest_->generation;
        if (accept(*latest_)) {
          return latest_;
        }
      }
      if (changed_.wait_until(lock, deadline) == std::cv_status::timeout &&
          (latest_ == nullptr || latest_->generation == seen)) {
        return nullptr;
      }
    }
  }

 private:
  std::thread thread_;
  net::Loop* loop_ = nullptr;
  std::unique_ptr<backend::HealthMonitor> monitor_;  // loop thread only
  std::mutex mutex_;
  std::condition_variable changed_;
  SnapshotPtr latest_;
};

backend::HealthMonitorOptions options() {
  backend::HealthMonitorOptions o;
  o.hosts = {config::HostPort{"127.0.0.1", static_cast<std::uint16_t>(pg().replica_port())},
             config::HostPort{"127.0.0.1", static_cast<std::uint16_t>(pg().primary_port())}};
  o.user = "postgres";
  o.password = "postgres";
  o.dbname = "postgres";
  return o;  // period 1 s, timeout 1 s: the defaults
}

std::string describe(const SnapshotPtr& s) {
  if (s == nullptr) {
    return "no snapshot";
  }
  std::string out = "generation " + std::to_string(s->generation) + ", primary_index " +
                    std::to_string(s->primary_index) + ", primary_lsn " +
                    std::to_string(s->primary_lsn) + ":";
  for (const auto& h : s->hosts) {
    out += " [" + h.address.to_string() + (h.reachable ? " up" : " down") +
           (h.in_recovery ? " replica" : " primary") + " lsn " + std::to_string(h.lsn) +
           " lag_ms " + std::to_string(h.replay_lag_ms) + " failures " +
           std::to_string(h.consecutive_failures) + " '" + h.last_error + "']";
  }
  return out;
}

bool both_up(const HealthSnapshot& s) {
  return s.hosts.size() >= 2 && s.hosts[kReplica].reachable && s.hosts[kPrimary].reachable;
}

PgConn superuser(Node node) {
  auto c = connect(pg().superuser_conninfo(node));
  EXPECT_TRUE(c) << c.error;
  return std::move(c.conn);
}

void write_rows(int rows) {
  auto c = superuser(Node::Primary);
  ASSERT_TRUE(c);
  ASSERT_TRUE(exec(c, "CREATE TABLE IF NOT EXISTS health_t(x int, pad text)").ok());
  const auto r = exec(c, "INSERT INTO health_t SELECT g, repeat('x', 100) FROM generate_series(1, " +
                             std::to_string(rows) + ") g");
  ASSERT_TRUE(r.ok()) << r;
}

class HealthMonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!pg().has_replica()) {
      GTEST_SKIP() << "needs the replica";
    }
  }
};

// Both hosts are reachable and their roles come from pg_is_in_recovery(), not the order.
TEST_F(HealthMonitorTest, BothReachableWithRolesFromTheServers) {
  MonitorThread m(options());
  const auto s = m.wait_for(both_up, 5s);
  ASSERT_NE(s, nullptr) << describe(m.latest());
  EXPECT_EQ(s->primary_index, kPrimary) << describe(s);
  EXPECT_EQ(s->primary_count, 1);
  EXPECT_FALSE(s->hosts[kPrimary].in_recovery);
  EXPECT_TRUE(s->hosts[kReplica].in_recovery);
  EXPECT_GT(s->hosts[kPrimary].lsn, 0u);
  EXPECT_GT(s->hosts[kReplica].lsn, 0u);
  EXPECT_EQ(s->primary_lsn, s->hosts[kPrimary].lsn);
  EXPECT_EQ(s->hosts[kPrimary].replay_lag_ms, -1);  // a primary replays nothing
  EXPECT_EQ(s->hosts[kPrimary].consecutive_failures, 0);
  EXPECT_TRUE(s->hosts[kPrimary].last_error.empty());
  ASSERT_TRUE(backend::lag_bytes(*s, kReplica).has_value());
  EXPECT_FALSE(backend::lag_bytes(*s, kPrimary).has_value());  // not a replica

  // Rounds keep coming, once per period, with increasing generations.
  const auto next = m.wait_for([&](const HealthSnapshot& n) { return n.generation >= s->generation + 2; }, 4s);
  ASSERT_NE(next, nullptr);
  EXPECT_GT(next->taken_at_ms, s->taken_at_ms);
  EXPECT_GT(next->hosts[kPrimary].checked_at_ms, s->hosts[kPrimary].checked_at_ms);
}

// Writes on the primary advance its LSN; the replica replays up to it.
TEST_F(HealthMonitorTest, LsnAdvancesAfterWrites) {
  MonitorThread m(options());
  const auto before = m.wait_for(both_up, 5s);
  ASSERT_NE(before, nullptr) << describe(m.latest());
  write_rows(1000);
  const auto after = m.wait_for(
      [&](const HealthSnapshot& s) { return both_up(s) && s.primary_lsn > before->primary_lsn; }, 5s);
  ASSERT_NE(after, nullptr) << describe(m.latest());
  const auto replayed = m.wait_for(
      [&](const HealthSnapshot& s) {
        return both_up(s) && backend::caught_up(s, kReplica, after->primary_lsn);
      },
      10s);
  ASSERT_NE(replayed, nullptr) << describe(m.latest());
  EXPECT_GE(replayed->hosts[kReplica].lsn, after->primary_lsn);
  EXPECT_GT(replayed->hosts[kReplica].lsn, before->hosts[kReplica].lsn);
}

// Replay paused: the byte lag grows with each write and read-your-writes keeps the writer
// off the replica; replay resumed: the lag returns to about 0 and the replica has caught up.
TEST_F(HealthMonitorTest, LagGrowsWhileReplayPausedAndRecovers) {
  MonitorThread m(options());
  ASSERT_NE(m.wait_for(both_up, 5s), nullptr) << describe(m.latest());
  auto replica = superuser(Node::Replica);
  ASSERT_TRUE(replica);
  ASSERT_TRUE(exec(replica, "SELECT pg_wal_replay_pause()").ok());
  struct Resume {
    PGconn* c;
    ~Resume() { exec(c, "SELECT pg_wal_replay_resume()"); }
  } resume{replica.get()};

  write_rows(2000);
  const std::uint64_t write1_done = net::now_ns();
  const auto lagging = m.wait_for(
      [&](const HealthSnapshot& s) {
        return both_up(s) && backend::lsn_covering(s, write1_done).has_value() &&
               backend::lag_bytes(s, kReplica).value_or(0) > 0;
      },
      5s);
  ASSERT_NE(lagging, nullptr) << describe(m.latest());
  const std::uint64_t lag1 = *backend::lag_bytes(*lagging, kReplica);
  const std::uint64_t commit1 = *backend::lsn_covering(*lagging, write1_done);
  EXPECT_FALSE(backend::caught_up(*lagging, kReplica, commit1)) << describe(lagging);

  write_rows(2000);
  const auto more = m.wait_for(
      [&](const HealthSnapshot& s) { return both_up(s) && backend::lag_bytes(s, kReplica).value_or(0) > lag1; },
      5s);
  ASSERT_NE(more, nullptr) << "lag stayed at " << lag1 << ": " << describe(m.latest());
  EXPECT_FALSE(backend::caught_up(*more, kReplica, commit1));

  ASSERT_TRUE(exec(replica, "SELECT pg_wal_replay_resume()").ok());
  const auto recovered = m.wait_for(
      [&](const HealthSnapshot& s) {
        // ~0: the primary may write a little WAL of its own (running-xacts records).
        return both_up(s) && backend::lag_bytes(s, kReplica).value_or(~0ull) <= 16 * 1024;
      },
      10s);
  ASSERT_NE(recovered, nullptr) << describe(m.latest());
  EXPECT_TRUE(backend::caught_up(*recovered, kReplica, commit1)) << describe(recovered);
}

// A stopped replica is unreachable within 3 s (and banned with backoff); once started again
// it is reachable again; the primary stays reachable throughout.
TEST_F(HealthMonitorTest, StoppedReplicaUnreachableThenBack) {
  MonitorThread m(options());
  ASSERT_NE(m.wait_for(both_up, 5s), nullptr) << describe(m.latest());
  const auto stopping = Clock::now();
  const auto stopped = pg().run_ctl(Node::Replica, {"stop", "-m", "fast"});
  ASSERT_TRUE(stopped.ok()) << stopped.output;
  const auto down_since = Clock::now();
  const auto down = m.wait_for(
      [](const HealthSnapshot& s) { return !s.hosts[kReplica].reachable; }, 3s);
  ASSERT_NE(down, nullptr) << "replica still reachable 3 s after pg_ctl stop: "
                           << describe(m.latest());
  const double seconds = std::chrono::duration<double>(Clock::now() - down_since).count();
  std::printf("replica unreachable %.2f s after pg_ctl stop returned (%.2f s after it began)\n",
              seconds, std::chrono::duration<double>(Clock::now() - stopping).count());
  EXPECT_TRUE(down->hosts[kPrimary].reachable);
  EXPECT_EQ(down->primary_index, kPrimary);
  EXPECT_FALSE(down->hosts[kReplica].last_error.empty());
  EXPECT_FALSE(backend::usable_replica(*down, kReplica));
  EXPECT_FALSE(backend::caught_up(*down, kReplica, 0));

  // Failures accumulate and the ban backs off while it stays down.
  const auto banned = m.wait_for(
      [](const HealthSnapshot& s) { return s.hosts[kReplica].consecutive_failures >= 2; }, 5s);
  ASSERT_NE(banned, nullptr) << describe(m.latest());
  EXPECT_GT(banned->hosts[kReplica].banned_until_ms, banned->hosts[kReplica].checked_at_ms);

  const auto started = pg().run_ctl(Node::Replica, {"start"});
  ASSERT_TRUE(started.ok()) << started.output;
  const auto up = m.wait_for(both_up, 15s);
  ASSERT_NE(up, nullptr) << describe(m.latest()) << "\n" << pg().log_tail(Node::Replica);
  EXPECT_EQ(up->hosts[kReplica].consecutive_failures, 0);
  EXPECT_TRUE(up->hosts[kReplica].in_recovery);
  EXPECT_EQ(up->primary_index, kPrimary);
}

// A host that accepts TCP connections but never answers (a listening socket nobody accepts
// on) times out after `timeout` without stalling the loop: the real hosts are checked in the
// same rounds, and a closed port fails at once with libpq's error.
TEST_F(HealthMonitorTest, SilentAndClosedHostsFailWithoutBlockingOthers) {
  const int silent = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(silent, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(silent, 16), 0);
  ASSERT_EQ(::getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const auto silent_port = ntohs(addr.sin_port);

  auto o = options();
  o.timeout = 300ms;
  o.hosts.push_back(config::HostPort{"127.0.0.1", silent_port});
  o.hosts.push_back(config::HostPort{"127.0.0.1", 1});  // nothing listens on port 1
  MonitorThread m(o);
  const auto s = m.wait_for(
      [](const HealthSnapshot& s) {
        return both_up(s) && s.hosts[2].consecutive_failures >= 1 &&
               s.hosts[3].consecutive_failures >= 1;
      },
      5s);
  ASSERT_NE(s, nullptr) << describe(m.latest());
  EXPECT_EQ(s->primary_index, kPrimary);
  EXPECT_FALSE(s->hosts[2].reachable);
  EXPECT_EQ(s->hosts[2].last_error, "connect timed out");
  EXPECT_FALSE(s->hosts[3].reachable);
  EXPECT_NE(s->hosts[3].last_error.find("refused"), std::string::npos) << s->hosts[3].last_error;
  // Rounds go on at the period; the silent host is retried after its ban.
  const auto later = m.wait_for(
      [&](const HealthSnapshot& n) {
        return n.generation >= s->generation + 3 && n.hosts[2].consecutive_failures >= 2;
      },
      8s);
  ASSERT_NE(later, nullptr) << describe(m.latest());
  EXPECT_TRUE(both_up(*later));
  ::close(silent);
}

// Keep last: primary stopped and replica promoted; the old replica becomes primary_index
// within 5 s of the promotion, with no restart of the monitor.
TEST_F(HealthMonitorTest, PromotionMovesThePrimary) {
  MonitorThread m(options());
  ASSERT_NE(m.wait_for(both_up, 15s), nullptr) << describe(m.latest());
  const auto stopped = pg().run_ctl(Node::Primary, {"stop", "-m", "fast"});
  ASSERT_TRUE(stopped.ok()) << stopped.output;
  const auto no_primary = m.wait_for(
      [](const HealthSnapshot& s) { return s.primary_index == -1; }, 3s);
  ASSERT_NE(no_primary, nullptr) << describe(m.latest());
  EXPECT_TRUE(no_primary->hosts[kReplica].reachable);
  EXPECT_EQ(no_primary->primary_lsn, 0u);

  const auto promoted = pg().run_ctl(Node::Replica, {"promote"});
  ASSERT_TRUE(promoted.ok()) << promoted.output;
  const auto promoted_at = Clock::now();
  const auto moved = m.wait_for(
      [](const HealthSnapshot& s) { return s.primary_index == kReplica; }, 5s);
  ASSERT_NE(moved, nullptr) << "no new primary 5 s after promote: " << describe(m.latest());
  std::printf("new primary seen %.2f s after pg_ctl promote returned\n",
              std::chrono::duration<double>(Clock::now() - promoted_at).count());
  EXPECT_FALSE(moved->hosts[kReplica].in_recovery);
  EXPECT_EQ(moved->primary_count, 1);
  EXPECT_FALSE(moved->hosts[kPrimary].reachable);
  EXPECT_EQ(moved->primary_lsn, moved->hosts[kReplica].lsn);
  EXPECT_EQ(moved->hosts[kReplica].replay_lag_ms, -1);
}

}  // namespace
}  // namespace pooler::integration
