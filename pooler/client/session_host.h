#pragma once
// What a client session needs from the worker that owns it. Implemented by app::Worker;
// keeps client/ free of the app's wiring. Loop thread only.

#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "parser/analysis_cache.h"
#include "pooler/advice/sample.h"
#include "pooler/advice/shape_stats.h"
#include "pooler/backend/host_state.h"
#include "pooler/backend/pool.h"
#include "router/function_policy.h"
#include "pooler/client/prepared_registry.h"
#include "pooler/config/config.h"
#include "pooler/net/loop.h"
#include "pooler/wire/scram.h"
#include "pooler/wire/write_buffer.h"

namespace pooler::client {

class ClientSession;

// A client's settings as statements that apply them on a backend ("set_config('x', 'v',
// false)" for startup parameters, the SET text itself for SET), sorted by name, with their
// hash; and the ParameterStatus values the client asked for at startup. Immutable.
struct SessionSettings {
  std::vector<std::pair<std::string, std::string>> items;
  std::uint64_t hash = 0;  // 0 = no settings of its own
  std::vector<std::pair<std::string, std::string>> reported;
};

// Counters the sessions bump; read by the stats line and the admin console.
struct WorkerCounters {
  std::uint64_t clients_accepted = 0;
  std::uint64_t logins_failed = 0;
  std::uint64_t queries = 0;       // Query and Sync messages forwarded
  std::uint64_t transactions = 0;  // ReadyForQuery 'I' after work
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t prepared_hits = 0;    // a backend already had the statement
  std::uint64_t prepared_misses = 0;  // pgmux prepared it on the backend
  std::uint64_t pins = 0;             // times a client was pinned
  std::uint64_t settings_syncs = 0;   // backends brought to a client's settings
  std::uint64_t routed_primary = 0;   // leases routed to the primary
  std::uint64_t routed_replica = 0;   // leases routed to a replica
  std::uint64_t replica_retries = 0;  // requests a replica refused (25006), run on the primary

  // Adds another worker's counters (SHOW STATS, /metrics).
  WorkerCounters& operator+=(const WorkerCounters& o) {
    clients_accepted += o.clients_accepted;
    logins_failed += o.logins_failed;
    queries += o.queries;
    transactions += o.transactions;
    bytes_in += o.bytes_in;
    bytes_out += o.bytes_out;
    prepared_hits += o.prepared_hits;
    prepared_misses += o.prepared_misses;
    pins += o.pins;
    settings_syncs += o.settings_syncs;
    routed_primary += o.routed_primary;
    routed_replica += o.routed_replica;
    replica_retries += o.replica_retries;
    return *this;
  }
};

class SessionHost {
 public:
  virtual net::Loop& loop() = 0;
  virtual const config::Config& config() const = 0;
  virtual std::shared_ptr<const config::Config> config_snapshot() const = 0;
  virtual int worker_index() const = 0;
  // The pool of host `host` (0 = the configured primary, 1.. = replicas in configured order)
  // for this database and user, created on first use; nullptr if it cannot exist.
  virtual backend::Pool* pool_for(const config::DatabaseConfig& db, const config::UserConfig& user,
                                  int host) = 0;
  // Routing state of a database, all owned by the worker. Null health: no snapshot yet.
  virtual std::shared_ptr<const backend::HealthSnapshot> health(std::string_view db) const = 0;
  virtual const router::FunctionPolicy& function_policy(std::string_view db) const = 0;
  virtual parser::AnalysisCache& analysis_cache() = 0;
  // Per-shape statistics of this worker; nullptr when [pgmux] query_stats is off.
  virtual advice::ShapeStats* shape_stats() = 0;
  // Hands a sample to the index advisor (dropped when its queue is full).
  virtual void submit_sample(advice::Sample&& sample) = 0;
  virtual std::uint64_t& round_robin_counter() = 0;
  virtual PreparedRegistry& prepared() = 0;
  // The SCRAM verifier for a configured user (computed once from a plaintext password).
  virtual const wire::ScramVerifier& scram_verifier(const config::UserConfig& user) = 0;
  // A CancelRequest received on this worker, for a client on any worker.
  virtual void route_cancel(std::int32_t pid, std::int32_t secret) = 0;
  // The pid of a client's cancel key: the worker index in bits 24..30, its slot below.
  virtual std::int32_t cancel_pid_for(const ClientSession& session) const = 0;
  // The session has closed its socket; the host defers its deletion.
  virtual void on_client_closed(ClientSession& session) = 0;
  // Scratch output buffer shared by the worker's sessions (cleared by the user).
  virtual wire::WriteBuffer& scratch() = 0;
  virtual WorkerCounters& counters() = 0;
  // One shared object per distinct startup settings (bounded); `s` must be complete.
  virtual std::shared_ptr<const SessionSettings> intern_settings(SessionSettings s) = 0;
  virtual bool draining() const = 0;

 protected:
  ~SessionHost() = default;
};

}  // namespace pooler::client
