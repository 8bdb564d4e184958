#pragma once
// What the health monitor learns about each PostgreSQL host, and the pure helpers the
// router uses on it (lag, roles, read-your-writes). No I/O here.
//
// LSNs: parse_lsn is our own. router/lsn.h has the same function, but backend/ sits below
// router/ in the dependency order (and pgmux_router links the SQL parser), so the health
// monitor does not depend on it.

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pooler/base/lsn.h"
#include "pooler/config/config.h"

namespace pooler::backend {

// The last check of one host. Roles are not configured: a host is the primary when it
// answers pg_is_in_recovery() = false.
struct HostState {
  config::HostPort address;
  bool reachable = false;  // the last check succeeded (fields below are from it)
  // When !reachable, in_recovery/lsn/replay_lag_ms keep the last values seen (stale).
  bool in_recovery = false;
  // Primary: pg_current_wal_lsn(); replica: pg_last_wal_replay_lsn(); 0 unknown.
  std::uint64_t lsn = 0;
  // now() - pg_last_xact_replay_timestamp() on a replica, in ms; -1 unknown (a primary, or
  // nothing replayed since the replica started). Grows while the primary is idle even if
  // the replica is fully caught up: compare LSNs first (lag_bytes).
  std::int64_t replay_lag_ms = -1;
  // Loop clock (net::now_ms) when the check query was SENT: the values were sampled at or
  // after this time. 0 = never checked.
  std::uint64_t checked_at_ms = 0;
  // Monotonic clock (net::now_ns) read right before the check query was sent; what
  // read-your-writes compares a write's completion time with (see lsn_covering).
  std::uint64_t checked_at_ns = 0;
  int consecutive_failures = 0;
  // No check (and no reconnect) before this loop time; backoff 100 ms doubling to 5 s.
  std::uint64_t banned_until_ms = 0;
  std::string last_error;  // "" after a success
};

// One completed round of checks, shared read-only with every worker.
struct HealthSnapshot {
  std::vector<HostState> hosts;  // in the configured order
  // The reachable host with in_recovery = false; -1 if none. With several (split brain
  // after a manual promotion whose old primary came back), the one with the highest LSN,
  // and primary_count says how many there were.
  int primary_index = -1;
  int primary_count = 0;
  std::uint64_t primary_lsn = 0;  // hosts[primary_index].lsn, 0 without a primary
  std::uint64_t taken_at_ms = 0;  // loop clock when the round completed
  std::uint64_t generation = 0;   // 1, 2, 3 ... per monitor
};

using pooler::parse_lsn;  // "16/B374D848" -> 0x16B374D848 (pooler/base/lsn.h)

inline bool valid_index(const HealthSnapshot& s, int index) {
  return index >= 0 && static_cast<std::size_t>(index) < s.hosts.size();
}

// A host that can take reads as a replica now: reachable and in recovery.
inline bool usable_replica(const HealthSnapshot& s, int index) {
  return valid_index(s, index) && s.hosts[index].reachable && s.hosts[index].in_recovery;
}

// Bytes of WAL a replica has still to replay: primary_lsn - replica lsn, saturating at 0
// (a replica checked a moment after the primary may be ahead of the primary's sample).
// Unknown (no primary, replica unreachable or nothing replayed): nullopt.
inline std::optional<std::uint64_t> lag_bytes(const HealthSnapshot& s, int replica_index) {
  if (s.primary_index < 0 || !usable_replica(s, replica_index) ||
      s.hosts[replica_index].lsn == 0) {
    return std::nullopt;
  }
  const std::uint64_t replica = s.hosts[replica_index].lsn;
  return s.primary_lsn > replica ? s.primary_lsn - replica : 0;
}

// Read-your-writes
// ----------------
// The scheme (no query per write): when a client's write commits, its worker notes
// T = net::now_ns() after the commit's ReadyForQuery arrived, and sends that client's
// reads to the primary. With each new snapshot, until it has one, it asks
// lsn_covering(snapshot, T): a snapshot whose primary was sampled after T carries a
// primary LSN at or past the commit (the commit was durable before the sample), so that
// LSN is the client's `commit_lsn` from then on. A replica may serve the client again once
// caught_up(snapshot, replica, commit_lsn). Cost: nothing on the data path; the client's
// reads stay on the primary for one to two check periods after each write (plus replay
// time), which is the price of not asking pg_current_wal_lsn() on the write's backend.
// A time window (reads on the primary for N ms after a write) remains the router's
// fallback option when no snapshot arrives (monitor stalled).

// The primary's LSN in `s` if it was sampled after `write_done_ns` (net::now_ns()
// clock), i.e. an LSN at or past every commit that completed before that time.
inline std::optional<std::uint64_t> lsn_covering(const HealthSnapshot& s,
                                                 std::uint64_t write_done_ns) {
  if (!valid_index(s, s.primary_index)) {
    return std::nullopt;
  }
  const HostState& primary = s.hosts[s.primary_index];
  if (!primary.reachable || primary.checked_at_ns <= write_done_ns || primary.lsn == 0) {
    return std::nullopt;
  }
  return primary.lsn;
}

// Whether the replica at `replica_index` has replayed past `commit_lsn` in `s`. An unknown
// replay position (0) or an unusable host has caught up with nothing.
inline bool caught_up(const HealthSnapshot& s, int replica_index, std::uint64_t commit_lsn) {
  if (!usable_replica(s, replica_index)) {
    return false;
  }
  const std::uint64_t replayed = s.hosts[replica_index].lsn;
  return replayed != 0 && replayed >= commit_lsn;
}

}  // namespace pooler::backend
