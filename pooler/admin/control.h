#pragma once
// What the admin console and the HTTP endpoint see of the process: per-worker snapshots
// of pools, clients and backends, and the commands they may run. app::Worker implements
// WorkerControl, app::App implements Control; admin/ and http/ depend on neither.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pooler/advice/advice_store.h"
#include "pooler/advice/shape_stats.h"
#include "pooler/backend/pool.h"
#include "pooler/client/session_host.h"

namespace pooler::admin {

struct PoolRow {
  std::string database;
  std::string user;
  config::PoolMode mode = config::PoolMode::Transaction;
  int size = 0;  // this worker's share of pool_size
  bool paused = false;
  backend::PoolStats stats;
  int cl_active = 0;   // logged in: idle between transactions or linked to a backend
  int cl_waiting = 0;  // waiting for a backend (or for the server's parameters)
  int pinned = 0;
  std::string last_error;
  backend::PoolTraffic traffic;
};

struct ClientRow {
  std::uint64_t id = 0;
  std::string user;
  std::string database;
  std::string state;               // client::to_string(ClientState)
  std::string peer;                // "ip:port" or "unix"
  std::uint64_t connected_ms = 0;  // loop clock of its worker
  std::uint64_t wait_ms = 0;       // how long it has waited for a backend, if waiting
  std::uint64_t backend_id = 0;    // the linked backend, 0 if none
  std::int32_t backend_pid = 0;    // its server pid
  int pins = 0;
  bool admin = false;
  std::string tls;                 // "TLSv1.3/TLS_AES_256_GCM_SHA384"; "" in plaintext
};

struct ServerRow {
  std::uint64_t id = 0;
  std::string user;
  std::string database;
  std::string state;  // backend::to_string(BackendState)
  config::HostPort address;
  std::uint64_t created_ms = 0;
  std::uint64_t last_used_ms = 0;
  std::int32_t pid = 0;
  std::uint64_t client_id = 0;  // the linked client, 0 if none
  std::size_t prepared = 0;
  std::string tls;  // as ClientRow::tls
};

// One worker's view, taken on its loop thread and then read on another.
struct WorkerSnapshot {
  int worker = 0;
  std::uint64_t now_ms = 0;  // the worker's loop clock when taken
  client::WorkerCounters counters;
  std::size_t prepared_statements = 0;  // registry size
  std::size_t query_shapes = 0;         // per-shape statistics kept
  std::uint64_t parse_cache_hits = 0;
  std::uint64_t parse_cache_misses = 0;
  std::vector<PoolRow> pools;
  std::vector<ClientRow> clients;
  std::vector<ServerRow> servers;
  // The last health-check round per monitored database (databases with replicas), as the
  // worker routes by it. Every worker holds the same ones.
  std::map<std::string, std::shared_ptr<const backend::HealthSnapshot>> health;
};

// Loop thread of that worker only.
class WorkerControl {
 public:
  virtual WorkerSnapshot snapshot() = 0;
  // `database` "" = every database.
  virtual void set_paused(std::string_view database, bool paused) = 0;
  virtual void kill(std::string_view database) = 0;       // closes its clients and backends
  // SUSPEND / RESUME: every client and backend stops (starts again) being read; the
  // bytes still queued for writing, summed (SUSPEND answers once they are all written).
  virtual void set_suspended(bool suspended) = 0;
  virtual std::size_t unflushed_bytes() = 0;
  // Per-shape statistics, wall-clock times (SHOW QUERIES); empty when query_stats is off.
  virtual std::vector<advice::ShapeRow> shapes() = 0;
  virtual void reconnect(std::string_view database) = 0;  // closes idle backends

 protected:
  ~WorkerControl() = default;
};

// Any thread.
class Control {
 public:
  virtual int worker_count() const = 0;
  // Runs `task` on worker `index`'s loop thread.
  virtual void on_worker(int index, std::function<void(WorkerControl&)> task) = 0;
  virtual void reload() = 0;    // as SIGHUP
  virtual void shutdown() = 0;  // as SIGTERM
  // A stop began (SIGTERM, SIGINT, SHUTDOWN): /readyz says 503 so that traffic moves away.
  virtual bool stopping() const = 0;
  virtual const advice::AdviceStore& advice_store() const = 0;  // index advice records
  virtual std::uint64_t samples_dropped() const = 0;  // advisor queue full

 protected:
  ~Control() = default;
};

}  // namespace pooler::admin
