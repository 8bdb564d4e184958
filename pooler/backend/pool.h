#pragma once
// The backends of one (database, user) on one worker, and the clients waiting for one.
// Each worker has its own share of pool_size, so no lock is ever taken. Loop thread only.

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pooler/backend/backend_conn.h"
#include "pooler/backend/wait_queue.h"
#include "pooler/config/config.h"
#include "pooler/net/loop.h"

namespace pooler::backend {

// A client that wants a backend (or, at login, the server's parameters).
class PoolWaiter {
 public:
  virtual void on_backend_leased(BackendConn& backend) = 0;
  virtual void on_lease_failed(const Error& error) = 0;
  virtual void on_server_params_ready() = 0;

  // Bookkeeping owned by the Pool (the wait itself is in its WaitQueue).
  bool waiting = false;
  bool waiting_for_params = false;

 protected:
  ~PoolWaiter() = default;
};

struct PoolSettings {
  std::string database;  // client-visible name
  std::string user;
  config::PoolMode mode = config::PoolMode::Transaction;
  int size = 20;          // this worker's share
  int min_size = 0;
  int reserve_size = 0;
  config::Millis reserve_timeout{5000};
  int max_prepared_statements = 200;
  config::Timeouts timeouts;
  std::uint32_t max_message_size = 64 * 1024 * 1024;
  config::HostPort primary;  // the host this pool connects to (primary or a replica)
  int host_index = 0;        // 0 = the configured primary, 1.. = replicas in configured order
  ServerTls tls;             // server_tls_sslmode and its context
};

struct PoolStats {
  int active = 0;       // leased to a client
  int idle = 0;         // ready in the pool
  int connecting = 0;   // connecting or logging in
  int draining = 0;     // finishing a departed client's work
  int waiting = 0;      // clients waiting for a backend
  std::uint64_t max_wait_ms = 0;
  std::uint64_t leases = 0;
  std::uint64_t connect_failures = 0;
  std::uint64_t wait_time_us = 0;  // summed over clients that waited for a backend
};

// What the sessions of this pool's database and user did, for SHOW STATS: bumped by the
// client sessions (their login pool), read with the pool's stats.
struct PoolTraffic {
  std::uint64_t queries = 0;
  std::uint64_t transactions = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t query_time_us = 0;  // with query_stats on
  std::uint64_t xact_time_us = 0;   // time backends were leased
};

class Pool {
 public:
  Pool(net::Loop& loop, PoolSettings settings, ServerLogin login);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  const PoolSettings& settings() const { return settings_; }
  void update_settings(PoolSettings settings);
  // The SCRAM keys learnt from a client's login, when the config holds only a verifier.
  void set_scram_keys(const std::array<std::uint8_t, 32>& client_key,
                      const std::array<std::uint8_t, 32>& server_key);
  // Whether pgmux has a password or SCRAM keys for this pool's server login. Without them it
  // still tries: the server may trust the connection.
  bool has_credentials() const;
  // No password of its own: it logs in with SCRAM keys learnt from clients' proofs.
  bool logs_in_with_scram_keys() const;

  // A leased backend now, or nullptr: then `waiter` is queued (FIFO) and hears later.
  BackendConn* lease(PoolWaiter& waiter, std::uint64_t now_ms);
  // Gives a backend back. `reusable` = false closes it (broken or unknown state).
  void release(BackendConn& backend, bool reusable);
  // The client left while the backend still owed replies or was in a transaction.
  void release_orphan(BackendConn& backend);
  void cancel_wait(PoolWaiter& waiter);
  // Sends a CancelRequest for what `backend` runs now. Until the server has taken it, the
  // backend is not handed to anyone else, so a late cancel cannot hit another client's query.
  void cancel_query(BackendConn& backend);

  // ParameterStatus values of this pool's server, learnt from its first login.
  bool has_server_params() const { return have_params_; }
  const std::vector<std::pair<std::string, std::string>>& server_params() const {
    return server_params_;
  }
  // Calls waiter.on_server_params_ready() now or once a backend has logged in.
  void wait_for_server_params(PoolWaiter& waiter);

  // Periodic work: timeouts, reconnects, min_pool_size. Every ~100 ms.
  void tick(std::uint64_t now_ms);
  // Closes every idle backend now and the others when released (RECONNECT, shutdown).
  void close_idle();

  // PAUSE/RESUME from the admin console: while paused, no backend is handed out (clients
  // queue as for a full pool); backends already leased finish their transactions.
  void set_paused(bool paused);
  bool paused() const { return paused_; }
  const std::vector<std::unique_ptr<BackendConn>>& backends() const { return backends_; }

  PoolStats stats() const;
  PoolTraffic traffic;
  const std::string& last_error() const { return last_error_; }

  // From BackendConn.
  void on_backend_connected(BackendConn& backend);
  void on_backend_closed(BackendConn& backend, BackendState was);
  void on_orphan_ready(BackendConn& backend);
  void on_cancel_done(std::uint64_t id);

 private:
  void spawn_if_needed(std::uint64_t now_ms);
  void spawn(std::uint64_t now_ms);
  void hand_over(BackendConn& backend);  // to the first waiter, or into idle_
  void fail_waiters(const Error& error);
  int live_count() const;
  bool expired(const BackendConn& backend, std::uint64_t now_ms) const;

  net::Loop& loop_;
  PoolSettings settings_;
  ServerLogin login_;
  std::vector<std::unique_ptr<BackendConn>> backends_;  // all of them, any state
  std::vector<BackendConn*> idle_;                      // LIFO: the warmest first
  WaitQueue<PoolWaiter> waiters_;
  std::list<PoolWaiter*> param_waiters_;
  std::vector<std::pair<std::string, std::string>> server_params_;
  bool have_params_ = false;
  std::uint64_t next_id_ = 1;
  std::uint64_t next_connect_ms_ = 0;  // reconnect backoff
  std::uint64_t backoff_ms_ = 0;
  std::string last_error_;
  std::uint64_t leases_ = 0;
  std::uint64_t wait_time_us_ = 0;
  std::uint64_t connect_failures_ = 0;
  bool closing_all_ = false;
  bool paused_ = false;
  std::uint64_t retire_below_id_ = 0;  // RECONNECT: older backends close when released
  std::shared_ptr<Pool*> self_ = std::make_shared<Pool*>(this);  // for callbacks that may outlive it
};

}  // namespace pooler::backend
