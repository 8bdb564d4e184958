#pragma once
// One client connection: startup, authentication, then requests multiplexed onto leased
// backends. Owned by its worker (by id); deleted through deferred deletion. Loop thread only.

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "pooler/backend/backend_listener.h"
#include "pooler/base/compact_bytes.h"
#include "pooler/backend/pool.h"
#include "pooler/client/client_state.h"
#include "pooler/client/query_scan.h"
#include "pooler/client/session_host.h"
#include "pooler/net/tcp_stream.h"
#include "pooler/wire/messages.h"
#include "pooler/wire/scram.h"
#include "router/route.h"

struct uv_stream_s;

namespace pooler::client {

// The admin console behind the virtual databases "pgmux" and "pgbouncer". admin/
// implements it (client/ cannot depend on admin/); one per admin client, owned by its
// session. Loop thread only.
class AdminHandler {
 public:
  virtual ~AdminHandler() = default;
  virtual void on_query(std::string_view sql) = 0;  // one simple Query (F 'Q')
};

class AdminFactory {
 public:
  virtual std::unique_ptr<AdminHandler> make_admin_handler(ClientSession& session) = 0;

 protected:
  ~AdminFactory() = default;
};

class ClientSession final : public net::Deletable,
                            private net::StreamEvents,
                            private backend::BackendListener,
                            private backend::PoolWaiter {
 public:
  ClientSession(SessionHost& host, std::uint64_t id, std::uint32_t slot);
  ~ClientSession() override;

  [[nodiscard]] Result<void> accept(uv_stream_s* server);

  std::uint64_t id() const { return id_; }
  std::uint32_t slot() const { return slot_; }
  ClientState state() const { return state_; }
  std::string peer() const { return stream_.peer(); }
  const net::TlsSession* tls() const { return stream_.tls(); }  // null in plaintext
  std::string_view user() const;
  std::string_view database() const;
  std::uint8_t pins() const { return pins_; }
  std::int32_t cancel_pid() const;
  std::int32_t cancel_secret() const { return cancel_secret_; }
  std::uint64_t connected_ms() const { return connected_ms_; }
  const backend::BackendConn* backend() const { return backend_; }
  // No backend and no transaction open (a held-back BEGIN is one, though it has no backend).
  bool is_idle_between_transactions() const { return state_ == ClientState::Idle && !held_begin_; }
  // Loop clock of the last bytes received from the client.
  std::uint64_t last_activity_ms() const { return last_activity_ms_; }
  bool is_admin() const { return extras_ && extras_->admin; }
  // Output of the admin console: messages it encoded for this client.
  void admin_write(std::span<const std::byte> bytes) { write(bytes); }

  // Periodic timeout checks (about once a second).
  void tick(std::uint64_t now_ms);
  // A CancelRequest for this client arrived (on any worker) with the right secret.
  void cancel_running_query();
  // auth_query answered: the user as PostgreSQL knows it, or nullptr (no such user).
  void on_user_looked_up(std::shared_ptr<const config::UserConfig> user);
  // max_user_query_rate: the throttled request may go on (`granted`), or it waited too long.
  void on_throttle_end(bool granted);
  // SUSPEND/RESUME: stop (or start again) reading from the client and its backend.
  void set_suspended(bool suspended);
  // Bytes still to be written to the client and to its backend (SUSPEND waits for 0).
  std::size_t unflushed_bytes() const;
  // Ends the session with a FATAL error (shutdown, admin KILL, timeouts).
  void close_with_error(std::string_view sqlstate, const std::string& message);

 private:
  // net::StreamEvents
  void on_read(std::span<const std::byte> bytes) override;
  void on_eof() override;
  void on_error(const Error& error) override;
  void on_write_drained() override;
  void on_tls_ready() override;
  // backend::BackendListener
  void on_backend_writable() override;
  bool on_plan_changed() override;
  bool on_read_only_violation() override;
  void on_backend_data(std::span<const std::byte> bytes) override;
  void on_backend_ready(bool visible) override;
  void on_statement_prepared(std::uint64_t id) override;
  void on_client_parse_done(bool ok) override;
  void on_probe_result(std::string_view value) override;
  void probe_pins();
  void probe_settings();
  enum class Probe : std::uint8_t { Pins = 1, Settings = 2 };
  void send_probe(std::string_view sql, Probe kind);
  void on_backend_command_complete(std::string_view tag) override;
  void on_backend_hidden_error(std::string_view message, std::string_view sqlstate) override;
  void on_backend_error(std::string_view sqlstate) override { host_.counters().count_error(sqlstate); }
  void on_backend_lost(const Error& error) override;
  // backend::PoolWaiter
  void on_backend_leased(backend::BackendConn& backend) override;
  void on_lease_failed(const Error& error) override;
  // The first buffered request gets `error` (an extended-protocol one then skips to Sync).
  void fail_first_request(const Error& error);
  void on_server_params_ready() override;

  void transition(ClientState to);
  // Consumes complete frames from `in` as the state allows; returns the bytes used.
  std::size_t process(std::span<const std::byte> in);
  void process_buffered();
  // Parse/Close of named statements then Sync, with no backend: pgmux answers them itself
  // when every statement is already known to be valid. Returns the bytes used (0: no).
  std::size_t answer_prepare_without_backend(std::span<const std::byte> in);

  // Startup and authentication.
  // `trailing`: bytes the client sent after this packet (none may follow an SSLRequest).
  Result<void> handle_startup(const wire::Frame& frame, std::size_t trailing);
  Result<void> answer_ssl_request(std::size_t trailing);
  void start_direct_tls(std::span<const std::byte> client_hello);
  Result<void> check_client_tls(const config::Config& cfg);
  Result<void> verify_client_certificate(std::string_view cn) const;
  Result<void> start_auth();
  Result<config::AuthMethod> auth_method() const;
  Result<void> handle_auth(const wire::Frame& frame);
  // `auth_tail`: the last authentication message (SCRAM's final), sent in the same write
  // as AuthenticationOk and what follows it.
  Result<void> finish_auth(std::span<const std::byte> auth_tail = {});
  Result<void> finish_admin_auth();
  void handle_admin_frame(const wire::Frame& frame);
  void append_login_params(wire::WriteBuffer& out);
  void logged_in();

  // Requests.
  void handle_idle_frame(const wire::Frame& frame, bool& consumed);
  void link(backend::BackendConn& backend);
  // Read/write routing (client_routing.cpp): the pool the request in `frame` goes to, or
  // nullptr after answering the client with an error.
  backend::Pool* route(const wire::Frame& frame);
  int primary_host() const;
  router::SessionView session_view();
  void note_write_done();
  bool hold_back_begin(const wire::Frame& frame);
  std::size_t forward_frames(std::span<const std::byte> in);
  void record_for_retry(std::span<const std::byte> frame, char type);
  void sync_settings();
  // What to do with one client frame: forward its bytes unchanged, or replace them with
  // what the handler wrote to `repl` (possibly nothing).
  enum class Action : std::uint8_t { Forward, Replace, Drop };
  Action handle_query(const wire::Frame& frame, wire::WriteBuffer& repl);
  Action handle_parse(const wire::Frame& frame, wire::WriteBuffer& repl);
  Action handle_bind(const wire::Frame& frame, wire::WriteBuffer& repl);
  Action handle_describe(const wire::Frame& frame, wire::WriteBuffer& repl);
  Action handle_close(const wire::Frame& frame, wire::WriteBuffer& repl);
  Action handle_sql_prepared(const QueryScan& scan, wire::WriteBuffer& repl);
  // Records `id` on the backend, closing the least recently used statement if full.
  void evict_for(std::uint64_t id, wire::WriteBuffer& repl);
  // Makes sure the backend has statement `id`, injecting a hidden Parse if not.
  void ensure_prepared(std::uint64_t id, wire::WriteBuffer& out);
  void release_backend();
  void answer_locally(std::string_view tag);  // CommandComplete + ReadyForQuery from pgmux
  void apply_setting(const QueryScan& scan);
  std::string startup_restore_sql(const QueryScan& scan) const;
  void reset_settings();
  bool renames_statements() const;

  // Per-shape statistics and index-advice samples (client_stats.cpp).
  void count_query(std::string_view sql);
  void count_unnamed_parse(std::string_view sql, std::span<const std::byte> param_types);
  void count_bind(const wire::Bind& bind, std::uint64_t statement_id);
  void finish_timed_requests();
  void log_request(const backend::RequestTimer::Entry& entry, std::uint64_t elapsed_ns);
  std::uint32_t shape_slot(const parser::Analysis& analysis, std::uint64_t& key);
  advice::Sample make_sample(const advice::ShapeRow& row, std::string_view sql);

  void resume_client_reading();
  void send_error(std::string_view severity, std::string_view sqlstate, const std::string& message);
  void write(std::span<const std::byte> bytes);
  void begin_close(std::string reason);

  // What only the startup and authentication phase needs; freed once logged in.
  struct LoginState {
    std::string user;
    std::string database;
    std::unique_ptr<wire::ScramServer> scram;
    std::array<std::uint8_t, 4> md5_salt{};
    bool user_known = false;
    bool scram_started = false;
    bool admin = false;  // database "pgmux" or "pgbouncer"
    bool looking_up = false;  // auth_query in flight: no auth request sent yet
  };
  // What only some clients need (prepared statements, SETs being tracked): allocated on
  // first use, so an idle client stays small.
  struct Extras {
    StringMap<std::uint64_t> statements;  // client name -> registry id (pooled modes)
    QueryScan pending_effect;             // a SET/RESET in flight, applied on success
    std::vector<QueryScan> tx_effects;    // SETs inside an open transaction
    std::string last_tag;
    // The client's named Parses sent and not yet answered, in order: a refused or skipped
    // one takes its name away again, as PostgreSQL never created it.
    std::deque<std::pair<std::string, std::uint64_t>> pending_parses;
    std::unique_ptr<AdminHandler> admin;  // set for admin console clients
    // The messages since the last Sync, as the client sent them: sent again once if a
    // statement's cached plan changed result type before any reply reached the client.
    std::vector<std::byte> group;
    bool group_closed = true;   // the last message recorded was a Sync
    bool group_too_big = false;
    bool retried = false;       // this group was already sent again
    // Per-shape statistics of the unnamed statement last parsed (client_stats.cpp).
    std::int64_t unnamed_slot = -1;
    std::uint64_t unnamed_key = 0;
    std::unique_ptr<advice::Sample> unnamed_sample;  // its sample, waiting for the Bind
    // Read-your-writes (databases with replicas): when the last write ended, and an LSN at
    // or past its commit, once known.
    std::uint64_t write_done_ns = 0;
    std::uint64_t commit_lsn = 0;
    // A user found by auth_query (user_config_ points here).
    std::shared_ptr<const config::UserConfig> looked_up_user;
  };
  Extras& extras();
  // The settings the client logged in with: what RESET restores.
  const std::shared_ptr<const SessionSettings>& startup_settings() const {
    return settings_->startup ? settings_->startup : settings_;
  }
  // A copy of the current settings to change, linked to the startup ones.
  std::shared_ptr<SessionSettings> derive_settings() const {
    auto next = std::make_shared<SessionSettings>(*settings_);
    next->startup = startup_settings();
    return next;
  }
  bool tracking_effects() const {
    return pending_unpins_ != 0 ||
           (extras_ && (extras_->pending_effect.effect != SessionEffect::None ||
                        !extras_->tx_effects.empty()));
  }

  // One-byte fields first: they fill the tail padding of the PoolWaiter base. An idle
  // client is this object plus its uv handle; keep it within a 256-byte malloc chunk
  // (static_assert in client_session.cpp).
  ClientState state_ = ClientState::AwaitingStartup;
  config::PoolMode mode_ = config::PoolMode::Transaction;
  std::uint8_t pins_ = 0;
  std::uint8_t pending_unpins_ = 0;
  bool direct_tls_ = false;          // TLS from the first byte (PostgreSQL 17), not after SSLRequest
  bool skip_until_sync_ = false;     // no backend: answer Sync with ReadyForQuery only
  bool discard_until_sync_ = false;  // linked: pgmux answered an error; drop until Sync
  bool settings_failed_ = false;
  bool settings_dirty_ = false;  // changed in a way only the server can tell: probe them
  std::uint8_t probes_ = 0;      // kinds of the probes in flight, 2 bits each, oldest lowest
  std::uint8_t probe_count_ = 0;
  wire::TxStatus client_tx_ = wire::TxStatus::Idle;
  bool lease_is_write_ = false;    // the current lease was routed to the primary to write
  bool lease_on_replica_ = false;  // the current lease is on a replica
  bool retry_on_primary_ = false;  // a replica refused a write: run it again on the primary
  bool force_primary_ = false;     // the next lease goes to the primary, whatever it is
  bool held_begin_ = false;        // pgmux answered a lone BEGIN; it runs at the next lease
  bool rate_token_ = false;        // the throttle granted the next request its token
  bool user_counted_ = false;      // counted for max_user_client_connections
  SessionHost& host_;
  std::uint64_t id_;
  std::uint32_t slot_;
  std::int32_t cancel_secret_ = 0;
  net::TcpStream stream_;
  std::shared_ptr<const config::Config> config_;  // keeps db_config_/user_config_ alive
  const config::DatabaseConfig* db_config_ = nullptr;
  const config::UserConfig* user_config_ = nullptr;
  backend::Pool* pool_ = nullptr;        // the primary's pool at login: server parameters
  backend::Pool* lease_pool_ = nullptr;  // the pool of the current lease or wait
  backend::BackendConn* backend_ = nullptr;
  CompactBytes inbuf_;  // an incomplete frame, or frames waiting for a backend
  std::uint64_t connected_ms_ = 0;
  std::uint64_t last_activity_ms_ = 0;
  std::unique_ptr<LoginState> login_;
  std::unique_ptr<Extras> extras_;
  // Settings that follow the client from backend to backend. Clients with the same
  // startup parameters share one object; a SET makes this client its own copy, which
  // points back to the startup one.
  std::shared_ptr<const SessionSettings> settings_;
};

}  // namespace pooler::client
