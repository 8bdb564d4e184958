#pragma once
// Read/write routing: which host a query's backend is leased from. Pure functions of their
// arguments (plus the round-robin counter the caller owns): no I/O, no clock, no locks.
//
// How the session uses it (loop thread, per worker):
//   1. Query or Parse arrives while the client has no backend: analysis =
//      cache.get(sql, extended); route = decide(analysis, session, replicas, config,
//      policy, counter, primary); lease from route.target (replicas[route.replica]).
//      For a Parse, remember the route with the statement: its Bind/Execute follow it.
//   2. While a backend is linked (inside a transaction, or a pinned client), keep it:
//      decide() is not asked again until the backend is released.
//   3. After each ReadyForQuery: session.in_transaction from its status, then
//      observe(analysis, session) for the queries that completed, so that BEGIN READ ONLY,
//      SET TRANSACTION READ ONLY, SET default_transaction_read_only and SET pgmux.route
//      are reflected in the next decision.
//   4. After a write commits (a write transaction, or an autocommit statement that was not
//      read-only): set min_replay_lsn to its commit LSN (for example from
//      pg_current_wal_lsn() on that backend before release, or the primary's LSN at the next
//      health check, later but free) or set must_read_primary for a time window.

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "parser/statement.h"
#include "router/function_policy.h"
#include "router/route.h"

namespace router {

// The route for `analysis`, in this order:
//   1. parse error or empty query                       -> primary ("parse error")
//   2. /* pgmux:primary */, or SET pgmux.route = primary -> primary ("hint")
//   3. read-write transaction open before the query, or left open after it, or an explicit
//      BEGIN/SET TRANSACTION READ WRITE                  -> primary ("read-write transaction")
//   4. any statement not read-only (a multi-statement query counts every statement)
//                                                        -> primary ("write")
//   5. /* pgmux:replica */ or SET pgmux.route = replica: rule 6 considers only calls that
//      must run on the primary (FunctionPolicy::must_run_on_primary), rule 7 is skipped
//   6. a call the FunctionPolicy sends to the primary    -> primary ("function")
//   7. must_read_primary                                  -> primary ("read-your-writes")
//   8. an eligible replica (healthy, not banned, weight > 0, lag within bounds, replayed
//      min_replay_lsn unless hinted), balanced per config; with primary_reads = always the
//      primary competes too                              -> that host ("replica", "primary read")
//   9. none eligible: primary_reads = never              -> None ("no replica available")
//      otherwise                                         -> primary ("fallback: no replica")
// A read-only transaction (BEGIN READ ONLY ...; or in_transaction && transaction_read_only)
// is routed like an autocommit read: rules 4 to 9 apply to the statement that leases.
// A caller that holds back a lone BEGIN until the next query (so that `BEGIN` then `SET
// TRANSACTION READ ONLY` can still go to a replica) decides on an Analysis whose statements
// are BEGIN's followed by the next query's, with in_transaction = false.
Route decide(const parser::Analysis& analysis, const SessionView& session,
             const std::vector<ReplicaState>& replicas, const RouterConfig& config,
             const FunctionPolicy& policy, std::uint64_t& round_robin_counter,
             const PrimaryState& primary = {});

// Whether replica `r` may take reads, lag bounds and min_replay_lsn (0: none) considered.
bool replica_eligible(const ReplicaState& r, const RouterConfig& config,
                      std::uint64_t min_replay_lsn);

// Applies what a completed query did to the routing-relevant session state:
// BEGIN/START [READ ONLY|READ WRITE] and SET TRANSACTION set transaction_read_only (and
// in_transaction, which the caller then confirms from ReadyForQuery); COMMIT/ROLLBACK end
// it (AND CHAIN keeps it); SET [SESSION] default_transaction_read_only and SET SESSION
// CHARACTERISTICS set default_read_only; SET pgmux.route sets session_route; RESET of
// either, RESET ALL and DISCARD ALL clear them. SET LOCAL is ignored.
void observe(const parser::Analysis& analysis, SessionView& session);

// The value of SET pgmux.route: "primary" or "replica" (any case); nullopt for anything
// else ("auto", "default", ""), which means automatic routing.
std::optional<Target> route_from_setting(std::string_view value);

}  // namespace router
