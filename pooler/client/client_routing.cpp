// Read/write routing of a client's requests (issue 4): which host's pool a transaction
// leases from. Decided once per lease, when the client has no backend; the whole
// transaction then stays on that backend.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "pooler/client/client_session.h"
#include "pooler/net/timer.h"
#include "pooler/wire/sqlstate.h"
#include "router/router.h"

namespace pooler::client {
namespace {

// The value a settings statement applies: set_config('name', 'value', false) or
// SET name {TO|=} value.
std::string setting_value(std::string_view stmt) {
  if (stmt.starts_with("set_config(")) {
    // set_config('name', 'value', false): the second literal.
    std::size_t q = stmt.find('\'');
    q = q == std::string_view::npos ? q : stmt.find("', '", q + 1);
    if (q == std::string_view::npos) {
      return {};
    }
    std::string out;
    for (std::size_t i = q + 4; i < stmt.size(); ++i) {
      if (stmt[i] == '\'') {
        if (i + 1 < stmt.size() && stmt[i + 1] == '\'') {
          out += '\'';
          ++i;
          continue;
        }
        break;
      }
      out += stmt[i];
    }
    return out;
  }
  std::string lower(stmt);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::size_t at = lower.find('=');
  std::size_t skip = 1;
  if (const auto to = lower.find(" to "); to != std::string::npos && (at == std::string::npos || to < at)) {
    at = to;
    skip = 4;
  }
  if (at == std::string::npos) {
    return {};
  }
  std::string_view v = std::string_view(lower).substr(at + skip);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\'' || v.front() == '"')) {
    v.remove_prefix(1);
  }
  while (!v.empty() && (v.back() == ' ' || v.back() == '\'' || v.back() == '"' || v.back() == ';')) {
    v.remove_suffix(1);
  }
  return std::string(v);
}

