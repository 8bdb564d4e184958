#include "router/router.h"

#include <string>

#include "router/lsn.h"

namespace router {
namespace {

using parser::StatementKind;

constexpr Route primary_route(std::string_view reason) { return {Target::Primary, -1, reason}; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c + 32);
    }
  }
  return out;
}

// PostgreSQL's boolean spellings (parse_bool), as SET default_transaction_read_only takes.
std::optional<bool> parse_bool(std::string_view text) {
  const std::string s = lower(text);
  auto prefix_of = [&](std::string_view word, std::size_t min) {
    return s.size() >= min && s.size() <= word.size() && word.substr(0, s.size()) == s;
  };
  if (prefix_of("true", 1) || prefix_of("yes", 1) || s == "on" || s == "1") {
    return true;
  }
  if (prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || s == "0") {
    return false;
  }
  return std::nullopt;
}

// Whether the query runs in, or leaves open, a transaction that may write: such a
// transaction must be on the primary from its first statement to its last.
bool read_write_transaction(const parser::Analysis& a, const SessionView& s) {
  bool in_tx = s.in_transaction;
  bool ro = s.transaction_read_only;
  if (in_tx && !ro) {
    return true;
  }
  for (const auto& st : a.statements) {
    switch (st.kind) {
      case StatementKind::Begin:
        if (st.begin_read_only == false) {
          return true;  // READ WRITE said aloud; a standby would refuse it anyway
        }
        in_tx = true;
        ro = st.begin_read_only.value_or(s.default_read_only);
        break;
      case StatementKind::Set:
        if (st.set_name == "transaction" && st.begin_read_only.has_value()) {
          if (!*st.begin_read_only) {
            return true;
          }
          ro = ro || in_tx;
        }
        break;
      case StatementKind::Commit:
      case StatementKind::Rollback:
        if (!st.chain) {
          in_tx = false;
          ro = false;
        }
        break;
      default: break;
    }
  }
  return in_tx && !ro;
}

// Weighted least-outstanding comparison: a has fewer leases per unit of weight than b.
bool less_loaded(int a_active, int a_weight, int b_active, int b_weight) {
  return static_cast<std::int64_t>(a_active + 1) * b_weight <
         static_cast<std::int64_t>(b_active + 1) * a_weight;
}

struct Candidate {
  int replica;  // -1: the primary
  int active;
  int weight;
};

Route pick(const std::vector<Candidate>& candidates, const RouterConfig& config,
           std::uint64_t& counter) {
  const std::size_t n = candidates.size();
  std::size_t chosen = 0;
  if (config.balance == RouterConfig::Balance::RoundRobin) {
    std::uint64_t total = 0;
    for (const auto& c : candidates) {
      total += static_cast<std::uint64_t>(c.weight);
    }
    std::uint64_t k = counter++ % total;
    while (k >= static_cast<std::uint64_t>(candidates[chosen].weight)) {
      k -= static_cast<std::uint64_t>(candidates[chosen].weight);
      ++chosen;
    }
  } else {
    // Scan from a rotating start so that equally loaded hosts take turns.
    const std::size_t start = static_cast<std::size_t>(counter++ % n);
    chosen = start;
    for (std::size_t step = 1; step < n; ++step) {
      const Candidate& c = candidates[(start + step) % n];
      const Candidate& best = candidates[chosen];
      if (less_loaded(c.active, c.weight, best.active, best.weight)) {
        chosen = (start + step) % n;
      }
    }
  }
  const Candidate& c = candidates[chosen];
  if (c.replica < 0) {
    return primary_route("primary read");
  }
  return {Target::Replica, c.replica, "replica"};
}

Route balance(const std::vector<ReplicaState>& replicas, const RouterConfig& config,
              std::uint64_t min_replay_lsn, bool primary_may_read, const PrimaryState& primary,
              std::uint64_t& counter) {
  std::vector<Candidate> candidates;
  candidates.reserve(replicas.size() + 1);
  bool behind_only = false;  // some replica would do, but has not replayed the client's write
  for (std::size_t i = 0; i < replicas.size(); ++i) {
    const ReplicaState& r = replicas[i];
    if (replica_eligible(r, config, min_replay_lsn)) {
      candidates.push_back({static_cast<int>(i), r.active, r.weight});
    } else if (min_replay_lsn != 0 && replica_eligible(r, config, 0)) {
      behind_only = true;
    }
  }
  if (primary_may_read && config.primary_reads == RouterConfig::PrimaryReads::Always &&
      primary.weight > 0) {
    candidates.push_back({-1, primary.active, primary.weight});
  }
  if (!candidates.empty()) {
    return pick(candidates, config, counter);
  }
  if (behind_only) {
    return primary_route("read-your-writes");
  }
  if (config.primary_reads == RouterConfig::PrimaryReads::Never) {
    return {Target::None, -1, "no replica available"};
  }
  return primary_route("fallback: no replica available");
}

}  // namespace

