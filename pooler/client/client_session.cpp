#include "pooler/client/client_session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "pooler/base/check.h"
#include "pooler/net/timer.h"
#include "pooler/wire/md5_auth.h"
#include "pooler/wire/sqlstate.h"

namespace pooler::client {
namespace {

namespace ss = wire::sqlstate;

constexpr std::size_t kMaxBufferedWhileWaiting = 256 * 1024;

std::string quote_literal(std::string_view v) {
  std::string out = "'";
  for (const char c : v) {
    out += c;
    if (c == '\'') {
      out += '\'';
    }
  }
  out += '\'';
  return out;
}

std::uint64_t hash_settings(const std::vector<std::pair<std::string, std::string>>& settings) {
  if (settings.empty()) {
    return 0;
  }
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (const auto& [name, stmt] : settings) {
    for (const char c : stmt) {
      h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    }
    h = (h ^ 0xff) * 1099511628211ull;
  }
  return h == 0 ? 1 : h;
}

void upsert(std::vector<std::pair<std::string, std::string>>& v, std::string name, std::string value) {
  for (auto& [k, val] : v) {
    if (k == name) {
      val = std::move(value);
      return;
    }
  }
  v.emplace_back(std::move(name), std::move(value));
}

// Startup keys that are not settings.
bool is_startup_only(std::string_view key) {
  return key == "user" || key == "database" || key == "replication" || key == "options" ||
         key.starts_with("_pq_.");
}

// `-c name=value` and `--name=value` pairs from the startup "options" parameter.
std::vector<std::pair<std::string, std::string>> parse_options(std::string_view options) {
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<std::string> words;
  std::string cur;
  bool escape = false;
  for (const char c : options) {
    if (escape) {
      cur += c;
      escape = false;
    } else if (c == '\\') {
      escape = true;
    } else if (c == ' ' || c == '\t') {
      if (!cur.empty()) {
        words.push_back(std::move(cur));
        cur.clear();
      }
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) {
    words.push_back(std::move(cur));
  }
  for (std::size_t i = 0; i < words.size(); ++i) {
    std::string_view w = words[i];
    if (w == "-c" && i + 1 < words.size()) {
      w = words[++i];
    } else if (w.starts_with("-c")) {
      w.remove_prefix(2);
    } else if (w.starts_with("--")) {
      w.remove_prefix(2);
    } else {
      continue;
    }
    const auto eq = w.find('=');
    if (eq == std::string_view::npos) {
      continue;
    }
    std::string name(w.substr(0, eq));
    std::replace(name.begin(), name.end(), '-', '_');
    out.emplace_back(std::move(name), std::string(w.substr(eq + 1)));
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

ClientSession::ClientSession(SessionHost& host, std::uint64_t id, std::uint32_t slot,
                             AdminFactory* admin)
    : host_(host), admin_factory_(admin), id_(id), slot_(slot), stream_(host.loop(), *this) {}

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
             : host_.register_cancel_key(const_cast<ClientSession&>(*this));
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
  last_activity_ms_ = net::now_ms(host_.loop());
  if (state_ == ClientState::Closing) {
    return;
  }
  if (inbuf_.empty()) {
    const std::size_t used = process(bytes);
    if (used < bytes.size() && state_ != ClientState::Closing) {
      inbuf_.assign(bytes.begin() + static_cast<std::ptrdiff_t>(used), bytes.end());
    }
  } else {
    inbuf_.insert(inbuf_.end(), bytes.begin(), bytes.end());
    process_buffered();
  }
  // Frames waiting for a backend or for the server parameters stay buffered; past a bound
  // the client is not read until then, so it cannot pile up input here. Below the bound
  // reading goes on: stopping and restarting costs two epoll_ctl calls per wait.
  if (inbuf_.size() > kMaxBufferedWhileWaiting && (state_ == ClientState::WaitingForBackend ||
                                                   state_ == ClientState::WaitingForParams)) {
    stream_.pause_reading();
  }
}

void ClientSession::process_buffered() {
  if (inbuf_.empty() || state_ == ClientState::Closing) {
    return;
  }
  // `process` may re-enter (a lease granted synchronously); work on a moved-out copy.
  std::vector<std::byte> buf = std::move(inbuf_);
  inbuf_.clear();
  const std::size_t used = process(buf);
  if (state_ == ClientState::Closing) {
    return;
  }
  if (used < buf.size()) {
    std::vector<std::byte> rest(buf.begin() + static_cast<std::ptrdiff_t>(used), buf.end());
    rest.insert(rest.end(), inbuf_.begin(), inbuf_.end());
    inbuf_ = std::move(rest);
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
    if (state_ == ClientState::WaitingForBackend || state_ == ClientState::WaitingForParams) {
      break;
    }
    if (state_ == ClientState::Idle && !is_admin()) {
      if (const std::size_t n = answer_prepare_without_backend(in.subspan(used)); n > 0) {
        used += n;
        continue;
      }
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
      case ClientState::AwaitingStartup: ok = handle_startup(f); break;
      case ClientState::Authenticating: ok = handle_auth(f); break;
      case ClientState::Idle: handle_idle_frame(f, consumed); break;
      case ClientState::WaitingForParams:
      case ClientState::WaitingForBackend:
      case ClientState::Linked:
      case ClientState::Closing: consumed = false; break;
    }
    if (!ok) {
      const auto& e = ok.error();
      const std::string_view code = !e.sqlstate.empty()        ? e.sqlstate
                                    : e.code == Errc::Auth     ? ss::kInvalidPassword
                                    : e.code == Errc::Protocol ? ss::kProtocolViolation
                                                               : ss::kConnectionFailure;
      if (e.code == Errc::Auth) {
        ++host_.counters().logins_failed;
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

// ---- Startup and authentication ----

Result<void> ClientSession::handle_startup(const wire::Frame& frame) {
  auto pkt = wire::decode_startup(frame);
  if (!pkt) {
    return std::unexpected(pkt.error());
  }
  switch (pkt->kind) {
    case wire::StartupKind::SslRequest:
    case wire::StartupKind::GssEncRequest: {
      // No TLS yet: 'N' tells the client to continue in plaintext, as PostgreSQL does.
      const std::byte no{'N'};
      write(std::span(&no, 1));
      return {};
    }
    case wire::StartupKind::CancelRequest:
      host_.route_cancel(pkt->cancel_pid, pkt->cancel_secret);
      begin_close("cancel request");
      return {};
    case wire::StartupKind::Startup: break;
  }
  login_ = std::make_unique<LoginState>();
  login_->user = std::string(pkt->param("user"));
  login_->database = std::string(pkt->param("database"));
  if (login_->user.empty()) {
    return fail(Errc::Protocol, "no PostgreSQL user name specified in startup packet",
                ss::kInvalidAuthorization);
  }
  if (login_->database.empty()) {
    login_->database = login_->user;
  }
  SessionSettings settings;
  for (const auto& [key, value] : pkt->params) {
    if (key == "options") {
      for (auto& [name, v] : parse_options(value)) {
        const std::string n = lower(name);
        upsert(settings.items, n, "set_config(" + quote_literal(n) + ", " + quote_literal(v) + ", false)");
        upsert(settings.reported, name, v);
      }
    } else if (!is_startup_only(key)) {
      const std::string n = lower(key);
      upsert(settings.items, n, "set_config(" + quote_literal(n) + ", " + quote_literal(value) + ", false)");
      upsert(settings.reported, key, value);
    }
  }
  std::sort(settings.items.begin(), settings.items.end());
  settings.hash = hash_settings(settings.items);
  startup_ = host_.intern_settings(std::move(settings));
  settings_ = startup_;
  config_ = host_.config_snapshot();
  const config::Config& cfg = *config_;
  if ((login_->database == "pgmux" || login_->database == "pgbouncer") &&
      admin_factory_ != nullptr && cfg.find_database(login_->database) == nullptr) {
    // The admin console: normal authentication, then finish_admin_auth().
    login_->admin = true;
    user_config_ = cfg.find_user(login_->user);
    login_->user_known = user_config_ != nullptr;
    transition(ClientState::Authenticating);
    return start_auth();
  }
  db_config_ = cfg.find_database(login_->database);
  if (db_config_ == nullptr) {
    spdlog::info("client {} {}: unknown database \"{}\"", id_, peer(), login_->database);
    ++host_.counters().logins_failed;
    close_with_error(ss::kInvalidCatalogName,
                     "database \"" + login_->database + "\" does not exist");
    return {};
  }
  user_config_ = cfg.find_user(login_->user);
  login_->user_known = user_config_ != nullptr;
  transition(ClientState::Authenticating);
  return start_auth();
}

Result<void> ClientSession::start_auth() {
  wire::WriteBuffer& out = host_.scratch();
  out.clear();
  const bool known = login_->user_known;
  if (known && user_config_->auth == config::AuthMethod::Trust) {
    return finish_auth();
  }
  if (known && user_config_->auth == config::AuthMethod::Md5) {
    wire::random_bytes(login_->md5_salt);
    wire::encode_auth_md5(login_->md5_salt, out);
  } else {
    // SCRAM, also for unknown users: a verifier nobody can match, so the answer is the
    // same "password authentication failed" whether the user exists or not.
    login_->scram = std::make_unique<wire::ScramServer>(
        known ? host_.scram_verifier(*user_config_)
                    : wire::scram_verifier_for_plaintext(std::to_string(id_) + "-no-such-user"));
    const std::string_view mechs[] = {"SCRAM-SHA-256"};
    wire::encode_auth_sasl(mechs, out);
  }
  write(out.data());
  return {};
}

Result<void> ClientSession::handle_auth(const wire::Frame& frame) {
  const std::string failed = "password authentication failed for user \"" + login_->user + "\"";
  auto& scram = login_->scram;
  if (frame.type != 'p') {
    return fail(Errc::Protocol, std::string("expected password response, got message type '") +
                                    frame.type + "'");
  }
  if (!scram) {  // md5
    auto password = wire::decode_password(frame);
    if (!password) {
      return std::unexpected(password.error());
    }
    const std::string expected =
        wire::md5_salted_response(user_config_->password, login_->user, login_->md5_salt);
    if (*password != expected) {
      spdlog::info("client {} {}: {}", id_, peer(), failed);
      return fail(Errc::Auth, failed);
    }
    return finish_auth();
  }
  wire::WriteBuffer& out = host_.scratch();
  out.clear();
  if (!scram->authenticated() && !login_->scram_started) {
    auto initial = wire::decode_sasl_initial_response(frame);
    if (!initial) {
      return std::unexpected(initial.error());
    }
    if (initial->mechanism != "SCRAM-SHA-256") {
      return fail(Errc::Protocol, "client selected an invalid SASL authentication mechanism");
    }
    auto server_first = scram->on_client_first(initial->data);
    if (!server_first) {
      return std::unexpected(server_first.error());
    }
    login_->scram_started = true;
    wire::encode_auth_sasl_continue(*server_first, out);
    write(out.data());
    return {};
  }
  const std::string_view data(reinterpret_cast<const char*>(frame.body.data()), frame.body.size());
  auto server_final = scram->on_client_final(data);
  if (!server_final || !login_->user_known) {
    spdlog::info("client {} {}: {}", id_, peer(), failed);
    return fail(Errc::Auth, failed);
  }
  wire::encode_auth_sasl_final(*server_final, out);
  write(out.data());
  return finish_auth();
}

Result<void> ClientSession::finish_auth() {
  if (login_->admin) {
    return finish_admin_auth();
  }
  wire::WriteBuffer& out = host_.scratch();
  out.clear();
  wire::encode_auth_ok(out);
  write(out.data());
  mode_ = user_config_->pool_mode.value_or(db_config_->pool_mode);
  pool_ = host_.pool_for(*db_config_, *user_config_, primary_host());
  if (pool_ == nullptr) {
    return fail(Errc::Internal, "no pool for database \"" + db_config_->name + "\"");
  }
  auto& scram = login_->scram;
  if (scram && scram->authenticated() && !pool_->has_credentials()) {
    // Only a verifier is configured: the client's proof gives the keys pgmux needs to log
    // in to PostgreSQL as this user, without ever knowing the password.
    pool_->set_scram_keys(scram->client_key(), host_.scram_verifier(*user_config_).server_key);
  }
  login_.reset();
  std::array<std::uint8_t, 4> secret{};
  wire::random_bytes(secret);
  std::memcpy(&cancel_secret_, secret.data(), 4);
  transition(ClientState::WaitingForParams);
  pool_->wait_for_server_params(*this);
  return {};
}

void ClientSession::on_server_params_ready() {
  if (state_ != ClientState::WaitingForParams) {
    return;
  }
  send_login_params();
  transition(ClientState::Idle);
  SPDLOG_DEBUG("client {} {}: logged in as {} to {}", id_, peer(), user(), database());
  stream_.resume_reading();
  process_buffered();
}

void ClientSession::send_login_params() {
  wire::WriteBuffer& out = host_.scratch();
  out.clear();
  for (const auto& [name, value] : pool_->server_params()) {
    std::string_view v = value;
    for (const auto& [k, mine] : startup_->reported) {
      if (k.size() == name.size() &&
          std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
          })) {
        v = mine;
      }
    }
    wire::encode(wire::ParameterStatus{name, v}, out);
  }
  wire::encode(wire::BackendKeyData{cancel_pid(), cancel_secret_}, out);
  wire::encode(wire::ReadyForQuery{wire::TxStatus::Idle}, out);
  write(out.data());
}

// ---- Requests while no backend is leased ----

// ---- Admin console ----

Result<void> ClientSession::finish_admin_auth() {
  const auto& admins = config_->general.admin_users;
  if (std::find(admins.begin(), admins.end(), user_config_->name) == admins.end()) {
    spdlog::info("client {} {}: user \"{}\" refused on the admin console", id_, peer(),
                 user_config_->name);
    return fail(Errc::Auth, "not allowed to connect to the admin console",
                ss::kInvalidAuthorization);
  }
  extras().admin = admin_factory_->make_admin_handler(*this);
  std::array<std::uint8_t, 4> secret{};
  wire::random_bytes(secret);
  std::memcpy(&cancel_secret_, secret.data(), 4);
  transition(ClientState::WaitingForParams);
  transition(ClientState::Idle);
  wire::WriteBuffer& out = host_.scratch();
  out.clear();
  wire::encode_auth_ok(out);
  const std::pair<std::string_view, std::string_view> params[] = {
      {"server_version", "15.0 (pgmux)"},
      {"server_encoding", "UTF8"},
      {"client_encoding", "UTF8"},
      {"DateStyle", "ISO, MDY"},
      {"integer_datetimes", "on"},
      {"standard_conforming_strings", "on"},
      {"application_name", "pgmux"},
  };
  for (const auto& [name, value] : params) {
    wire::encode(wire::ParameterStatus{name, value}, out);
  }
  wire::encode(wire::BackendKeyData{cancel_pid(), cancel_secret_}, out);
  wire::encode(wire::ReadyForQuery{wire::TxStatus::Idle}, out);
  write(out.data());
  spdlog::info("client {} {}: {} logged in to the admin console", id_, peer(), user());
  return {};
}

void ClientSession::handle_admin_frame(const wire::Frame& frame) {
  switch (frame.type) {
    case 'X': begin_close("client sent Terminate"); return;
    case 'Q': {
      auto query = wire::decode_query(frame);
      if (!query) {
        close_with_error(ss::kProtocolViolation, query.error().message);
        return;
      }
      extras_->admin->on_query(query->sql);
      return;
    }
    case 'S': {
      wire::WriteBuffer& out = host_.scratch();
      out.clear();
      wire::encode(wire::ReadyForQuery{wire::TxStatus::Idle}, out);
      write(out.data());
      return;
    }
    default:
      send_error("ERROR", ss::kFeatureNotSupported,
                 "the admin console supports only the simple query protocol");
      return;
  }
}

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
  consumed = false;  // forwarded once linked
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

void ClientSession::on_backend_leased(backend::BackendConn& backend) {
  if (state_ != ClientState::WaitingForBackend) {
    backend.pool().release(backend, true);
    return;
  }
  link(backend);
  stream_.resume_reading();
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
  const bool timeout = error.code == Errc::Timeout;
  send_error("ERROR",
             !error.sqlstate.empty() ? error.sqlstate
             : timeout               ? ss::kQueryCanceled
                                     : ss::kConnectionFailure,
             error.message);
  // The first buffered request gets the error; an extended-protocol one skips to Sync.
  auto frame = wire::peek_frame(inbuf_, wire::Phase::Regular, host_.config().general.max_message_size);
  if (frame && frame->has_value() && (**frame).type == 'Q') {
    const std::size_t n = (**frame).size_on_wire;
    inbuf_.erase(inbuf_.begin(), inbuf_.begin() + static_cast<std::ptrdiff_t>(n));
    wire::WriteBuffer& out = host_.scratch();
    out.clear();
    wire::encode(wire::ReadyForQuery{client_tx_}, out);
    write(out.data());
  } else {
    skip_until_sync_ = true;
  }
  stream_.resume_reading();
  process_buffered();
}

void ClientSession::link(backend::BackendConn& backend) {
  backend_ = &backend;
  backend.attach(this, net::now_ms(host_.loop()));
  transition(ClientState::Linked);
  sync_settings();
}

// Brings the backend to this client's settings before its first request runs.
void ClientSession::sync_settings() {
  if (backend_->settings_hash == settings_->hash) {
    return;
  }
  std::string sql = "RESET ALL";
  if (!settings_->items.empty()) {
    std::string selects;
    std::string sets;
    for (const auto& [name, stmt] : settings_->items) {
      if (stmt.starts_with("set_config(")) {
        selects += selects.empty() ? "; SELECT " : ", ";
        selects += stmt;
      } else {
        sets += "; ";
        sets += stmt;
      }
    }
    sql += selects;
    sql += sets;
  }
  wire::WriteBuffer& out = host_.scratch();
  out.clear();
  wire::encode(wire::Query{sql}, out);
  backend_->expected().expect_hidden(backend::Reply::Query);
  backend_->send(out.data());
  backend_->settings_hash = settings_->hash;
  ++host_.counters().settings_syncs;
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
    if (extras_ && renames_statements()) {
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

namespace {

// A text that may concern pgmux's own bookkeeping, judged by its first keyword and by the
// two function families that matter from anywhere in a statement. Most queries (SELECT,
// INSERT, UPDATE ...) are rejected after a few byte compares.
bool worth_scanning(std::string_view sql) {
  std::size_t i = 0;
  while (i < sql.size() && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' ||
                            sql[i] == '\r' || sql[i] == '(')) {
    ++i;
  }
  if (i < sql.size() && (sql[i] == '/' || sql[i] == '-')) {
    return true;  // a leading comment: let the scanner skip it
  }
  const std::string_view rest = sql.substr(i);
  // Several statements (a ';' followed by more than blanks): each may pin or change
  // settings. A lone trailing ';', as pgbench sends, is not that.
  if (const auto semi = rest.find(';'); semi != std::string_view::npos &&
                                        rest.find_first_not_of(" \t\r\n;", semi) !=
                                            std::string_view::npos) {
    return true;
  }
  auto starts_with_keyword = [&](std::string_view kw) {
    return rest.size() > kw.size() &&
           std::equal(kw.begin(), kw.end(), rest.begin(),
                      [](char a, char b) { return a == (b | 0x20); }) &&
           !std::isalnum(static_cast<unsigned char>(rest[kw.size()])) && rest[kw.size()] != '_';
  };
  static constexpr std::string_view kKeywords[] = {
      "set",    "reset", "discard", "deallocate", "listen", "unlisten",
      "create", "close", "prepare", "execute",    "declare"};
  for (const std::string_view kw : kKeywords) {
    if (starts_with_keyword(kw)) {
      return true;
    }
  }
  // SELECT ... INTO TEMP makes a temporary table.
  if ((starts_with_keyword("select") || starts_with_keyword("with")) &&
      (rest.find("into") != std::string_view::npos || rest.find("INTO") != std::string_view::npos)) {
    return true;
  }
  return rest.find("dvisory_") != std::string_view::npos ||
         rest.find("DVISORY_") != std::string_view::npos ||
         rest.find("et_config") != std::string_view::npos ||
         rest.find("ET_CONFIG") != std::string_view::npos;
}

std::string error_bytes(std::string_view sqlstate, std::string message) {
  wire::WriteBuffer out;
  wire::ErrorResponse err;
  err.sqlstate = std::string(sqlstate);
  err.message = std::move(message);
  wire::encode(err, out);
  return {reinterpret_cast<const char*>(out.data().data()), out.size()};
}

std::string message_bytes(char type, std::string_view tag) {
  wire::WriteBuffer out;
  if (type == 'C') {
    wire::encode(wire::CommandComplete{tag}, out);
  } else {
    (void)out.begin_message(type);
  }
  return {reinterpret_cast<const char*>(out.data().data()), out.size()};
}

}  // namespace

ClientSession::Action ClientSession::handle_query(const wire::Frame& frame, wire::WriteBuffer& repl) {
  auto q = wire::decode_query(frame);
  if (!q) {
    close_with_error(ss::kProtocolViolation, q.error().message);
    return Action::Drop;
  }
  ++backend_->queries;
  ++host_.counters().queries;
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
  return Action::Forward;
}

// "SELECT set_config(...), ..." for the startup parameters a RESET / RESET ALL undid.
std::string ClientSession::startup_restore_sql(const QueryScan& scan) const {
  std::string sql;
  for (const auto& [name, stmt] : startup_->items) {
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
    return Action::Forward;
  }
  ensure_prepared(it->second, repl);
  char name_buf[32];
  wire::encode(wire::Bind{b->portal, server_statement_name(it->second, name_buf), b->rest}, repl);
  backend_->expected().expect(backend::Reply::BindComplete, it->second);
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

// ---- Replies ----

void ClientSession::on_backend_data(std::span<const std::byte> bytes) {
  write(bytes);
  if (stream_.queued_bytes() > net::TcpStream::kHighWater && backend_ != nullptr) {
    // The client reads slower than the server answers: stop reading the server until the
    // client catches up, so a huge result never sits in pgmux's memory.
    backend_->pause_reading();
  }
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

void ClientSession::on_write_drained() {
  if (backend_ != nullptr) {
    backend_->resume_reading();
  }
}

void ClientSession::on_backend_writable() { stream_.resume_reading(); }

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

// A pinned client's transaction ended: ask the backend whether what pinned it is still
// there (the temporary table may have been dropped, the channel unlistened, the lock
// released or never taken), so the client is unpinned as soon as it can be.
void ClientSession::probe_pins() {
  static constexpr std::string_view kProbe =
      "SELECT (SELECT count(*) FROM pg_listening_channels())"
      " + (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())"
      " + (SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema())"
      " + (SELECT count(*) FROM pg_cursors WHERE is_holdable)"
      " + (SELECT count(*) FROM pg_prepared_statements WHERE name NOT LIKE 'pgmux\\_%')";
  send_probe(kProbe, Probe::Pins);
}

// The session's settings as the server has them, after something changed them that pgmux
// could not follow from the text: they become the settings that follow the client.
void ClientSession::probe_settings() {
  static constexpr std::string_view kProbe =
      "SELECT 'ok:' || coalesce(string_agg(name || chr(30) || format('set_config(%L, %L, false)', "
      "name, setting), chr(31) ORDER BY name), '') FROM pg_settings WHERE source = 'session'";
  send_probe(kProbe, Probe::Settings);
}

void ClientSession::send_probe(std::string_view sql, Probe kind) {
  wire::WriteBuffer out;
  wire::encode(wire::Query{sql}, out);
  backend::HiddenOptions options;
  options.probe = true;
  options.tolerate_error = true;
  backend_->expected().expect_hidden(backend::Reply::Query, 0, options);
  backend_->send(out.data());
  probes_ = static_cast<std::uint8_t>(probes_ | (static_cast<unsigned>(kind) << (2 * probe_count_)));
  ++probe_count_;
}

void ClientSession::on_probe_result(std::string_view value) {
  if (probe_count_ == 0) {
    return;
  }
  const auto kind = static_cast<Probe>(probes_ & 3);
  probes_ = static_cast<std::uint8_t>(probes_ >> 2);
  --probe_count_;
  if (kind == Probe::Pins) {
    if (value == "0" && pins_ != 0) {
      SPDLOG_DEBUG("client {}: unpinned ({} no longer held)", id_, to_string_pins(pins_));
      pins_ = 0;
    }
    return;
  }
  if (!value.starts_with("ok:")) {
    // The probe failed: nothing is known of this backend's settings.
    if (backend_ != nullptr) {
      backend_->settings_hash = backend::kSettingsUnknown;
    }
    return;
  }
  value.remove_prefix(3);
  auto next = std::make_shared<SessionSettings>();
  next->reported = startup_->reported;
  while (!value.empty()) {
    const auto end = value.find('\x1f');
    const std::string_view item = value.substr(0, end);
    if (const auto sep = item.find('\x1e'); sep != std::string_view::npos) {
      next->items.emplace_back(std::string(item.substr(0, sep)), std::string(item.substr(sep + 1)));
    }
    value = end == std::string_view::npos ? std::string_view() : value.substr(end + 1);
  }
  std::sort(next->items.begin(), next->items.end());
  next->hash = hash_settings(next->items);
  settings_ = std::move(next);
  if (backend_ != nullptr) {
    backend_->settings_hash = settings_->hash;
  }
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

void ClientSession::on_backend_ready(bool visible) {
  if (backend_ == nullptr) {
    return;
  }
  if (visible && extras_) {
    extras_->retried = false;
  }
  if (!visible) {
    // pgmux's own statement finished (after the client's): only the release may be due.
    if (!settings_failed_ && mode_ != config::PoolMode::Session && pins_ == 0 &&
        backend_->is_releasable()) {
      release_backend();
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

// ---- Settings ----

void ClientSession::reset_settings() { settings_ = startup_; }

void ClientSession::apply_setting(const QueryScan& scan) {
  switch (scan.effect) {
    case SessionEffect::Set: {
      auto next = std::make_shared<SessionSettings>(*settings_);
      upsert(next->items, scan.name, scan.statement);
      std::sort(next->items.begin(), next->items.end());
      next->hash = hash_settings(next->items);
      settings_ = std::move(next);
      if (backend_ != nullptr) {
        backend_->settings_hash = settings_->hash;  // it ran the SET itself
      }
      return;
    }
    case SessionEffect::Reset: {
      auto next = std::make_shared<SessionSettings>(*settings_);
      std::erase_if(next->items, [&](const auto& s) { return s.first == scan.name; });
      for (const auto& s : startup_->items) {
        if (s.first == scan.name) {
          upsert(next->items, s.first, s.second);
        }
      }
      std::sort(next->items.begin(), next->items.end());
      next->hash = hash_settings(next->items);
      settings_ = std::move(next);
      break;
    }
    case SessionEffect::ResetAll:
      reset_settings();
      break;
    case SessionEffect::DiscardAll:
      // It ran on this backend (pinned client): the backend dropped its own state.
      reset_settings();
      pins_ = 0;
      return;
    case SessionEffect::DeallocateAll:
    case SessionEffect::Deallocate:
    case SessionEffect::SqlPrepare:
    case SessionEffect::SqlExecute:
    case SessionEffect::None: return;
  }
  // The RESET ran on this backend, followed by pgmux's restore of the startup values.
  if (backend_ != nullptr) {
    backend_->settings_hash = renames_statements() ? settings_->hash : backend::kSettingsUnknown;
  }
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
  // Only the client's own work is cancelled, never a statement pgmux runs itself.
  if (backend_ != nullptr && !backend_->expected().empty() && !backend_->expected().front_hidden()) {
    backend_->pool().cancel_query(*backend_);
  }
}

void ClientSession::send_error(std::string_view severity, std::string_view sqlstate,
                               const std::string& message) {
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

void ClientSession::on_error(const Error& error) { begin_close(error.message); }

void ClientSession::write(std::span<const std::byte> bytes) {
  host_.counters().bytes_out += bytes.size();
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
