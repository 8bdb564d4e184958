#include "pooler/backend/backend_conn.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "pooler/backend/pool.h"
#include "pooler/base/check.h"
#include "pooler/net/timer.h"
#include "pooler/wire/md5_auth.h"

namespace pooler::backend {
namespace {

}  // namespace

// Reply types whose body pgmux must read; every other frame may stream through unseen.
bool BackendConn::needs_body(char type) const {
  return type == 'Z' || type == 'S' || type == 'C' || type == 'E' ||
         (type == 'D' && expected_.front_probe());
}

BackendConn::BackendConn(net::Loop& loop, Pool& pool, std::uint64_t id, config::HostPort address)
    : loop_(loop),
      pool_(pool),
      id_(id),
      address_(std::move(address)),
      stream_(loop, *this),
      expected_(*this) {}

BackendConn::~BackendConn() { stream_.close(); }

void BackendConn::start(const ServerLogin& login, std::uint32_t max_message_size,
                        const ServerTls& tls) {
  login_ = login;
  tls_ = tls;
  max_message_size_ = max_message_size;
  created_ms_ = net::now_ms(loop_);
  last_used_ms_ = created_ms_;
  if (auto ok = stream_.connect(address_.host, address_.port); !ok) {
    close("cannot connect to " + address_.to_string() + ": " + ok.error().message);
  }
}

void BackendConn::transition(BackendState to) {
  POOLER_CHECK(is_allowed(state_, to), "backend state transition");
  SPDLOG_TRACE("backend {}: {} -> {}", id_, to_string(state_), to_string(to));
  state_ = to;
}

void BackendConn::attach(BackendListener* listener, std::uint64_t now_ms) {
  listener_ = listener;
  last_used_ms_ = now_ms;
}

void BackendConn::detach(std::uint64_t now_ms) {
  listener_ = nullptr;
  timer.clear();
  last_used_ms_ = now_ms;
}

void BackendConn::on_connected() {
  transition(BackendState::Authenticating);
  const bool unix_socket = !address_.host.empty() && address_.host[0] == '/';
  if (tls_.mode >= config::SslMode::Require && tls_.context == nullptr && !unix_socket) {
    close("server_tls_sslmode is " + std::string(config::to_string(tls_.mode)) +
          ", but no TLS context could be loaded");
    return;
  }
  if (tls_.mode == config::SslMode::Disable || tls_.context == nullptr || unix_socket) {
    send_startup();
    return;
  }
  awaiting_ssl_answer_ = true;
  wire::WriteBuffer out;
  wire::encode_ssl_request(out);
  stream_.write(out.data());
}

// The answer to SSLRequest: 'S' starts the handshake, 'N' means plaintext.
void BackendConn::on_ssl_answer(std::span<const std::byte> bytes) {
  awaiting_ssl_answer_ = false;
  const char answer = static_cast<char>(bytes[0]);
  if (answer == 'S') {
    if (bytes.size() > 1) {
      // Bytes before the handshake could only be injected by a man in the middle.
      close("received unencrypted data after the server's SSL response");
      return;
    }
    auto tls = net::TlsSession::make(
        *tls_.context, tls_.mode == config::SslMode::VerifyFull ? address_.host : std::string());
    if (!tls) {
      close(tls.error().message);
      return;
    }
    stream_.start_tls(std::move(*tls));
    return;
  }
  if (answer != 'N') {
    close("server answered SSLRequest with an unexpected message");
    return;
  }
  if (tls_.mode >= config::SslMode::Require) {
    close("server " + address_.to_string() + " does not support SSL, but server_tls_sslmode is " +
          std::string(config::to_string(tls_.mode)));
    return;
  }
  send_startup();
  if (bytes.size() > 1) {
    on_login_bytes(bytes.subspan(1));
  }
}

void BackendConn::on_tls_ready() {
  if (state_ == BackendState::Authenticating) {
    send_startup();
  }
}

void BackendConn::send_startup() {
  wire::WriteBuffer out;
  const std::pair<std::string, std::string> params[] = {
      {"user", login_.user}, {"database", login_.database}};
  wire::encode_startup(params, out);
  stream_.write(out.data());
}

void BackendConn::on_read(std::span<const std::byte> bytes) {
  switch (state_) {
    case BackendState::Authenticating:
      if (awaiting_ssl_answer_) {
        on_ssl_answer(bytes);
        return;
      }
      on_login_bytes(bytes);
      return;
    case BackendState::Active:
    case BackendState::Draining: scan_replies(bytes); return;
    case BackendState::Idle:
      // Nothing is owed: this is the server ending the session (admin shutdown, idle
      // session timeout). The connection cannot be trusted any more.
      close("server sent data while idle in the pool");
      return;
    case BackendState::Connecting:
    case BackendState::Closed: return;
  }
}

void BackendConn::on_eof() { close("server closed the connection"); }

void BackendConn::on_error(const Error& error) {
  close(state_ == BackendState::Connecting ? "cannot connect to " + address_.to_string() + ": " +
                                                 error.message
                                           : error.message);
}

void BackendConn::on_write_drained() {
  if (listener_ != nullptr) {
    listener_->on_backend_writable();
  }
}

// ---- Login ----

void BackendConn::on_login_bytes(std::span<const std::byte> bytes) {
  pending_.insert(pending_.end(), bytes.begin(), bytes.end());
  std::size_t used = 0;
  while (state_ == BackendState::Authenticating) {
    auto frame = wire::peek_frame(std::span(pending_).subspan(used), wire::Phase::Regular,
                                  max_message_size_);
    if (!frame) {
      close("login: " + frame.error().message);
      return;
    }
    if (!frame->has_value()) {
      break;
    }
    used += (*frame)->size_on_wire;
    auto done = handle_login_frame(**frame);
    if (!done) {
      close(done.error().message);
      return;
    }
    if (*done) {
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(used));
      scram_.reset();
      login_.password.clear();  // keep no secret longer than needed
      transition(BackendState::Idle);
      pool_.on_backend_connected(*this);
      return;
    }
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(used));
}

