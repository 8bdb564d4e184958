#pragma once
// What a client session needs from the worker that owns it. Implemented by app::Worker;
// keeps client/ free of the app's wiring. Loop thread only.

#include <array>
#include <cstdint>
#include <string>
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
#include "pooler/net/tls_context.h"
#include "pooler/wire/scram.h"
#include "pooler/wire/write_buffer.h"

namespace pooler::client {

class AdminFactory;
class ClientSession;

// A client's settings as statements that apply them on a backend ("set_config('x', 'v',
// false)" for startup parameters, the SET text itself for SET), sorted by name, with their
// hash; and the ParameterStatus values the client asked for at startup. Immutable.
struct SessionSettings {
  std::vector<std::pair<std::string, std::string>> items;
  std::uint64_t hash = 0;  // 0 = no settings of its own
  std::vector<std::pair<std::string, std::string>> reported;
  // The startup settings these were derived from by SET or RESET; null for startup ones.
  std::shared_ptr<const SessionSettings> startup;
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
  // Connections, logins and requests refused by a limit, by app::Refusal.
  std::array<std::uint64_t, 6> refused{};

  // Request latency as pgmux sees it (with query_stats on): a Prometheus histogram per
  // route, bucket i counting requests up to kLatencyBounds[i] seconds, the last one +Inf.
  static constexpr std::array<double, 14> kLatencyBounds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  struct Latency {
    std::array<std::uint64_t, kLatencyBounds.size() + 1> buckets{};
    std::uint64_t sum_ns = 0;
    void add(std::uint64_t ns) {
      const double s = static_cast<double>(ns) / 1e9;
      std::size_t i = 0;
      while (i < kLatencyBounds.size() && s > kLatencyBounds[i]) {
        ++i;
      }
      ++buckets[i];
      sum_ns += ns;
    }
    Latency& operator+=(const Latency& o) {
      for (std::size_t i = 0; i < buckets.size(); ++i) {
        buckets[i] += o.buckets[i];
      }
      sum_ns += o.sum_ns;
      return *this;
    }
  };
  Latency latency_primary;
  Latency latency_replica;
  // ErrorResponses sent to clients (from PostgreSQL or from pgmux), by SQLSTATE class:
  // index sqlstate_class_index("08") for class 08.
  std::array<std::uint32_t, 36 * 36> errors_by_class{};
  void count_error(std::string_view sqlstate) {
    if (sqlstate.size() >= 2) {
      const int i = sqlstate_class_index(sqlstate);
      if (i >= 0) {
        ++errors_by_class[static_cast<std::size_t>(i)];
      }
    }
  }
  static int class_char(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'Z' ? c - 'A' + 10 : -1;
  }
  static int sqlstate_class_index(std::string_view sqlstate) {
    const int a = class_char(sqlstate[0]);
    const int b = class_char(sqlstate[1]);
    return a < 0 || b < 0 ? -1 : a * 36 + b;
  }
  static std::string class_name(std::size_t index) {
    constexpr std::string_view kChars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    return {kChars[index / 36], kChars[index % 36]};
  }

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
    for (std::size_t i = 0; i < refused.size(); ++i) {
      refused[i] += o.refused[i];
    }
    latency_primary += o.latency_primary;
    latency_replica += o.latency_replica;
    for (std::size_t i = 0; i < errors_by_class.size(); ++i) {
      errors_by_class[i] += o.errors_by_class[i];
    }
    return *this;
  }
};

class SessionHost {
 public:
  virtual net::Loop& loop() = 0;
  // Makes admin console handlers; null where there is no console (tests' hosts).
  virtual AdminFactory* admin_factory() { return nullptr; }
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
  // The TLS contexts of the current configuration; none by default (tests' hosts).
  virtual const net::TlsSetup& tls() const {
    static const net::TlsSetup none;
    return none;
  }
  // The session has closed its socket; the host defers its deletion.
  virtual void on_client_closed(ClientSession& session) = 0;
  // Scratch output buffer shared by the worker's sessions (cleared by the user).
  virtual wire::WriteBuffer& scratch() = 0;
  virtual WorkerCounters& counters() = 0;
  // One shared object per distinct startup settings (bounded); `s` must be complete.
  virtual std::shared_ptr<const SessionSettings> intern_settings(SessionSettings s) = 0;
  virtual bool draining() const = 0;
  // SUSPEND from the admin console: no session resumes reading until RESUME.
  virtual bool suspended() const = 0;

  // Limits (app/admission.h, app/query_throttle.h).
  // A login as `user`; false when max_user_client_connections is reached. `counted` says
  // whether release_user() must follow when the session ends.
  virtual bool admit_user(const config::UserConfig& user, bool& counted) = 0;
  virtual void release_user(std::string_view user) = 0;
  virtual void note_login_failure(const ClientSession& session) = 0;
  // Whether `session` may start a request now (max_user_query_rate). False: it is queued
  // and ClientSession::on_throttle_end() tells it when to go on or fail.
  virtual bool admit_request(ClientSession& session, const config::UserConfig& user) = 0;
  virtual void forget_throttled(ClientSession& session) = 0;  // it stops waiting (cancelled)
  // auth_query: looks `user` up in PostgreSQL for database `db`; the answer arrives on this
  // loop through ClientSession::on_user_looked_up (nullptr: no such user).
  virtual void lookup_user(ClientSession& session, const config::DatabaseConfig& db,
                           const std::string& user) = 0;

 protected:
  ~SessionHost() = default;
};

}  // namespace pooler::client
