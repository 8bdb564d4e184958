#pragma once
// Health checks of every PostgreSQL host of a database (issue 4: health, lag, roles that
// follow the servers). Not on the data path: it runs on one net::Loop (loop thread only)
// and hands each completed round to a callback as an immutable HealthSnapshot, which the
// app posts to every worker.
//
// Per host, ONE persistent libpq connection, opened with PQconnectStartParams and driven by
// PQconnectPoll on an FdWatcher (the loop never blocks, with one exception: libpq resolves a
// host NAME with a blocking getaddrinfo, so list IP addresses or socket directories). Each
// round sends
//   SELECT pg_is_in_recovery(),
//          CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
//               ELSE pg_current_wal_lsn() END,
//          extract(epoch from now() - pg_last_xact_replay_timestamp()) * 1000
// with PQsendQuery and reads it with PQconsumeInput/PQisBusy.
//
// Rounds: the first starts at start(), then one every `period`. A round ends when every
// host answered, failed or was skipped because it is banned; then the snapshot is published.
// A tick that comes while a round is still running (a host hanging up to `timeout`) is
// skipped, so rounds never overlap.
//
// Failures (connect error, query error, lost connection, no answer within `timeout`, which
// bounds the connect and the query separately): the connection is dropped, the host is
// unreachable and banned for backoff_min doubling per consecutive failure up to backoff_max;
// the first round after the ban reconnects. Roles are never configured: the reachable host
// that answers pg_is_in_recovery() = false is the primary, so a promotion is seen by the
// first round after it (within about one period).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pooler/backend/host_state.h"
#include "pooler/config/config.h"
#include "pooler/net/fd_watcher.h"
#include "pooler/net/loop.h"
#include "pooler/net/timer.h"

typedef struct pg_conn PGconn;

namespace pooler::backend {

struct HealthMonitorOptions {
  std::vector<config::HostPort> hosts;  // primary and replicas, any order
  std::string user;
  std::string password;
  std::string dbname = "postgres";
  std::string application_name = "pgmux-health";
  // libpq TLS keywords and values (sslmode, sslrootcert, ...), from server_tls_*.
  std::vector<std::pair<std::string, std::string>> tls_params;
  std::chrono::milliseconds period{1000};
  std::chrono::milliseconds timeout{1000};  // for the connect, and for each check query
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{5000};
};

using SnapshotCallback = std::function<void(std::shared_ptr<const HealthSnapshot>)>;

class HealthMonitor {
 public:
  // `on_snapshot` runs on the loop thread after each round; it must not destroy the
  // monitor (post that instead).
  HealthMonitor(net::Loop& loop, HealthMonitorOptions options, SnapshotCallback on_snapshot);
  // Closes every connection. Loop thread; the loop must run afterwards to free the handles.
  ~HealthMonitor();
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  // The first round now, then one per period.
  void start();
  // No more rounds; connections closed. start() may be called again.
  void stop();

  // The last published snapshot (nullptr before the first round completed).
  std::shared_ptr<const HealthSnapshot> latest() const { return latest_; }
  // Ticks skipped because the previous round was still running.
  std::uint64_t skipped_ticks() const { return skipped_ticks_; }

 private:
  enum class Phase : std::uint8_t { Closed, Connecting, Idle, Querying };

  struct Host {
    HostState state;
    PGconn* conn = nullptr;
    Phase phase = Phase::Closed;
    bool pending = false;  // part of the running round and not finished yet
    std::unique_ptr<net::FdWatcher> watcher;
    std::unique_ptr<net::Timer> deadline;
    // The check's answer while it is being read.
    bool got_row = false;
    std::string query_error;
    bool row_in_recovery = false;
    std::uint64_t row_lsn = 0;
    std::int64_t row_lag_ms = -1;
  };

  void on_tick();
  void begin_connect(std::size_t i);
  void continue_connect(std::size_t i);
  void send_check(std::size_t i);
  void on_query_ready(std::size_t i, int events);
  void read_results(std::size_t i);
  void on_ready(std::size_t i, Result<int> events);
  void succeed(std::size_t i);
  void fail(std::size_t i, std::string message);
  void close_connection(Host& host);
  void host_done(std::size_t i);
  void finish_round();

  net::Loop& loop_;
  HealthMonitorOptions options_;
  SnapshotCallback on_snapshot_;
  std::vector<Host> hosts_;
  net::Timer tick_;
  bool running_ = false;
  bool round_active_ = false;
  bool starting_round_ = false;
  std::uint64_t generation_ = 0;
  std::uint64_t skipped_ticks_ = 0;
  std::shared_ptr<const HealthSnapshot> latest_;
};

}  // namespace pooler::backend