Result<bool> BackendConn::handle_login_frame(const wire::Frame& frame) {
  switch (frame.type) {
    case 'R': {
      auto auth = wire::decode_authentication(frame);
      if (!auth) {
        return std::unexpected(auth.error());
      }
      if (auto ok = handle_auth(*auth); !ok) {
        return std::unexpected(ok.error());
      }
      return false;
    }
    case 'S': {
      auto ps = wire::decode_parameter_status(frame);
      if (!ps) {
        return std::unexpected(ps.error());
      }
      record_parameter(ps->name, ps->value);
      return false;
    }
    case 'K': {
      auto key = wire::decode_backend_key_data(frame);
      if (!key) {
        return std::unexpected(key.error());
      }
      key_ = *key;
      return false;
    }
    case 'E': {
      auto err = wire::decode_error_response(frame);
      if (!err) {
        return std::unexpected(err.error());
      }
      return fail(err->sqlstate.starts_with("28") ? Errc::Auth : Errc::Io,
                  "server refused login: " + err->message);
    }
    case 'N': return false;
    case 'Z': {
      auto rfq = wire::decode_ready_for_query(frame);
      if (!rfq) {
        return std::unexpected(rfq.error());
      }
      tx_status_ = rfq->status;
      return true;
    }
    default:
      return fail(Errc::Protocol,
                  std::string("unexpected message during login: '") + frame.type + "'");
  }
}

Result<void> BackendConn::handle_auth(const wire::Authentication& auth) {
  wire::WriteBuffer out;
  const bool plaintext = !login_.password.empty() && !wire::is_md5_hash(login_.password);
  switch (static_cast<wire::AuthCode>(auth.code)) {
    case wire::AuthCode::Ok: return {};
    case wire::AuthCode::CleartextPassword:
      if (!plaintext) {
        return fail(Errc::Auth, "server asks for a cleartext password, and pgmux has none for user \"" +
                                    login_.user + "\"");
      }
      wire::encode_password(login_.password, out);
      break;
    case wire::AuthCode::Md5Password: {
      if (auth.data.size() != 4 || login_.password.empty()) {
        return fail(Errc::Auth, "server asks for an md5 password, and pgmux has none for user \"" +
                                    login_.user + "\"");
      }
      std::array<std::uint8_t, 4> salt{};
      std::memcpy(salt.data(), auth.data.data(), 4);
      wire::encode_password(wire::md5_salted_response(login_.password, login_.user, salt), out);
      break;
    }
    case wire::AuthCode::Sasl: {
      const std::string_view mechs(reinterpret_cast<const char*>(auth.data.data()), auth.data.size());
      if (mechs.find("SCRAM-SHA-256") == std::string_view::npos) {
        return fail(Errc::Auth, "server offers no SASL mechanism pgmux supports");
      }
      if (plaintext) {
        scram_ = std::make_unique<wire::ScramClient>(login_.password);
      } else if (login_.has_scram_keys) {
        scram_ = std::make_unique<wire::ScramClient>(login_.client_key, login_.server_key);
      } else {
        return fail(Errc::Auth, "server asks for SCRAM, and pgmux has neither a plaintext password "
                                "nor SCRAM keys for user \"" + login_.user + "\"");
      }
      wire::encode_sasl_initial_response("SCRAM-SHA-256", scram_->client_first(), out);
      break;
    }
    case wire::AuthCode::SaslContinue: {
      if (!scram_) {
        return fail(Errc::Protocol, "unexpected SASLContinue");
      }
      auto final_msg = scram_->on_server_first(
          std::string_view(reinterpret_cast<const char*>(auth.data.data()), auth.data.size()));
      if (!final_msg) {
        return std::unexpected(final_msg.error());
      }
      wire::encode_sasl_response(*final_msg, out);
      break;
    }
    case wire::AuthCode::SaslFinal: {
      if (!scram_) {
        return fail(Errc::Protocol, "unexpected SASLFinal");
      }
      return scram_->on_server_final(
          std::string_view(reinterpret_cast<const char*>(auth.data.data()), auth.data.size()));
    }
    default:
      return fail(Errc::Auth, "server asks for an unsupported authentication method (" +
                                  std::to_string(auth.code) + ")");
  }
  stream_.write(out.data());
  return {};
}

