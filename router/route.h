#pragma once
// The vocabulary of routing decisions: what decide() is told about the session, the
// replicas and the configuration, and what it answers. Plain data, filled by the caller.

#include <cstdint>
#include <optional>
#include <string_view>

namespace router {

enum class Target : std::uint8_t {
  Primary,  // lease a backend of the primary
  Replica,  // lease a backend of replicas[Route::replica]
  None,     // no host may take it (primary_reads = never and no replica eligible): the
            // client gets an error
};

std::string_view to_string(Target target);

struct Route {
  Target target = Target::Primary;
  int replica = -1;         // index into the replicas given to decide(); -1 unless Replica
  std::string_view reason;  // static text, for logs, metrics and SHOW commands
};

// What the caller knows about the client at the moment it needs a backend.
struct SessionView {
  // Inside BEGIN ... COMMIT: from the last ReadyForQuery ('T' or 'E').
  bool in_transaction = false;
  // The open transaction was declared read-only (BEGIN READ ONLY, SET TRANSACTION READ
  // ONLY, or started while default_read_only was on).
  bool transaction_read_only = false;
  // SET default_transaction_read_only = on (or SET SESSION CHARACTERISTICS AS TRANSACTION
  // READ ONLY) in this session: a plain BEGIN starts a read-only transaction.
  bool default_read_only = false;
  // SET pgmux.route = 'primary' | 'replica' in this session; nullopt: automatic.
  std::optional<Target> session_route = std::nullopt;
  // Read-your-writes by time window: the client wrote less than the window ago.
  bool must_read_primary = false;
  // Read-your-writes by LSN: the commit LSN of the client's last write (0: none). Only
  // replicas whose replay_lsn has reached it are eligible.
  std::uint64_t min_replay_lsn = 0;
};

// What the health checks know about one replica.
struct ReplicaState {
  bool healthy = true;            // the last check succeeded and the host is in recovery
  bool banned = false;            // connection failures: out until its backoff expires
  std::int64_t lag_bytes = -1;    // primary's LSN minus replay LSN; < 0 unknown
  std::int64_t lag_ms = -1;       // now minus last replayed commit timestamp; < 0 unknown
  std::uint64_t replay_lsn = 0;   // pg_last_wal_replay_lsn(), see parse_lsn()
  int active = 0;                 // backends of this replica leased right now (this worker)
  int weight = 1;                 // relative share of reads; 0 takes none
};

// The primary, when it competes for reads (primary_reads = always).
struct PrimaryState {
  int active = 0;  // backends of the primary leased right now (this worker)
  int weight = 1;
};

struct RouterConfig {
  enum class Balance : std::uint8_t {
    LeastOutstanding,  // fewest leased backends relative to weight; ties rotate
    RoundRobin,        // in turn, weighted
  };
  enum class PrimaryReads : std::uint8_t {
    Never,     // reads never go to the primary for balance or fallback (consistency rules
               // such as transactions, hints and read-your-writes still use it)
    Fallback,  // reads go to the primary only when no replica is eligible
    Always,    // the primary is one of the read candidates, with PrimaryState::weight
  };
  Balance balance = Balance::LeastOutstanding;
  PrimaryReads primary_reads = PrimaryReads::Fallback;
  std::int64_t max_replica_lag_bytes = 0;  // 0: no bound; else larger or unknown lag excludes
  // 0: no bound; else larger or unknown lag excludes, unless lag_bytes == 0 (the replay
  // timestamp of a fully caught-up replica ages while the primary is idle).
  std::int64_t max_replica_lag_ms = 0;
};

}  // namespace router
