// ClientSession: the client's requests as pgmux must see them: named statements renamed
// per backend, SQL PREPARE/EXECUTE, DEALLOCATE/DISCARD scoped to the client, session
// effects noted, and stale cached plans retried.

#include "pooler/client/client_session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "pooler/client/client_session_util.h"
#include "pooler/net/timer.h"
#include "pooler/wire/md5_auth.h"
#include "pooler/wire/sqlstate.h"

namespace pooler::client {

using namespace session_util;

std::size_t ClientSession::answer_prepare_without_backend(std::span<const std::byte> in) {
  if (!renames_statements() || pins_ != 0 || skip_until_sync_ || in.empty() ||
      static_cast<char>(in[0]) != 'P') {
    return 0;
  }
  const std::uint32_t max_size = host_.config().general.max_message_size;
  // First pass: only Parse of known-valid named statements and Close of statements, then Sync.
  std::size_t used = 0;
  std::vector<std::string_view> names;
  bool synced = false;
  while (!synced) {
    auto frame = wire::peek_frame(in.subspan(used), wire::Phase::Regular, max_size);
    if (!frame || !frame->has_value()) {
      return 0;
    }
    const wire::Frame& f = **frame;
    if (f.type == 'P') {
      auto p = wire::decode_parse(f);
      if (!p || p->statement.empty() || (extras_ && extras_->statements.contains(p->statement)) ||
          std::find(names.begin(), names.end(), p->statement) != names.end()) {
        return 0;
      }
      const PreparedStatement* st = host_.prepared().lookup(p->sql, p->param_types);
      if (st == nullptr || !st->validated) {
        return 0;  // never seen by the server: let it check the SQL
      }
      names.push_back(p->statement);
    } else if (f.type == 'C') {
      auto c = wire::decode_close(f);
      if (!c || c->target != 'S' || c->name.empty()) {
        return 0;
      }
    } else if (f.type == 'S') {
      synced = true;
    } else {
      return 0;
    }
    used += f.size_on_wire;
  }
  // Second pass: apply them and answer, as PostgreSQL would have.
  wire::WriteBuffer out;
  for (std::size_t at = 0; at < used;) {
    const wire::Frame f = **wire::peek_frame(in.subspan(at), wire::Phase::Regular, max_size);
    if (f.type == 'P') {
      const auto p = *wire::decode_parse(f);
      PreparedStatement& st = host_.prepared().acquire(p.sql, p.param_types);
      extras().statements.emplace(std::string(p.statement), st.id);
      ++host_.counters().prepared_hits;
      wire::encode_parse_complete(out);
    } else if (f.type == 'C') {
      const auto c = *wire::decode_close(f);
      if (extras_) {
        if (auto it = extras_->statements.find(c.name); it != extras_->statements.end()) {
          host_.prepared().release(it->second);
          extras_->statements.erase(it);
        }
      }
      wire::encode_close_complete(out);
    }
    at += f.size_on_wire;
  }
  wire::encode(wire::ReadyForQuery{client_tx_}, out);
  write(out.data());
  return used;
}

ClientSession::Action ClientSession::handle_query(const wire::Frame& frame, wire::WriteBuffer& repl) {
  auto q = wire::decode_query(frame);
  if (!q) {
    close_with_error(ss::kProtocolViolation, q.error().message);
    return Action::Drop;
  }
  ++backend_->queries;
  ++host_.counters().queries;
  ++pool_->traffic.queries;
  if (worth_scanning(q->sql)) {
    QueryScan scan = scan_query(q->sql);
    const bool pooled = renames_statements();
    const bool deallocate =
        scan.effect == SessionEffect::DeallocateAll ||
        (scan.effect == SessionEffect::Deallocate && extras().statements.contains(scan.name));
    // DEALLOCATE works inside a transaction too; DISCARD ALL does not (PostgreSQL's error
    // then comes from the backend).
    if (pooled && pins_ == 0 &&
        ((deallocate && client_tx_ != wire::TxStatus::Failed) ||
         (scan.effect == SessionEffect::DiscardAll && client_tx_ == wire::TxStatus::Idle))) {
      // These would reach other clients' statements and settings on the shared backend:
      // pgmux answers them for this client alone.
      if (scan.effect == SessionEffect::Deallocate) {
        auto& statements = extras().statements;
        auto it = statements.find(scan.name);
        host_.prepared().release(it->second);
        statements.erase(it);
        answer_locally("DEALLOCATE");
        return Action::Drop;
      }
      for (const auto& [name, sid] : extras().statements) {
        host_.prepared().release(sid);
      }
      extras().statements.clear();
      if (scan.effect == SessionEffect::DiscardAll) {
        // The shared backend keeps its statements and settings; this client's are reset
        // and the next lease brings a backend to them.
        reset_settings();
        answer_locally("DISCARD ALL");
      } else {
        answer_locally("DEALLOCATE ALL");
      }
      return Action::Drop;
    }
    if (pooled && pins_ == 0 && (scan.effect == SessionEffect::SqlPrepare ||
                                 scan.effect == SessionEffect::SqlExecute)) {
      return handle_sql_prepared(scan, repl);
    }
    if (scan.pins & ~pins_) {
      ++host_.counters().pins;
      SPDLOG_DEBUG("client {}: pinned to backend {} ({})", id_, backend_->id(),
                   to_string_pins(scan.pins));
    }
    pins_ |= scan.pins;
    pending_unpins_ |= scan.unpins;
    if (scan.untracked_settings) {
      // Settings may change in a way the text does not say (set_config(), SET inside a
      // multi-statement query): read them back from the server once the transaction ends.
      settings_dirty_ = true;
    }
    const bool reset = scan.effect == SessionEffect::Reset || scan.effect == SessionEffect::ResetAll;
    const std::string restore = reset && pooled ? startup_restore_sql(scan) : std::string();
    if (scan.effect != SessionEffect::None) {
      extras().pending_effect = std::move(scan);
    }
    if (!restore.empty()) {
      // RESET goes back to the backend's own defaults, which lack this client's startup
      // parameters: put them back at once, in the same transaction, with ParameterStatus
      // reaching the client as PostgreSQL would have reported it.
      wire::encode(wire::Query{q->sql}, repl);
      backend_->expected().expect_query_then_more();
      wire::encode(wire::Query{restore}, repl);
      backend::HiddenOptions options;
      options.forward_async = true;
      options.tolerate_error = true;
      options.forward_ready = true;
      backend_->expected().expect_hidden(backend::Reply::Query, 0, options);
      return Action::Replace;
    }
  }
  backend_->expected().expect(backend::Reply::Query);
  count_query(q->sql);
  return Action::Forward;
}

// "SELECT set_config(...), ..." for the startup parameters a RESET / RESET ALL undid.
std::string ClientSession::startup_restore_sql(const QueryScan& scan) const {
  std::string sql;
  for (const auto& [name, stmt] : startup_settings()->items) {
    if (scan.effect == SessionEffect::ResetAll || name == scan.name) {
      sql += sql.empty() ? "SELECT " : ", ";
      sql += stmt;
    }
  }
  return sql;
}

// SQL-level PREPARE and EXECUTE under transaction pooling: the same renaming as for
// protocol-level statements, done on the statement's text.
ClientSession::Action ClientSession::handle_sql_prepared(const QueryScan& scan,
                                                         wire::WriteBuffer& repl) {
  char name_buf[32];
  if (scan.effect == SessionEffect::SqlPrepare) {
    auto& statements = extras().statements;
    if (statements.contains(scan.name)) {
      std::string bytes = error_bytes(ss::kDuplicatePreparedStatement,
                                      "prepared statement \"" + scan.name + "\" already exists");
      wire::WriteBuffer z;
      wire::encode(wire::ReadyForQuery{client_tx_}, z);
      bytes.append(reinterpret_cast<const char*>(z.data().data()), z.size());
      backend_->expected().synthesize(std::move(bytes));
      return Action::Drop;
    }
    PreparedStatement& st = host_.prepared().acquire_sql(scan.statement);
    const std::uint64_t sid = st.id;
    statements.emplace(scan.name, sid);
    if (backend_->has_statement(sid)) {
      ++host_.counters().prepared_hits;
      answer_locally("PREPARE");
      return Action::Drop;
    }
    ++host_.counters().prepared_misses;
    evict_for(sid, repl);
    const std::string sql = "PREPARE " + std::string(server_statement_name(sid, name_buf)) + " " + scan.statement;
    wire::encode(wire::Query{sql}, repl);
    backend_->expected().expect(backend::Reply::Query, sid);
    return Action::Replace;
  }
  auto& statements = extras().statements;
  auto it = statements.find(scan.name);
  if (it == statements.end()) {
    backend_->expected().expect(backend::Reply::Query);
    return Action::Forward;  // PostgreSQL's own "does not exist" error
  }
  ensure_prepared(it->second, repl);
  const std::string sql = "EXECUTE " + std::string(server_statement_name(it->second, name_buf)) + " " + scan.statement;
  wire::encode(wire::Query{sql}, repl);
  backend_->expected().expect(backend::Reply::Query);
  return Action::Replace;
}

void ClientSession::evict_for(std::uint64_t id, wire::WriteBuffer& repl) {
  const std::uint64_t evicted = backend_->add_statement(id, pool_->settings().max_prepared_statements);
  if (evicted != 0) {
    char name_buf[32];
    wire::encode(wire::Close{'S', server_statement_name(evicted, name_buf)}, repl);
    backend_->expected().expect_hidden(backend::Reply::CloseComplete);
    if (!backend_->unsynced) {
      wire::encode_sync(repl);
      backend_->expected().expect_hidden(backend::Reply::Sync);
    }
  }
}

void ClientSession::answer_locally(std::string_view tag) {
  std::string bytes = message_bytes('C', tag);
  wire::WriteBuffer z;
  wire::encode(wire::ReadyForQuery{client_tx_}, z);
  bytes.append(reinterpret_cast<const char*>(z.data().data()), z.size());
  backend_->expected().synthesize(std::move(bytes));
}

ClientSession::Action ClientSession::handle_parse(const wire::Frame& frame, wire::WriteBuffer& repl) {
  auto p = wire::decode_parse(frame);
  if (!p) {
    close_with_error(ss::kProtocolViolation, p.error().message);
    return Action::Drop;
  }
  backend_->unsynced = true;
  if (worth_scanning(p->sql)) {
    QueryScan scan = scan_query(p->sql);
    if (scan.pins & ~pins_) {
      ++host_.counters().pins;
    }
    pins_ |= scan.pins;
    if (scan.untracked_settings) {
      settings_dirty_ = true;
    }
    // Drivers such as JDBC send SET through the extended protocol.
    if (scan.effect == SessionEffect::Set || scan.effect == SessionEffect::Reset ||
        scan.effect == SessionEffect::ResetAll) {
      extras().pending_effect = std::move(scan);
    }
  }
  if (p->statement.empty() || !renames_statements()) {
    backend_->expected().expect(backend::Reply::ParseComplete);
    if (p->statement.empty()) {
      count_unnamed_parse(p->sql, p->param_types);
    }
    return Action::Forward;
  }
  auto& statements = extras().statements;
  if (statements.contains(p->statement)) {
    // Only the unnamed statement may be replaced: PostgreSQL refuses, then skips to Sync.
    backend_->expected().synthesize(error_bytes(ss::kDuplicatePreparedStatement,
                                                "prepared statement \"" + std::string(p->statement) +
                                                    "\" already exists"));
    discard_until_sync_ = true;
    return Action::Drop;
  }
  PreparedStatement& st = host_.prepared().acquire(p->sql, p->param_types);
  const std::uint64_t sid = st.id;
  statements.emplace(std::string(p->statement), sid);
  extras().pending_parses.emplace_back(std::string(p->statement), sid);
  if (backend_->has_statement(sid)) {
    ++host_.counters().prepared_hits;
    backend_->expected().synthesize(message_bytes('1', {}), /*client_parse=*/true);
    return Action::Drop;
  }
  ++host_.counters().prepared_misses;
  evict_for(sid, repl);
  char name_buf[32];
  wire::encode(wire::Parse{server_statement_name(sid, name_buf), p->sql, p->param_types}, repl);
  backend_->expected().expect_client_parse(sid);
  return Action::Replace;
}

void ClientSession::ensure_prepared(std::uint64_t id, wire::WriteBuffer& repl) {
  if (backend_->has_statement(id)) {
    ++host_.counters().prepared_hits;
    return;
  }
  const PreparedStatement* st = host_.prepared().find(id);
  if (st == nullptr) {
    return;
  }
  ++host_.counters().prepared_misses;
  char name_buf[32];
  evict_for(id, repl);
  if (st->sql_form) {
    const std::string sql = "PREPARE " + std::string(server_statement_name(id, name_buf)) + " " + st->sql;
    wire::encode(wire::Query{sql}, repl);
    backend_->expected().expect_hidden(backend::Reply::Query, id);
    return;
  }
  const auto types = std::as_bytes(std::span(st->param_types.data(), st->param_types.size()));
  wire::encode(wire::Parse{server_statement_name(id, name_buf), st->sql, types}, repl);
  backend_->expected().expect_hidden(backend::Reply::ParseComplete, id);
  if (!backend_->unsynced) {
    // Before a simple Query (SQL EXECUTE of a protocol-level statement): close the
    // extended sequence so an error cannot swallow the Query.
    wire::encode_sync(repl);
    backend_->expected().expect_hidden(backend::Reply::Sync);
  }
}

ClientSession::Action ClientSession::handle_bind(const wire::Frame& frame, wire::WriteBuffer& repl) {
  backend_->unsynced = true;
  auto b = wire::decode_bind(frame);
  if (!b) {
    close_with_error(ss::kProtocolViolation, b.error().message);
    return Action::Drop;
  }
  const bool named = !b->statement.empty() && renames_statements() && extras_;
  auto it = named ? extras_->statements.find(b->statement) : decltype(extras_->statements.end()){};
  if (!named || it == extras_->statements.end()) {
    // Unnamed, session mode, or unknown: PostgreSQL answers (unknown names get its error).
    backend_->expected().expect(backend::Reply::BindComplete);
    if (b->statement.empty()) {
      count_bind(*b, 0);
    }
    return Action::Forward;
  }
  ensure_prepared(it->second, repl);
  char name_buf[32];
  wire::encode(wire::Bind{b->portal, server_statement_name(it->second, name_buf), b->rest}, repl);
  backend_->expected().expect(backend::Reply::BindComplete, it->second);
  count_bind(*b, it->second);
  return Action::Replace;
}

ClientSession::Action ClientSession::handle_describe(const wire::Frame& frame,
                                                     wire::WriteBuffer& repl) {
  backend_->unsynced = true;
  auto d = wire::decode_describe(frame);
  if (!d) {
    close_with_error(ss::kProtocolViolation, d.error().message);
    return Action::Drop;
  }
  const bool named = d->target == 'S' && !d->name.empty() && renames_statements() && extras_;
  auto it = named ? extras_->statements.find(d->name) : decltype(extras_->statements.end()){};
  if (!named || it == extras_->statements.end()) {
    backend_->expected().expect(backend::Reply::Describe);
    return Action::Forward;
  }
  ensure_prepared(it->second, repl);
  char name_buf[32];
  wire::encode(wire::Describe{'S', server_statement_name(it->second, name_buf)}, repl);
  backend_->expected().expect(backend::Reply::Describe);
  return Action::Replace;
}

ClientSession::Action ClientSession::handle_close(const wire::Frame& frame, wire::WriteBuffer&) {
  backend_->unsynced = true;
  auto c = wire::decode_close(frame);
  if (!c) {
    close_with_error(ss::kProtocolViolation, c.error().message);
    return Action::Drop;
  }
  if (c->target != 'S' || c->name.empty() || !renames_statements()) {
    backend_->expected().expect(backend::Reply::CloseComplete);
    return Action::Forward;
  }
  // The backend keeps its copy for other clients; only this client's name goes away.
  // Closing a name that does not exist is not an error in PostgreSQL either.
  if (extras_) {
    if (auto it = extras_->statements.find(c->name); it != extras_->statements.end()) {
      host_.prepared().release(it->second);
      extras_->statements.erase(it);
    }
  }
  backend_->expected().synthesize(message_bytes('3', {}));
  return Action::Drop;
}

// Keeps the extended-protocol group in flight (up to its Sync) so that it can be sent again
// if a named statement's cached plan turns out stale. Only clients with named statements
// pay for it, and only small groups are kept.
void ClientSession::record_for_retry(std::span<const std::byte> frame, char type) {
  constexpr std::size_t kMaxGroup = 64 * 1024;
  Extras& x = *extras_;
  if (x.group_closed) {
    x.group.clear();
    x.group_closed = false;
    x.group_too_big = false;
  }
  if (!x.group_too_big && x.group.size() + frame.size() <= kMaxGroup) {
    x.group.insert(x.group.end(), frame.begin(), frame.end());
  } else {
    x.group_too_big = true;
    x.group.clear();
  }
  if (type == 'S' || type == 'Q') {
    x.group_closed = true;
  }
}

bool ClientSession::on_plan_changed() {
  if (!extras_ || extras_->retried || !extras_->group_closed || extras_->group_too_big ||
      extras_->group.empty() || backend_ == nullptr || static_cast<char>(extras_->group[0]) == 'Q') {
    return false;
  }
  extras_->retried = true;
  SPDLOG_DEBUG("client {}: cached plan changed; preparing again and retrying", id_);
  const std::vector<std::byte> group = extras_->group;  // forwarding records it anew
  forward_frames(group);
  return true;
}

void ClientSession::on_statement_prepared(std::uint64_t id) { host_.prepared().mark_validated(id); }

void ClientSession::on_client_parse_done(bool ok) {
  if (!extras_ || extras_->pending_parses.empty()) {
    return;
  }
  auto [name, sid] = std::move(extras_->pending_parses.front());
  extras_->pending_parses.pop_front();
  if (ok) {
    return;
  }
  auto& statements = extras_->statements;
  if (auto it = statements.find(name); it != statements.end() && it->second == sid) {
    host_.prepared().release(sid);
    statements.erase(it);
  }
}


}  // namespace pooler::client