void BackendConn::record_parameter(std::string_view name, std::string_view value) {
  for (auto& [k, v] : server_params_) {
    if (k == name) {
      v.assign(value);
      return;
    }
  }
  server_params_.emplace_back(std::string(name), std::string(value));
}

// ---- Replies ----

void BackendConn::flush_forward(const std::byte* begin, const std::byte* end) {
  if (listener_ != nullptr && begin != end) {
    forwarded_in_group_ = true;
    listener_->on_backend_data(std::span(begin, end));
  }
}

void BackendConn::emit_synthetic(const std::string& bytes) {
  if (listener_ != nullptr) {
    forwarded_in_group_ = true;
    listener_->on_backend_data(std::as_bytes(std::span(bytes.data(), bytes.size())));
  }
}

void BackendConn::statement_prepared(std::uint64_t statement) {
  if (listener_ != nullptr) {
    listener_->on_statement_prepared(statement);
  }
}

void BackendConn::client_parse_done(bool ok) {
  if (listener_ != nullptr) {
    listener_->on_client_parse_done(ok);
  }
}

void BackendConn::statement_failed(std::uint64_t statement) {
  if (auto it = prepared_.find(statement); it != prepared_.end()) {
    lru_.erase(it->second);
    prepared_.erase(it);
  }
}

bool BackendConn::on_reply_frame(char type, std::span<const std::byte> body) {
  const Matched m = expected_.on_reply(type);
  switch (type) {
    case 'Z':
      if (!body.empty()) {
        tx_status_ = static_cast<wire::TxStatus>(body[0]);
      }
      copy_in = false;
      break;
    case 'S': {
      wire::Frame f{type, body, 0};
      if (auto ps = wire::decode_parameter_status(f)) {
        record_parameter(ps->name, ps->value);
      }
      break;
    }
    case 'C': {
      wire::Frame f{type, body, 0};
      auto cc = wire::decode_command_complete(f);
      if (!cc) {
        break;
      }
      // However they got here (a pinned client, the extended protocol, inside a
      // transaction), these dropped every prepared statement on this backend.
      if (cc->tag == "DEALLOCATE ALL" || cc->tag == "DISCARD ALL") {
        forget_statements();
        if (cc->tag == "DISCARD ALL") {
          settings_hash = 0;  // back to the server's defaults
        }
      }
      if (listener_ != nullptr && m.disposition == Disposition::Forward) {
        timer.on_command_complete(cc->tag);
        listener_->on_backend_command_complete(cc->tag);
      }
      break;
    }
    case 'E':
      if (listener_ != nullptr && !forwarded_in_group_ && expected_.size() == 1 &&
          !expected_.front_hidden() && has_sqlstate(body, "25006") &&
          listener_->on_read_only_violation()) {
        expected_.hide_front();  // its ReadyForQuery is not the client's either
        return false;
      }
      if (m.failed_bind_statement != 0 && plan_changed(body)) {
        // Only this request's Sync is left and nothing of it reached the client: it can run
        // again, transparently, once the statement is prepared afresh.
        const bool retryable = expected_.size() == 1 && !forwarded_in_group_;
        retire_statement(m.failed_bind_statement);
        if (retryable && listener_ != nullptr && listener_->on_plan_changed()) {
          expected_.hide_front();
          return false;
        }
      }
      if (m.disposition == Disposition::Forward) {
        timer.on_error();
        if (listener_ != nullptr) {
          listener_->on_backend_error(sqlstate_of(body));
        }
      }
      if (m.error_in_hidden_query && listener_ != nullptr) {
        wire::Frame f{type, body, 0};
        if (auto err = wire::decode_error_response(f)) {
          listener_->on_backend_hidden_error(err->message, err->sqlstate);
        }
      }
      break;
    case 'G': copy_in = true; break;
    case 'D':
      if (m.probe_row && body.size() >= 6) {
        // One column: u16 count, i32 length, bytes.
        const auto len = (std::uint32_t(body[2]) << 24) | (std::uint32_t(body[3]) << 16) |
                         (std::uint32_t(body[4]) << 8) | std::uint32_t(body[5]);
        if (len != 0xFFFFFFFFu && 6 + std::size_t{len} <= body.size()) {
          probe_value_.assign(reinterpret_cast<const char*>(body.data()) + 6, len);
        }
      }
      break;
    default: break;
  }
  if (m.completed_sync) {
    sync_completed_ = true;
    sync_visible_ = sync_visible_ || !m.completed_hidden;
    probe_done_ = probe_done_ || m.completed_probe;
  }
  return m.disposition == Disposition::Forward;
}