// A lone BEGIN / START TRANSACTION (no mode given), as a simple Query.
bool is_lone_begin(std::string_view sql) {
  std::string t;
  for (const char c : sql) {
    if (c != ';') {
      t += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) {
    t.pop_back();
  }
  std::size_t i = 0;
  while (i < t.size() && std::isspace(static_cast<unsigned char>(t[i]))) {
    ++i;
  }
  t.erase(0, i);
  return t == "begin" || t == "begin transaction" || t == "begin work" || t == "start transaction";
}

// COMMIT / END / ROLLBACK / ABORT as a simple Query: the tag to answer with, or "".
std::string_view ends_transaction(std::string_view sql) {
  std::string t;
  for (const char c : sql) {
    if (c != ';' && !std::isspace(static_cast<unsigned char>(c))) {
      t += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  if (t == "commit" || t == "end" || t == "committransaction" || t == "commitwork") {
    return "COMMIT";
  }
  if (t == "rollback" || t == "abort" || t == "rollbacktransaction" || t == "rollbackwork") {
    return "ROLLBACK";
  }
  return {};
}

bool is_on(std::string_view v) { return v == "on" || v == "true" || v == "1" || v == "yes"; }

// Whether a lease that starts with `analysis` may change data, so that the client's next
// reads must see it (read-your-writes). Session commands (SET, SHOW, LISTEN, DEALLOCATE ...)
// write nothing; a BEGIN may, later in its transaction.
bool may_write_data(const parser::Analysis& analysis, std::string_view reason) {
  if (reason == "function") {
    return true;  // a volatile function on the primary may write
  }
  using K = parser::StatementKind;
  for (const auto& st : analysis.statements) {
    if (st.read_only) {
      continue;
    }
    switch (st.kind) {
      case K::Set:
      case K::Reset:
      case K::Show:
      case K::Listen:
      case K::Unlisten:
      case K::Notify:
      case K::Prepare:
      case K::Deallocate:
      case K::Discard:
      case K::Fetch:
      case K::ClosePortal:
        continue;
      default:
        return true;
    }
  }
  return analysis.parse_error || analysis.statements.empty();
}

}  // namespace

// The host that is primary now: the health checks' answer when there is one (roles follow
// the servers, so a promoted replica takes over), else the configured primary.
int ClientSession::primary_host() const {
  if (db_config_ == nullptr || db_config_->replicas.empty()) {
    return 0;
  }
  const auto snapshot = host_.health(db_config_->name);
  return snapshot && snapshot->primary_index >= 0 ? snapshot->primary_index : 0;
}

router::SessionView ClientSession::session_view() {
  router::SessionView view;
  for (const auto& [name, stmt] : settings_->items) {
    if (name == "default_transaction_read_only") {
      view.default_read_only = is_on(setting_value(stmt));
    } else if (name == "pgmux.route") {
      view.session_route = router::route_from_setting(setting_value(stmt));
    }
  }
  if (!extras_ || extras_->write_done_ns == 0) {
    return view;
  }
  std::uint64_t& commit_lsn = extras_->commit_lsn;
  const std::uint64_t write_done_ns = extras_->write_done_ns;
  const auto& rcfg = db_config_->routing;
  switch (rcfg.read_your_writes) {
    case config::RoutingConfig::ReadYourWrites::Off: break;
    case config::RoutingConfig::ReadYourWrites::Window:
      view.must_read_primary =
          net::now_ns() - write_done_ns <
          static_cast<std::uint64_t>(rcfg.read_your_writes_window.count()) * 1'000'000;
      break;
    case config::RoutingConfig::ReadYourWrites::Lsn:
      if (commit_lsn == 0) {
        // Until a health check samples the primary after the write, the write's LSN is not
        // known: the primary serves the reads. Then any replica that replayed it may.
        const auto snapshot = host_.health(db_config_->name);
        if (auto lsn = snapshot ? backend::lsn_covering(*snapshot, write_done_ns) : std::nullopt) {
          commit_lsn = *lsn;
        }
      }
      if (commit_lsn == 0) {
        view.must_read_primary = true;
      } else {
        view.min_replay_lsn = commit_lsn;
      }
      break;
  }
  return view;
}

// A lone BEGIN on a routed database is answered by pgmux and held back: the transaction's
// first real request then decides the host together with it, so that BEGIN followed by
// SET TRANSACTION READ ONLY (or by a read under default_transaction_read_only) can run on a
// replica. An empty transaction never needs a backend.
bool ClientSession::hold_back_begin(const wire::Frame& frame) {
  if (frame.type != 'Q' || db_config_->replicas.empty() || mode_ != config::PoolMode::Transaction ||
      pins_ != 0) {
    return false;
  }
  auto q = wire::decode_query(frame);
  if (!q) {
    return false;
  }
  wire::WriteBuffer out;
  if (!held_begin_ && is_lone_begin(q->sql)) {
    held_begin_ = true;
    client_tx_ = wire::TxStatus::InBlock;
    wire::encode(wire::CommandComplete{"BEGIN"}, out);
  } else if (held_begin_ && !ends_transaction(q->sql).empty()) {
    held_begin_ = false;
    client_tx_ = wire::TxStatus::Idle;
    wire::encode(wire::CommandComplete{ends_transaction(q->sql)}, out);
  } else {
    return false;
  }
  wire::encode(wire::ReadyForQuery{client_tx_}, out);
  write(out.data());
  return true;
}

void ClientSession::note_write_done() {
  lease_is_write_ = false;
  Extras& x = extras();
  x.write_done_ns = net::now_ns();
  x.commit_lsn = 0;
}

backend::Pool* ClientSession::route(const wire::Frame& frame) {
  lease_is_write_ = false;
  lease_on_replica_ = false;
  if (db_config_->replicas.empty()) {
    return pool_;  // no routing: the one pool, looked up at login
  }
  const int primary = primary_host();
  auto pool_of = [&](int host) { return host_.pool_for(*db_config_, *user_config_, host); };
  if (force_primary_) {
    force_primary_ = false;  // a request a replica refused: it may write
    lease_is_write_ = true;
    ++host_.counters().routed_primary;
    return pool_of(primary);
  }
  if (mode_ == config::PoolMode::Session || pins_ != 0) {
    lease_is_write_ = true;
    return pool_of(primary);
  }
  // The text that decides: a Query, a Parse, or the statement a Bind names.
  std::string_view sql;
  bool extended = false;
  if (frame.type == 'Q') {
    if (auto q = wire::decode_query(frame)) {
      sql = q->sql;
    }
  } else if (frame.type == 'P') {
    if (auto p = wire::decode_parse(frame)) {
      sql = p->sql;
      extended = true;
    }
  } else if (frame.type == 'B' && extras_) {
    if (auto b = wire::decode_bind(frame); b && !b->statement.empty()) {
      if (auto it = extras_->statements.find(b->statement); it != extras_->statements.end()) {
        if (const PreparedStatement* st = host_.prepared().find(it->second); st && !st->sql_form) {
          sql = st->sql;
          extended = true;
        }
      }
    }
  }
  if (sql.empty()) {
    lease_is_write_ = true;
    ++host_.counters().routed_primary;
    return pool_of(primary);  // nothing to judge by: the primary is always right
  }
  std::string with_begin;
  if (held_begin_) {
    // The held-back BEGIN and this request decide together (see hold_back_begin).
    with_begin = "BEGIN; " + std::string(sql);
    sql = with_begin;
    extended = false;
  }
  const parser::Analysis& analysis = host_.analysis_cache().get(sql, extended);
  const auto snapshot = host_.health(db_config_->name);
  const auto& rcfg = db_config_->routing;

  // Every host but the primary is a candidate replica, in configured order.
  thread_local std::vector<router::ReplicaState> replicas;
  thread_local std::vector<int> host_of;
  replicas.clear();
  host_of.clear();
  const int hosts = 1 + static_cast<int>(db_config_->replicas.size());
  const std::uint64_t now_ms = net::now_ms(host_.loop());
  for (int h = 0; h < hosts; ++h) {
    if (h == primary) {
      continue;
    }
    router::ReplicaState r;
    if (snapshot && backend::valid_index(*snapshot, h)) {
      const backend::HostState& hs = snapshot->hosts[static_cast<std::size_t>(h)];
      r.healthy = backend::usable_replica(*snapshot, h);
      r.banned = hs.banned_until_ms > now_ms;
      const auto lag = backend::lag_bytes(*snapshot, h);
      r.lag_bytes = lag ? static_cast<std::int64_t>(*lag) : -1;
      r.lag_ms = hs.replay_lag_ms;
      r.replay_lsn = hs.lsn;
    } else {
      r.healthy = false;  // not checked yet
    }
    const std::size_t weight_at = static_cast<std::size_t>(h > 0 ? h - 1 : 0);
    r.weight = weight_at < rcfg.replica_weights.size() ? rcfg.replica_weights[weight_at] : 1;
    r.active = pool_of(h)->stats().active;
    replicas.push_back(r);
    host_of.push_back(h);
  }
  router::RouterConfig rc;
  rc.balance = rcfg.load_balance == config::RoutingConfig::Balance::RoundRobin
                   ? router::RouterConfig::Balance::RoundRobin
                   : router::RouterConfig::Balance::LeastOutstanding;
  rc.primary_reads = rcfg.primary_reads == config::RoutingConfig::PrimaryReads::Never
                         ? router::RouterConfig::PrimaryReads::Never
                     : rcfg.primary_reads == config::RoutingConfig::PrimaryReads::Always
                         ? router::RouterConfig::PrimaryReads::Always
                         : router::RouterConfig::PrimaryReads::Fallback;
  rc.max_replica_lag_bytes = rcfg.max_replica_lag_bytes;
  rc.max_replica_lag_ms = rcfg.max_replica_lag_ms;
  router::PrimaryState primary_state;
  primary_state.active = pool_of(primary)->stats().active;
  const router::Route r =
      router::decide(analysis, session_view(), replicas, rc, host_.function_policy(db_config_->name),
                     host_.round_robin_counter(), primary_state);
  SPDLOG_DEBUG("client {}: route {} ({})", id_, router::to_string(r.target), r.reason);
  switch (r.target) {
    case router::Target::Replica:
      ++host_.counters().routed_replica;
      lease_on_replica_ = true;
      return pool_of(host_of[static_cast<std::size_t>(r.replica)]);
    case router::Target::Primary:
      ++host_.counters().routed_primary;
      // Reads that land on the primary (fallback, balance, read-your-writes, hints) and
      // session commands are no writes.
      lease_is_write_ = may_write_data(analysis, r.reason);
      return pool_of(primary);
    case router::Target::None: break;
  }
  return nullptr;  // primary_reads = "never" and no replica can take it
}

}  // namespace pooler::client