std::string_view to_string(Target target) {
  switch (target) {
    case Target::Primary: return "primary";
    case Target::Replica: return "replica";
    case Target::None: return "none";
  }
  return "unknown";
}

bool replica_eligible(const ReplicaState& r, const RouterConfig& config,
                      std::uint64_t min_replay_lsn) {
  if (!r.healthy || r.banned || r.weight <= 0) {
    return false;
  }
  if (config.max_replica_lag_bytes > 0 &&
      (r.lag_bytes < 0 || r.lag_bytes > config.max_replica_lag_bytes)) {
    return false;
  }
  // The replay timestamp ages while the primary is idle: a replica that has replayed
  // everything (lag_bytes == 0) is not late, however old its last replayed commit.
  if (config.max_replica_lag_ms > 0 && r.lag_bytes != 0 &&
      (r.lag_ms < 0 || r.lag_ms > config.max_replica_lag_ms)) {
    return false;
  }
  return min_replay_lsn == 0 || replica_caught_up(r.replay_lsn, min_replay_lsn);
}

Route decide(const parser::Analysis& analysis, const SessionView& session,
             const std::vector<ReplicaState>& replicas, const RouterConfig& config,
             const FunctionPolicy& policy, std::uint64_t& round_robin_counter,
             const PrimaryState& primary) {
  if (analysis.parse_error || analysis.statements.empty()) {
    return primary_route("parse error");
  }
  bool replica_hint = false;
  if (analysis.hint) {
    if (*analysis.hint == parser::Hint::Primary) {
      return primary_route("hint");
    }
    replica_hint = true;
  } else if (session.session_route) {
    if (*session.session_route != Target::Replica) {
      return primary_route("session route");
    }
    replica_hint = true;
  }
  if (read_write_transaction(analysis, session)) {
    return primary_route("read-write transaction");
  }
  for (const auto& st : analysis.statements) {
    if (!st.read_only) {
      return primary_route("write");
    }
  }
  for (const auto& st : analysis.statements) {
    if (!policy.first_needing_primary(st.functions, replica_hint).empty()) {
      return primary_route("function");
    }
  }
  if (session.must_read_primary && !replica_hint) {
    return primary_route("read-your-writes");
  }
  return balance(replicas, config, replica_hint ? 0 : session.min_replay_lsn, !replica_hint,
                 primary, round_robin_counter);
}

void observe(const parser::Analysis& analysis, SessionView& session) {
  if (analysis.parse_error) {
    return;
  }
  for (const auto& st : analysis.statements) {
    switch (st.kind) {
      case StatementKind::Begin:
        session.in_transaction = true;
        session.transaction_read_only = st.begin_read_only.value_or(session.default_read_only);
        break;
      case StatementKind::Commit:
      case StatementKind::Rollback:
        if (!st.chain) {
          session.in_transaction = false;
          session.transaction_read_only = false;
        }
        break;
      case StatementKind::Set:
        if (st.set_name == "transaction") {
          if (st.begin_read_only && session.in_transaction) {
            session.transaction_read_only = *st.begin_read_only;
          }
        } else if (st.set_local) {
          break;
        } else if (st.set_name == "default_transaction_read_only") {
          if (const auto on = parse_bool(st.set_value)) {
            session.default_read_only = *on;
          }
        } else if (st.set_name == "pgmux.route") {
          session.session_route = route_from_setting(st.set_value);
        }
        break;
      case StatementKind::Reset:
        if (st.set_name == "all" || st.set_name == "default_transaction_read_only") {
          session.default_read_only = false;
        }
        if (st.set_name == "all" || st.set_name == "pgmux.route") {
          session.session_route.reset();
        }
        break;
      case StatementKind::Discard:
        if (st.object_name == "all") {
          session.default_read_only = false;
          session.session_route.reset();
        }
        break;
      default: break;
    }
  }
}

std::optional<Target> route_from_setting(std::string_view value) {
  const std::string v = lower(value);
  if (v == "primary") {
    return Target::Primary;
  }
  if (v == "replica") {
    return Target::Replica;
  }
  return std::nullopt;
}

}  // namespace router