void BackendConn::scan_replies(std::span<const std::byte> input) {
  const std::byte* p = input.data();
  const std::byte* const end = p + input.size();
  const std::byte* fwd = nullptr;  // start of the range being forwarded
  auto flush = [&](const std::byte* upto) {
    if (fwd != nullptr) {
      flush_forward(fwd, upto);
      fwd = nullptr;
    }
  };
  auto take = [&](bool forward, const std::byte* at) {
    if (forward) {
      if (fwd == nullptr) {
        fwd = at;
      }
    } else {
      flush(at);
    }
  };

  // Complete a frame left over from the previous read.
  while (!pending_.empty() && p < end) {
    const std::size_t want =
        pending_.size() < wire::kHeaderSize
            ? wire::kHeaderSize - pending_.size()
            : 1 + wire::header_length(pending_.data()) - pending_.size();
    const std::size_t k = std::min<std::size_t>(want, static_cast<std::size_t>(end - p));
    pending_.insert(pending_.end(), p, p + k);
    p += k;
    if (pending_.size() < wire::kHeaderSize) {
      return;
    }
    const char type = static_cast<char>(pending_[0]);
    const std::uint32_t len = wire::header_length(pending_.data());
    if (len < 4 || (needs_body(type) && len > max_message_size_)) {
      close("server sent a message with an impossible length");
      return;
    }
    const std::size_t total = 1 + std::size_t{len};
    if (pending_.size() < total && !needs_body(type)) {
      // Header known: stream the rest of this frame.
      const bool forward = on_reply_frame(type, {});
      if (forward) {
        flush_forward(pending_.data(), pending_.data() + pending_.size());
      }
      stream_remaining_ = total - pending_.size();
      stream_forward_ = forward;
      pending_.clear();
      break;
    }
    if (pending_.size() < total) {
      continue;  // needs more input
    }
    const bool forward = on_reply_frame(type, std::span(pending_).subspan(wire::kHeaderSize));
    if (forward) {
      flush_forward(pending_.data(), pending_.data() + total);
    }
    pending_.clear();
    if (!after_frame(p)) {
      return;
    }
  }

  while (p < end) {
    if (stream_remaining_ > 0) {
      const std::size_t k = std::min<std::size_t>(stream_remaining_, static_cast<std::size_t>(end - p));
      take(stream_forward_, p);
      p += k;
      stream_remaining_ -= k;
      continue;
    }
    const std::size_t avail = static_cast<std::size_t>(end - p);
    if (avail < wire::kHeaderSize) {
      flush(p);
      pending_.assign(p, end);
      break;
    }
    const char type = static_cast<char>(p[0]);
    const std::uint32_t len = wire::header_length(p);
    // Streamed frames (rows, COPY data) have no size limit here: they never sit in
    // pgmux's memory. Frames read whole do.
    if (len < 4 || (needs_body(type) && len > max_message_size_)) {
      flush(p);
      close("server sent a message with an impossible length");
      return;
    }
    const std::size_t total = 1 + std::size_t{len};
    if (avail < total) {
      if (needs_body(type)) {
        flush(p);
        pending_.assign(p, end);
        break;
      }
      const bool forward = on_reply_frame(type, {});
      take(forward, p);
      stream_remaining_ = total - avail;
      stream_forward_ = forward;
      p = end;
      break;
    }
    const bool forward = on_reply_frame(type, std::span(p + wire::kHeaderSize, len - 4));
    take(forward, p);
    p += total;
    if (sync_completed_ || expected_.has_ready_synthetic()) {
      flush(p);
      if (!after_frame(p)) {
        return;
      }
    }
  }
  flush(p);
}

