// ClientSession: the startup packet, authentication, and the login answer (also for the
// admin console).

#include "pooler/client/client_session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "pooler/client/client_session_util.h"
#include "pooler/net/timer.h"
#include "pooler/net/tls_session.h"
#include "pooler/wire/md5_auth.h"
#include "pooler/wire/sqlstate.h"

namespace pooler::client {

using namespace session_util;

Result<void> ClientSession::handle_startup(const wire::Frame& frame, std::size_t trailing) {
  auto pkt = wire::decode_startup(frame);
  if (!pkt) {
    return std::unexpected(pkt.error());
  }
  switch (pkt->kind) {
    case wire::StartupKind::SslRequest: return answer_ssl_request(trailing);
    case wire::StartupKind::GssEncRequest: {
      // No GSSAPI: 'N' tells the client to continue without it, as PostgreSQL does.
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
  settings_ = host_.intern_settings(std::move(settings));
  config_ = host_.config_snapshot();
  const config::Config& cfg = *config_;
  if (auto ok = check_client_tls(cfg); !ok) {
    return ok;
  }
  if ((login_->database == "pgmux" || login_->database == "pgbouncer") &&
      host_.admin_factory() != nullptr && cfg.find_database(login_->database) == nullptr) {
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
  if (user_config_ == nullptr && db_config_->auth_user) {
    // Not configured: ask PostgreSQL (auth_query) before choosing how to authenticate.
    login_->looking_up = true;
    host_.lookup_user(*this, *db_config_, login_->user);
    return {};
  }
  return start_auth();
}

void ClientSession::on_user_looked_up(std::shared_ptr<const config::UserConfig> user) {
  if (state_ != ClientState::Authenticating || !login_ || !login_->looking_up) {
    return;
  }
  login_->looking_up = false;
  if (user) {
    user_config_ = user.get();
    extras().looked_up_user = std::move(user);
  }
  login_->user_known = user_config_ != nullptr;
  if (auto ok = start_auth(); !ok) {
    close_with_error(ss::kProtocolViolation, ok.error().message);
  }
}

// [[hba]]: the first rule matching the database, user and client address decides how this
// login authenticates (the user's own `auth` when there are no rules).
Result<config::AuthMethod> ClientSession::auth_method() const {
  const bool known = login_->user_known;
  const config::AuthMethod own = known ? user_config_->auth : config::AuthMethod::ScramSha256;
  if (config_->hba.empty()) {
    return own;
  }
  const std::string peer_text = peer();
  // A Unix socket has no address: only address-less rules match it.
  const std::string_view ip = peer_text == "unix" ? std::string_view() : net::peer_address(peer_text);
  const std::string where = "user \"" + login_->user + "\", database \"" + login_->database +
                            "\", address " + (ip.empty() ? std::string("unix socket") : std::string(ip));
  const config::HbaRule* rule = config::match_hba(config_->hba, login_->database, login_->user, ip);
  if (rule == nullptr) {
    return fail(Errc::Auth, "no [[hba]] rule allows " + where, ss::kInvalidAuthorization);
  }
  using M = config::HbaRule::Method;
  switch (rule->method) {
    case M::Reject:
      return fail(Errc::Auth, "[[hba]] rule #" + std::to_string(rule->index) + " rejects " + where,
                  ss::kInvalidAuthorization);
    case M::Cert: {
      // As PostgreSQL's cert method: a client certificate that client_tls_ca_file signed,
      // whose CN is the user name, stands in for the password.
      auto ok = verify_client_certificate(login_->user);
      if (!ok) {
        return fail(Errc::Auth,
                    "[[hba]] rule #" + std::to_string(rule->index) +
                        " asks for a TLS client certificate: " + ok.error().message,
                    ss::kInvalidAuthorization);
      }
      return config::AuthMethod::Trust;
    }
    case M::Trust: return config::AuthMethod::Trust;
    case M::ScramSha256: return config::AuthMethod::ScramSha256;
    case M::Md5:
      if (known && user_config_->password_kind == config::PasswordKind::ScramSha256) {
        return fail(Errc::Auth,
                    "[[hba]] rule #" + std::to_string(rule->index) + " asks for md5, and user \"" +
                        login_->user + "\" has only a SCRAM verifier",
                    ss::kInvalidAuthorization);
      }
      return config::AuthMethod::Md5;
  }
  return own;
}

// ---- TLS ----

// SSLRequest (F): 'S' and a TLS handshake when pgmux has a certificate, else 'N'.
Result<void> ClientSession::answer_ssl_request(std::size_t trailing) {
  if (stream_.tls() != nullptr) {
    return fail(Errc::Protocol, "SSLRequest received after the TLS handshake");
  }
  const net::TlsSetup& tls = host_.tls();
  const std::byte answer = tls.for_clients != nullptr ? std::byte{'S'} : std::byte{'N'};
  if (answer == std::byte{'S'} && trailing > 0) {
    // As PostgreSQL: plaintext sent before the handshake could have been injected by a
    // man in the middle, to run as the encrypted session.
    return fail(Errc::Protocol, "received unencrypted data after SSL request");
  }
  write(std::span(&answer, 1));
  if (answer == std::byte{'N'}) {
    return {};
  }
  auto session = net::TlsSession::make(*tls.for_clients);
  if (!session) {
    return std::unexpected(session.error());
  }
  stream_.start_tls(std::move(*session));
  return {};
}

// PostgreSQL 17's direct TLS: the connection opens with a ClientHello, no SSLRequest.
void ClientSession::start_direct_tls(std::span<const std::byte> client_hello) {
  const net::TlsSetup& tls = host_.tls();
  if (tls.for_clients == nullptr) {
    spdlog::info("client {} {}: direct TLS connection, but TLS is not configured", id_, peer());
    begin_close("direct TLS without a certificate");
    return;
  }
  auto session = net::TlsSession::make(*tls.for_clients);
  if (!session) {
    begin_close(session.error().message);
    return;
  }
  direct_tls_ = true;
  stream_.start_tls(std::move(*session), client_hello);
}

void ClientSession::on_tls_ready() {
  const net::TlsSession& tls = *stream_.tls();
  SPDLOG_DEBUG("client {} {}: {} {}", id_, peer(), tls.version(), tls.cipher());
  if (direct_tls_ && tls.alpn() != "postgresql") {
    // As PostgreSQL: ALPN is what tells a direct TLS client apart from another protocol.
    close_with_error(ss::kProtocolViolation,
                     "received direct SSL connection request without ALPN protocol negotiation "
                     "extension");
  }
}

// The client_tls_sslmode of the database the client names ([pgmux]'s for the admin
// console and unknown databases): require refuses plaintext, verify-ca and verify-full
// want a client certificate signed by client_tls_ca_file, verify-full with the user name
// as its common name.
Result<void> ClientSession::check_client_tls(const config::Config& cfg) {
  const config::DatabaseConfig* db = cfg.find_database(login_->database);
  const config::SslMode mode = db != nullptr ? db->tls.client_sslmode : cfg.general.tls.client_sslmode;
  if (mode < config::SslMode::Require) {
    return {};
  }
  const net::TlsSession* tls = stream_.tls();
  if (tls == nullptr) {
    spdlog::info("client {} {}: refused: SSL required for database \"{}\"", id_, peer(),
                 login_->database);
    return fail(Errc::Auth, "SSL required", ss::kInvalidAuthorization);
  }
  if (mode < config::SslMode::VerifyCa) {
    return {};
  }
  auto ok = verify_client_certificate(mode == config::SslMode::VerifyFull ? login_->user
                                                                         : std::string_view());
  if (!ok) {
    spdlog::info("client {} {}: refused: {}", id_, peer(), ok.error().message);
    return std::unexpected(ok.error());
  }
  return {};
}

// The client's certificate against the client_tls_ca_file of the database it names
// ([pgmux]'s for the admin console and unknown databases); with `cn`, its common name too.
Result<void> ClientSession::verify_client_certificate(std::string_view cn) const {
  const net::TlsSession* tls = stream_.tls();
  if (tls == nullptr) {
    return fail(Errc::Auth, "connection requires a valid client certificate (TLS is off)",
                ss::kInvalidAuthorization);
  }
  const net::TlsSetup& setup = host_.tls();
  std::shared_ptr<const net::TlsTrust> trust = setup.admin_client_trust;
  if (const config::DatabaseConfig* db = config_->find_database(login_->database)) {
    auto it = setup.client_trust.find(db->name);
    trust = it != setup.client_trust.end() ? it->second : nullptr;
  }
  if (trust == nullptr) {
    return fail(Errc::Auth, "no client_tls_ca_file to check client certificates with",
                ss::kInvalidAuthorization);
  }
  auto ok = tls->verify_peer(*trust, cn);
  if (!ok) {
    return fail(Errc::Auth, ok.error().message, ss::kInvalidAuthorization);
  }
  return {};
}

Result<void> ClientSession::start_auth() {
  wire::WriteBuffer& out = host_.scratch();
  out.clear();
  const bool known = login_->user_known;
  const auto method = auth_method();
  if (!method) {
    spdlog::info("client {} {}: {}", id_, peer(), method.error().message);
    return std::unexpected(method.error());
  }
  if (known && *method == config::AuthMethod::Trust) {
    return finish_auth();
  }
  if (known && *method == config::AuthMethod::Md5) {
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
  if (login_->looking_up) {
    return fail(Errc::Protocol, "unexpected message before the authentication request");
  }
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
  return finish_auth(out.data());
}

Result<void> ClientSession::finish_auth(std::span<const std::byte> auth_tail) {
  // The end of a login goes out in one write, as PostgreSQL sends it: one wake-up of the
  // client instead of three (SASL final, AuthenticationOk, then the parameters).
  wire::WriteBuffer out;
  out.append(auth_tail);
  if (login_->admin) {
    if (!out.empty()) {
      write(out.data());
    }
    return finish_admin_auth();
  }
  if (!host_.admit_user(*user_config_, user_counted_)) {
    ++host_.counters().refused[4];  // app::Refusal::UserConns
    const int limit = user_config_->max_user_client_connections.value_or(
        host_.config().general.max_user_client_connections);
    if (!out.empty()) {
      write(out.data());  // authenticated, then refused, as PostgreSQL does
    }
    return std::unexpected(Error{Errc::PoolFull,
                                 "too many connections for user \"" + user_config_->name +
                                     "\" (max_user_client_connections = " + std::to_string(limit) + ")",
                                 ss::kTooManyConnections});
  }
  wire::encode_auth_ok(out);
  mode_ = user_config_->pool_mode.value_or(db_config_->pool_mode);
  pool_ = host_.pool_for(*db_config_, *user_config_, primary_host());
  if (pool_ == nullptr) {
    write(out.data());
    return fail(Errc::Internal, "no pool for database \"" + db_config_->name + "\"");
  }
  auto& scram = login_->scram;
  if (scram && scram->authenticated() && !db_config_->server_user &&
      pool_->logs_in_with_scram_keys()) {
    // Only a verifier is configured: the client's proof gives the keys pgmux needs to log
    // in to PostgreSQL as this user, without ever knowing the password. Every login
    // refreshes them, so a password changed in PostgreSQL (auth_query) takes effect.
    pool_->set_scram_keys(scram->client_key(), host_.scram_verifier(*user_config_).server_key);
  }
  login_.reset();
  std::array<std::uint8_t, 4> secret{};
  wire::random_bytes(secret);
  std::memcpy(&cancel_secret_, secret.data(), 4);
  transition(ClientState::WaitingForParams);
  if (pool_->has_server_params()) {
    append_login_params(out);
    write(out.data());
    logged_in();
    return {};
  }
  // The first client of a pool waits for a server connection to learn the parameters.
  write(out.data());
  pool_->wait_for_server_params(*this);
  return {};
}

void ClientSession::on_server_params_ready() {
  if (state_ != ClientState::WaitingForParams) {
    return;
  }
  wire::WriteBuffer& out = host_.scratch();
  out.clear();
  append_login_params(out);
  write(out.data());
  logged_in();
}

void ClientSession::logged_in() {
  transition(ClientState::Idle);
  SPDLOG_DEBUG("client {} {}: logged in as {} to {}", id_, peer(), user(), database());
  if (host_.suspended()) {
    set_suspended(true);  // logged in during SUSPEND: its queries wait for RESUME
    return;
  }
  resume_client_reading();
  process_buffered();
}

void ClientSession::append_login_params(wire::WriteBuffer& out) {
  for (const auto& [name, value] : pool_->server_params()) {
    std::string_view v = value;
    for (const auto& [k, mine] : startup_settings()->reported) {
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
}

Result<void> ClientSession::finish_admin_auth() {
  const auto& admins = config_->general.admin_users;
  if (std::find(admins.begin(), admins.end(), user_config_->name) == admins.end()) {
    spdlog::info("client {} {}: user \"{}\" refused on the admin console", id_, peer(),
                 user_config_->name);
    return fail(Errc::Auth, "not allowed to connect to the admin console",
                ss::kInvalidAuthorization);
  }
  extras().admin = host_.admin_factory()->make_admin_handler(*this);
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

}  // namespace pooler::client
