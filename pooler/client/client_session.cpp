#include "pooler/client/client_session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "pooler/base/check.h"
#include "pooler/client/client_session_util.h"
#include "pooler/net/timer.h"
#include "pooler/wire/md5_auth.h"
#include "pooler/wire/sqlstate.h"

namespace pooler::client {

using namespace session_util;

// An idle client costs this object and its uv handle (net::TcpStream::Block) in malloc
// chunks, plus kernel socket memory; 248 bytes is the most a 256-byte chunk holds.
static_assert(sizeof(ClientSession) <= 248, "ClientSession outgrew its 256-byte malloc chunk");

ClientSession::ClientSession(SessionHost& host, std::uint64_t id, std::uint32_t slot)
    : host_(host), id_(id), slot_(slot), stream_(host.loop(), *this) {}

std::string_view ClientSession::user() const {
  if (user_config_ != nullptr) {
    return user_config_->name;
  }
  return login_ ? std::string_view(login_->user) : std::string_view();
}

std::string_view ClientSession::database() const {
  if (db_config_ != nullptr) {
    return db_config_->name;
  }
  return login_ ? std::string_view(login_->database) : std::string_view();
}

std::int32_t ClientSession::cancel_pid() const {
  return state_ == ClientState::AwaitingStartup || state_ == ClientState::Authenticating
             ? 0
             : host_.cancel_pid_for(*this);
}

ClientSession::Extras& ClientSession::extras() {
  if (!extras_) {
    extras_ = std::make_unique<Extras>();
  }
  return *extras_;
}

ClientSession::~ClientSession() {
  if (lease_pool_ != nullptr) {
    lease_pool_->cancel_wait(*this);
  }
  if (pool_ != nullptr) {
    pool_->cancel_wait(*this);
  }
  if (extras_) {
    for (const auto& [name, sid] : extras_->statements) {
      host_.prepared().release(sid);
    }
  }
  if (user_counted_) {
    host_.release_user(user_config_->name);
  }
  stream_.close();
}

Result<void> ClientSession::accept(uv_stream_s* server) {
  if (auto ok = stream_.accept_from(server); !ok) {
    return ok;
  }
  connected_ms_ = net::now_ms(host_.loop());
  last_activity_ms_ = connected_ms_;
  SPDLOG_DEBUG("client {} {}: connected", id_, peer());
  return {};
}

void ClientSession::transition(ClientState to) {
  POOLER_CHECK(is_allowed(state_, to), "client state transition");
  SPDLOG_TRACE("client {}: {} -> {}", id_, to_string(state_), to_string(to));
  state_ = to;
}

// ---- Input ----

void ClientSession::on_read(std::span<const std::byte> bytes) {
  host_.counters().bytes_in += bytes.size();
  if (pool_ != nullptr) {
    pool_->traffic.bytes_in += bytes.size();
  }
  last_activity_ms_ = net::now_ms(host_.loop());
  if (state_ == ClientState::Closing) {
    return;
  }
  if (inbuf_.empty()) {
    const std::size_t used = process(bytes);
    if (used < bytes.size() && state_ != ClientState::Closing) {
      inbuf_.append(bytes.subspan(used));
    }
  } else {
    inbuf_.append(bytes);
    process_buffered();
  }
  // Frames waiting for a backend or for the server parameters stay buffered; past a bound
  // the client is not read until then, so it cannot pile up input here. Below the bound
  // reading goes on: stopping and restarting costs two epoll_ctl calls per wait.
  if (inbuf_.size() > kMaxBufferedWhileWaiting && (state_ == ClientState::WaitingForBackend ||
                                                   state_ == ClientState::WaitingForParams ||
                                                   state_ == ClientState::Throttled)) {
    stream_.pause_reading();
  }
}

void ClientSession::process_buffered() {
  if (inbuf_.empty() || state_ == ClientState::Closing) {
    return;
  }
  // `process` may re-enter (a lease granted synchronously); work on a moved-out copy.
  CompactBytes buf = std::move(inbuf_);
  const std::size_t used = process(buf.view());
  if (state_ == ClientState::Closing) {
    return;
  }
  if (used < buf.size()) {
    buf.erase_front(used);
    buf.append(inbuf_.view());  // what arrived while processing, if anything
    inbuf_ = std::move(buf);
  }
}

std::size_t ClientSession::process(std::span<const std::byte> in) {
  const std::uint32_t max_size = host_.config().general.max_message_size;
  std::size_t used = 0;
  while (used < in.size() && state_ != ClientState::Closing) {
    if (state_ == ClientState::Linked) {
      const std::size_t n = forward_frames(in.subspan(used));
      used += n;
      if (n == 0 || state_ == ClientState::Linked) {
        break;  // an incomplete frame, or everything forwarded
      }
      continue;
    }
    if (state_ == ClientState::WaitingForBackend || state_ == ClientState::WaitingForParams ||
        state_ == ClientState::Throttled) {
      break;
    }
    if (state_ == ClientState::Idle && !is_admin()) {
      if (const std::size_t n = answer_prepare_without_backend(in.subspan(used)); n > 0) {
        used += n;
        continue;
      }
    }
    if (state_ == ClientState::AwaitingStartup && used == 0 && stream_.tls() == nullptr &&
        in[0] == std::byte{0x16}) {  // a TLS handshake record, where a length word belongs
      start_direct_tls(in);
      return in.size();
    }
    const auto phase =
        state_ == ClientState::AwaitingStartup ? wire::Phase::Startup : wire::Phase::Regular;
    auto frame = wire::peek_frame(in.subspan(used), phase, max_size);
    if (!frame) {
      // PostgreSQL closes on an impossible length without reading further.
      if (phase == wire::Phase::Startup) {
        spdlog::info("client {} {}: {}", id_, peer(), frame.error().message);
        begin_close(frame.error().message);
      } else {
        close_with_error(ss::kProtocolViolation, frame.error().message);
      }
      return used;
    }
    if (!frame->has_value()) {
      break;
    }
    const wire::Frame& f = **frame;
    Result<void> ok;
    bool consumed = true;
    switch (state_) {
      case ClientState::AwaitingStartup:
        ok = handle_startup(f, in.size() - used - f.size_on_wire);
        break;
      case ClientState::Authenticating: ok = handle_auth(f); break;
      case ClientState::Idle: handle_idle_frame(f, consumed); break;
      case ClientState::WaitingForParams:
      case ClientState::WaitingForBackend:
      case ClientState::Throttled:
      case ClientState::Linked:
      case ClientState::Closing: consumed = false; break;
    }
    if (!ok) {
      const auto& e = ok.error();
      const std::string_view code = !e.sqlstate.empty()        ? e.sqlstate.view()
                                    : e.code == Errc::Auth     ? ss::kInvalidPassword
                                    : e.code == Errc::Protocol ? ss::kProtocolViolation
                                                               : ss::kConnectionFailure;
      if (e.code == Errc::Auth) {
        ++host_.counters().logins_failed;
        host_.note_login_failure(*this);
      }
      close_with_error(code, e.message);
      return used;
    }
    if (consumed) {
      used += f.size_on_wire;
    }
  }
  return used;
}

// ---- Requests while no backend is leased ----

void ClientSession::handle_idle_frame(const wire::Frame& frame, bool& consumed) {
  if (is_admin()) {
    handle_admin_frame(frame);
    return;
  }
  if (frame.type == 'X') {
    begin_close("client sent Terminate");
    return;
  }
  if (skip_until_sync_) {
    // After a failed lease in the extended protocol: discard until Sync, as PostgreSQL does.
    if (frame.type == 'S') {
      skip_until_sync_ = false;
      wire::WriteBuffer& out = host_.scratch();
      out.clear();
      wire::encode(wire::ReadyForQuery{client_tx_}, out);
      write(out.data());
    }
    return;
  }
  if (host_.draining()) {
    close_with_error(ss::kAdminShutdown, "pgmux is shutting down");
    return;
  }
  if (hold_back_begin(frame)) {
    return;  // answered here; the transaction starts on the backend its next request picks
  }
  consumed = false;  // forwarded once linked
  if (std::exchange(rate_token_, false) == false && !host_.admit_request(*this, *user_config_)) {
    transition(ClientState::Throttled);  // the frame stays buffered until on_throttle_end
    return;
  }
  backend::Pool* pool = route(frame);
  if (pool == nullptr) {
    // primary_reads = "never" and no replica can take this read: an error for this request
    // (an extended-protocol one then skips to its Sync, as after any error).
    consumed = true;
    send_error("ERROR", ss::kCannotConnectNow,
               "no replica available for a read (primary_reads = \"never\")");
    if (frame.type == 'Q') {
      wire::WriteBuffer out;
      wire::encode(wire::ReadyForQuery{client_tx_}, out);
      write(out.data());
    } else {
      skip_until_sync_ = frame.type != 'S';
      if (frame.type == 'S') {
        wire::WriteBuffer out;
        wire::encode(wire::ReadyForQuery{client_tx_}, out);
        write(out.data());
      }
    }
    return;
  }
  lease_pool_ = pool;
  backend::BackendConn* b = pool->lease(*this, net::now_ms(host_.loop()));
  if (b == nullptr) {
    transition(ClientState::WaitingForBackend);
    return;
  }
  link(*b);
}

void ClientSession::on_backend_leased(backend::BackendConn& backend) {
  if (state_ != ClientState::WaitingForBackend) {
    backend.pool().release(backend, true);
    return;
  }
  link(backend);
  resume_client_reading();
  process_buffered();
}

void ClientSession::on_lease_failed(const Error& error) {
  if (state_ == ClientState::WaitingForParams) {
    close_with_error(ss::kCannotConnectNow, error.message);
    return;
  }
  if (state_ != ClientState::WaitingForBackend) {
    return;
  }
  transition(ClientState::Idle);
  fail_first_request(error);
}

void ClientSession::on_throttle_end(bool granted) {
  if (state_ != ClientState::Throttled) {
    return;
  }
  transition(ClientState::Idle);
  if (granted) {
    rate_token_ = true;
  } else {
    ++host_.counters().refused[5];  // app::Refusal::QueryRate
    const config::GeneralConfig& g = host_.config().general;
    fail_first_request(Error{Errc::PoolFull,
                             "query rate limit of user \"" + user_config_->name +
                                 "\" exceeded (max_user_query_rate; waited " +
                                 std::to_string(g.query_rate_wait.count()) + " ms)",
                             ss::kConfigurationLimitExceeded});
    return;
  }
  resume_client_reading();
  process_buffered();
}

void ClientSession::fail_first_request(const Error& error) {
  const bool timeout = error.code == Errc::Timeout;
  send_error("ERROR",
             !error.sqlstate.empty() ? error.sqlstate.view()
             : timeout               ? ss::kQueryCanceled
                                     : ss::kConnectionFailure,
             error.message);
  // The first buffered request gets the error; an extended-protocol one skips to Sync.
  auto frame =
      wire::peek_frame(inbuf_.view(), wire::Phase::Regular, host_.config().general.max_message_size);
  if (frame && frame->has_value() && (**frame).type == 'Q') {
    const std::size_t n = (**frame).size_on_wire;
    inbuf_.erase_front(n);
    wire::WriteBuffer& out = host_.scratch();
    out.clear();
    wire::encode(wire::ReadyForQuery{client_tx_}, out);
    write(out.data());
  } else {
    skip_until_sync_ = true;
  }
  resume_client_reading();
  process_buffered();
}

void ClientSession::link(backend::BackendConn& backend) {
  backend_ = &backend;
  backend.attach(this, net::now_ms(host_.loop()));
  transition(ClientState::Linked);
  sync_settings();
  if (held_begin_) {
    // The BEGIN pgmux answered: it runs now, on the backend the next request chose.
    held_begin_ = false;
    wire::WriteBuffer out;
    wire::encode(wire::Query{"BEGIN"}, out);
    backend_->expected().expect_hidden(backend::Reply::Query);
    backend_->send(out.data());
  }
}

// ---- Forwarding while linked ----

bool ClientSession::renames_statements() const { return mode_ != config::PoolMode::Session; }

std::size_t ClientSession::forward_frames(std::span<const std::byte> in) {
  const std::uint32_t max_size = host_.config().general.max_message_size;
  wire::WriteBuffer& out = host_.scratch();
  out.clear();
  thread_local wire::WriteBuffer repl;  // one frame's replacement
  std::size_t used = 0;
  std::size_t raw_begin = 0;  // start of the bytes still to forward unchanged
  bool terminate = false;
  while (used < in.size() && !terminate) {
    auto frame = wire::peek_frame(in.subspan(used), wire::Phase::Regular, max_size);
    if (!frame) {
      close_with_error(ss::kProtocolViolation, frame.error().message);
      return in.size();
    }
    if (!frame->has_value()) {
      break;
    }
    const wire::Frame& f = **frame;
    repl.clear();
    Action action = Action::Forward;
    auto& expected = backend_->expected();
    if (discard_until_sync_ && f.type != 'S' && f.type != 'X') {
      // pgmux answered the previous message with an error: like PostgreSQL, ignore
      // everything up to the Sync, whose ReadyForQuery comes from the backend.
      out.append(in.subspan(raw_begin, used - raw_begin));
      used += f.size_on_wire;
      raw_begin = used;
      continue;
    }
    discard_until_sync_ = discard_until_sync_ && f.type != 'S';
    if ((extras_ && renames_statements()) || lease_on_replica_) {
      extras();  // a replica lease keeps its request, to run it on the primary if refused
      record_for_retry(in.subspan(used, f.size_on_wire), f.type);
    }
    switch (f.type) {
      case 'Q': action = handle_query(f, repl); break;
      case 'P': action = handle_parse(f, repl); break;
      case 'B': action = handle_bind(f, repl); break;
      case 'D': action = handle_describe(f, repl); break;
      case 'C': action = handle_close(f, repl); break;
      case 'E':
        expected.expect(backend::Reply::Execute);
        backend_->unsynced = true;
        break;
      case 'S':
        expected.expect(backend::Reply::Sync);
        backend_->unsynced = false;
        ++host_.counters().queries;
        ++pool_->traffic.queries;
        break;
      case 'H':
      case 'd': break;
      case 'c':
      case 'f': backend_->copy_in = false; break;
      case 'F': expected.expect(backend::Reply::Query); break;
      case 'X':
        action = Action::Drop;
        terminate = true;
        break;
      default:
        close_with_error(ss::kProtocolViolation,
                         "invalid frontend message type " +
                             std::to_string(static_cast<unsigned char>(f.type)));
        return in.size();
    }
    if (state_ == ClientState::Closing) {
      return in.size();
    }
    if (action != Action::Forward) {
      out.append(in.subspan(raw_begin, used - raw_begin));
      out.append(repl.data());
      raw_begin = used + f.size_on_wire;
    }
    used += f.size_on_wire;
  }
  if (out.empty()) {
    // The common case: nothing rewritten, send straight from the input without a copy.
    if (used > raw_begin) {
      backend_->send(in.subspan(raw_begin, used - raw_begin));
    }
  } else {
    out.append(in.subspan(raw_begin, used - raw_begin));
    backend_->send(out.data());
  }
  if (terminate) {
    begin_close("client sent Terminate");
  } else if (backend_->queued_bytes() > net::TcpStream::kHighWater) {
    stream_.pause_reading();  // the server reads slower than the client sends (COPY)
  }
  return used;
}

// ---- Replies ----

void ClientSession::on_backend_data(std::span<const std::byte> bytes) {
  write(bytes);
  if (stream_.queued_bytes() > net::TcpStream::kHighWater && backend_ != nullptr) {
    // The client reads slower than the server answers: stop reading the server until the
    // client catches up, so a huge result never sits in pgmux's memory.
    backend_->pause_reading();
  }
}

bool ClientSession::on_read_only_violation() {
  if (!lease_on_replica_ || !extras_ || extras_->retried || !extras_->group_closed ||
      extras_->group_too_big || extras_->group.empty()) {
    return false;
  }
  extras_->retried = true;
  retry_on_primary_ = true;
  ++host_.counters().replica_retries;
  spdlog::info("client {}: a replica refused a statement as a write (25006); running it on the "
               "primary", id_);
  return true;
}

void ClientSession::on_write_drained() {
  if (backend_ != nullptr && !host_.suspended()) {
    backend_->resume_reading();
  }
}

void ClientSession::on_backend_writable() { resume_client_reading(); }

// Reading resumes unless the admin console suspended all traffic (SUSPEND).
void ClientSession::resume_client_reading() {
  if (!host_.suspended() || is_admin()) {
    stream_.resume_reading();
  }
}

void ClientSession::set_suspended(bool suspended) {
  if (is_admin()) {
    return;
  }
  if (suspended) {
    stream_.pause_reading();
    if (backend_ != nullptr) {
      backend_->pause_reading();
    }
    return;
  }
  stream_.resume_reading();
  if (backend_ != nullptr) {
    backend_->resume_reading();
  }
}

std::size_t ClientSession::unflushed_bytes() const {
  return stream_.queued_bytes() + (backend_ != nullptr ? backend_->queued_bytes() : 0);
}

void ClientSession::on_backend_command_complete(std::string_view tag) {
  if (tracking_effects()) {
    extras().last_tag.assign(tag);
  }
  if ((tag == "DEALLOCATE ALL" || tag == "DISCARD ALL") && extras_ && renames_statements()) {
    // Reached the backend (extended protocol, pinned, ...): this client's names are gone.
    for (const auto& [name, sid] : extras_->statements) {
      host_.prepared().release(sid);
    }
    extras_->statements.clear();
  }
}

void ClientSession::on_backend_ready(bool visible) {
  if (backend_ == nullptr) {
    return;
  }
  if (visible) {
    finish_timed_requests();
  }
  if (visible && extras_) {
    extras_->retried = false;
  }
  if (!visible) {
    // pgmux's own statement finished (after the client's): only the release may be due.
    if (!settings_failed_ && mode_ != config::PoolMode::Session && pins_ == 0 &&
        backend_->is_releasable()) {
      release_backend();
      if (retry_on_primary_ && state_ == ClientState::Idle && extras_) {
        // The replica refused it as a write: the same request, from the start, on the
        // primary. Nothing of it reached the client, so the client never knows.
        retry_on_primary_ = false;
        force_primary_ = true;
        CompactBytes again;
        again.append(extras_->group);
        again.append(inbuf_.view());
        inbuf_ = std::move(again);
        process_buffered();
      }
    }
    return;
  }
  client_tx_ = backend_->tx_status();
  if (tracking_effects()) {
    Extras& x = extras();
    const bool ok_tag = x.last_tag == "SET" || x.last_tag == "RESET" || x.last_tag == "DISCARD ALL";
    if (x.pending_effect.effect != SessionEffect::None && ok_tag) {
      if (client_tx_ == wire::TxStatus::Idle) {
        apply_setting(x.pending_effect);
      } else if (client_tx_ == wire::TxStatus::InBlock) {
        x.tx_effects.push_back(std::move(x.pending_effect));
      }
    }
    x.pending_effect = {};
    if (client_tx_ == wire::TxStatus::Idle) {
      if (x.last_tag == "COMMIT") {
        for (const auto& e : x.tx_effects) {
          apply_setting(e);
        }
      }
      x.tx_effects.clear();
      if (pending_unpins_ != 0 && x.last_tag != "ROLLBACK") {
        pins_ &= static_cast<std::uint8_t>(~pending_unpins_);
      }
      pending_unpins_ = 0;
    }
    x.last_tag.clear();
  }
  if (client_tx_ == wire::TxStatus::Idle) {
    ++host_.counters().transactions;
    ++pool_->traffic.transactions;
  }
  if (settings_failed_) {
    return;  // closing
  }
  if (mode_ == config::PoolMode::Session) {
    return;
  }
  if (settings_dirty_ && client_tx_ == wire::TxStatus::Idle) {
    settings_dirty_ = false;
    probe_settings();
    return;  // released when the probe is done
  }
  if (pins_ != 0) {
    if (backend_->is_releasable()) {
      probe_pins();
    }
    return;
  }
  if (mode_ == config::PoolMode::Statement && client_tx_ != wire::TxStatus::Idle) {
    close_with_error(ss::kFeatureNotSupported,
                     "transaction blocks are not allowed in statement pooling mode");
    return;
  }
  if (backend_->is_releasable()) {
    release_backend();
  }
}

void ClientSession::release_backend() {
  backend::BackendConn* b = backend_;
  backend_ = nullptr;
  transition(ClientState::Idle);
  if (lease_is_write_) {
    note_write_done();
  }
  pool_->traffic.xact_time_us += (net::now_ms(host_.loop()) - b->last_used_ms()) * 1000;
  b->pool().release(*b, true);
  if (host_.draining()) {
    // Shutting down: the transaction this client was in has ended, so it may go now.
    close_with_error(ss::kAdminShutdown, "pgmux is shutting down");
  }
}

void ClientSession::on_backend_hidden_error(std::string_view message, std::string_view sqlstate) {
  // Applying this client's settings failed: PostgreSQL would have refused the connection.
  settings_failed_ = true;
  if (backend_ != nullptr) {
    backend_->settings_hash = backend::kSettingsUnknown;
  }
  close_with_error(sqlstate.empty() ? ss::kInternalError : sqlstate, std::string(message));
}

void ClientSession::on_backend_lost(const Error& error) {
  backend_ = nullptr;
  close_with_error(ss::kConnectionFailure, error.message);
}

// ---- Timeouts, cancel, close ----

void ClientSession::tick(std::uint64_t now_ms) {
  if (state_ == ClientState::Closing || db_config_ == nullptr) {
    if (state_ == ClientState::AwaitingStartup) {
      const auto limit = host_.config().general.timeouts.client_login_timeout.count();
      if (limit > 0 && now_ms - connected_ms_ >= static_cast<std::uint64_t>(limit)) {
        close_with_error(ss::kProtocolViolation, "client_login_timeout: no login within " +
                                                    std::to_string(limit) + " ms");
      }
    }
    return;
  }
  const config::Timeouts& t = db_config_->timeouts;
  switch (state_) {
    case ClientState::AwaitingStartup:
    case ClientState::Authenticating:
    case ClientState::WaitingForParams:
      if (t.client_login_timeout.count() > 0 &&
          now_ms - connected_ms_ >= static_cast<std::uint64_t>(t.client_login_timeout.count())) {
        close_with_error(ss::kProtocolViolation, "client_login_timeout: no login within " +
                                                    std::to_string(t.client_login_timeout.count()) + " ms");
      }
      return;
    case ClientState::Idle:
      if (t.client_idle_timeout.count() > 0 &&
          now_ms - last_activity_ms_ >= static_cast<std::uint64_t>(t.client_idle_timeout.count())) {
        close_with_error(ss::kIdleSessionTimeout, "client_idle_timeout: connection idle for " +
                                                      std::to_string(t.client_idle_timeout.count()) + " ms");
      }
      return;
    case ClientState::Linked:
      if (t.idle_transaction_timeout.count() > 0 && backend_ != nullptr &&
          backend_->expected().empty() && backend_->tx_status() != wire::TxStatus::Idle &&
          now_ms - last_activity_ms_ >= static_cast<std::uint64_t>(t.idle_transaction_timeout.count())) {
        close_with_error(ss::kIdleInTransactionTimeout,
                         "idle_transaction_timeout: idle in transaction for " +
                             std::to_string(t.idle_transaction_timeout.count()) + " ms");
      }
      return;
    case ClientState::WaitingForBackend:
    case ClientState::Throttled:
    case ClientState::Closing: return;
  }
}

void ClientSession::cancel_running_query() {
  if (state_ == ClientState::WaitingForBackend) {
    // Not started yet: it ends as a cancelled statement would, without reaching a server.
    if (lease_pool_ != nullptr) {
      lease_pool_->cancel_wait(*this);
    }
    on_lease_failed(Error{Errc::Timeout, "canceling statement due to user request",
                          ss::kQueryCanceled});
    return;
  }
  if (state_ == ClientState::Throttled) {
    // Waiting for its user's query rate: leaves the queue and ends as cancelled.
    host_.forget_throttled(*this);
    transition(ClientState::Idle);
    fail_first_request(
        Error{Errc::Timeout, "canceling statement due to user request", ss::kQueryCanceled});
    return;
  }
  // Only the client's own work is cancelled, never a statement pgmux runs itself.
  if (backend_ != nullptr && !backend_->expected().empty() && !backend_->expected().front_hidden()) {
    backend_->pool().cancel_query(*backend_);
  }
}

void ClientSession::send_error(std::string_view severity, std::string_view sqlstate,
                               const std::string& message) {
  host_.counters().count_error(sqlstate);
  wire::WriteBuffer out;
  wire::ErrorResponse err;
  err.severity = std::string(severity);
  err.sqlstate = std::string(sqlstate);
  err.message = message;
  wire::encode(err, out);
  write(out.data());
}

void ClientSession::close_with_error(std::string_view sqlstate, const std::string& message) {
  if (state_ == ClientState::Closing) {
    return;
  }
  spdlog::info("client {} {}: closing: {}", id_, peer(), message);
  send_error("FATAL", sqlstate, message);
  begin_close(message);
}

void ClientSession::on_eof() { begin_close("client disconnected"); }

void ClientSession::on_error(const Error& error) {
  if (stream_.tls() != nullptr && !stream_.tls()->handshake_done()) {
    // A failed handshake is a configuration matter (CA, protocols) the operator must see.
    spdlog::info("client {} {}: {}", id_, peer(), error.message);
  }
  begin_close(error.message);
}

void ClientSession::write(std::span<const std::byte> bytes) {
  host_.counters().bytes_out += bytes.size();
  if (pool_ != nullptr) {
    pool_->traffic.bytes_out += bytes.size();
  }
  stream_.write(bytes);
}

// The single way a client session ends. The backend, if any, goes back to its pool only
// once it is clean: a running query is cancelled, an open transaction rolled back, and a
// pinned or session-mode backend reset.
void ClientSession::begin_close(std::string reason) {
  if (state_ == ClientState::Closing) {
    return;
  }
  spdlog::debug("client {} {}: closing: {}", id_, peer(), reason);
  transition(ClientState::Closing);
  if (backend_ != nullptr) {
    backend::BackendConn* b = backend_;
    backend_ = nullptr;
    if (lease_is_write_) {
      note_write_done();
    }
    backend::Pool& pool = b->pool();
    if (!b->copy_in && !b->expected().empty() && !b->expected().front_hidden()) {
      pool.cancel_query(*b);  // its query is still running (a COPY gets CopyFail instead)
    }
    if (mode_ == config::PoolMode::Session || pins_ != 0) {
      b->needs_reset = true;
    }
    if (!b->needs_reset && b->is_releasable()) {
      pool.release(*b, true);
    } else {
      pool.release_orphan(*b);
    }
  }
  if (lease_pool_ != nullptr) {
    lease_pool_->cancel_wait(*this);
  }
  if (pool_ != nullptr) {
    pool_->cancel_wait(*this);
  }
  stream_.close();
  host_.on_client_closed(*this);
}

}  // namespace pooler::client