// Emits synthetic replies that reached the front and reports a finished Sync. Returns
// false when this connection was closed meanwhile.
bool BackendConn::after_frame(const std::byte*) {
  if (expected_.has_ready_synthetic()) {
    expected_.emit_ready_synthetic();
  }
  if (sync_completed_) {
    sync_completed_ = false;
    const bool visible = std::exchange(sync_visible_, false);
    if (visible) {
      forwarded_in_group_ = false;
    }
    if (std::exchange(probe_done_, false) && listener_ != nullptr) {
      listener_->on_probe_result(std::exchange(probe_value_, {}));
    }
    if (listener_ != nullptr) {
      listener_->on_backend_ready(visible);
    } else {
      pool_.on_orphan_ready(*this);
    }
  }
  return state_ != BackendState::Closed;
}

// ---- Prepared statements ----

// "cached plan must not change result type" (0A000) after DDL: that statement can never run
// again on this backend. Close it here so the next use prepares it afresh, instead of every
// client meeting the error on this backend forever.
bool BackendConn::has_sqlstate(std::span<const std::byte> error_body, std::string_view sqlstate) {
  return sqlstate_of(error_body) == sqlstate;
}

// The 'C' field of an ErrorResponse body, without decoding the rest.
std::string_view BackendConn::sqlstate_of(std::span<const std::byte> error_body) {
  const auto* p = reinterpret_cast<const char*>(error_body.data());
  const auto* end = p + error_body.size();
  while (p < end && *p != '\0') {
    const char field = *p++;
    const auto* nul = static_cast<const char*>(std::memchr(p, 0, static_cast<std::size_t>(end - p)));
    if (nul == nullptr) {
      return {};
    }
    if (field == 'C') {
      return {p, static_cast<std::size_t>(nul - p)};
    }
    p = nul + 1;
  }
  return {};
}

bool BackendConn::plan_changed(std::span<const std::byte> error_body) {
  wire::Frame f{'E', error_body, 0};
  auto err = wire::decode_error_response(f);
  return err && err->sqlstate == "0A000" && err->message.find("cached plan") != std::string::npos;
}

void BackendConn::retire_statement(std::uint64_t statement) {
  statement_failed(statement);
  wire::WriteBuffer out;
  std::string name = "pgmux_" + std::to_string(statement);
  wire::encode(wire::Close{'S', name}, out);
  wire::encode_sync(out);
  expected_.expect_hidden(Reply::CloseComplete);
  expected_.expect_hidden(Reply::Sync);
  stream_.write(out.data());
}

bool BackendConn::has_statement(std::uint64_t id) {
  auto it = prepared_.find(id);
  if (it == prepared_.end()) {
    return false;
  }
  lru_.splice(lru_.end(), lru_, it->second);
  return true;
}

std::uint64_t BackendConn::add_statement(std::uint64_t id, int max) {
  std::uint64_t evicted = 0;
  if (max > 0 && static_cast<int>(prepared_.size()) >= max && !lru_.empty()) {
    evicted = lru_.front();
    prepared_.erase(evicted);
    lru_.pop_front();
  }
  lru_.push_back(id);
  prepared_[id] = std::prev(lru_.end());
  return evicted;
}

// ---- Closing ----

void BackendConn::close(std::string reason) {
  if (state_ == BackendState::Closed) {
    return;
  }
  const bool logged_in = state_ != BackendState::Connecting && state_ != BackendState::Authenticating;
  if (logged_in && stream_.is_open()) {
    wire::WriteBuffer out;
    wire::encode_terminate(out);
    stream_.write(out.data());
  }
  const BackendState was = state_;
  state_ = BackendState::Closed;
  close_reason_ = std::move(reason);
  stream_.close();
  expected_.clear();
  pool_.on_backend_closed(*this, was);
}

}  // namespace pooler::backend
