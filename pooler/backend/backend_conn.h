#pragma once
// One connection from pgmux to PostgreSQL. Owned by its Pool; leased to one client at a
// time. It logs in, then scans reply frames by their headers, matches them against the
// replies it owes, and passes the client's share to its listener without copying.
// Loop thread only.

#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pooler/backend/backend_listener.h"
#include "pooler/backend/backend_state.h"
#include "pooler/backend/expected_replies.h"
#include "pooler/backend/request_timer.h"
#include "pooler/config/config.h"
#include "pooler/net/loop.h"
#include "pooler/net/tcp_stream.h"
#include "pooler/wire/messages.h"
#include "pooler/wire/scram.h"

namespace pooler::backend {

class Pool;

// settings_hash of a backend whose settings are not known to match any client.
inline constexpr std::uint64_t kSettingsUnknown = ~std::uint64_t{0};

// How pgmux logs in to PostgreSQL for one pool.
struct ServerLogin {
  std::string user;
  std::string database;
  std::string password;  // plaintext or "md5<hex>"; empty when only SCRAM keys are known
  bool has_scram_keys = false;
  std::array<std::uint8_t, 32> client_key{};  // learnt from a client's SCRAM proof
  std::array<std::uint8_t, 32> server_key{};
};

// TLS toward PostgreSQL (server_tls_sslmode). Not used over Unix sockets, as libpq.
struct ServerTls {
  config::SslMode mode = config::SslMode::Disable;
  std::shared_ptr<const net::TlsContext> context;  // set unless mode is disable
};

class BackendConn final : public net::Deletable,
                          private net::StreamEvents,
                          private ExpectedReplies::Sink {
 public:
  BackendConn(net::Loop& loop, Pool& pool, std::uint64_t id, config::HostPort address);
  ~BackendConn() override;

  // Starts connecting and logging in; the pool hears the outcome.
  void start(const ServerLogin& login, std::uint32_t max_message_size, const ServerTls& tls = {});

  std::uint64_t id() const { return id_; }
  Pool& pool() const { return pool_; }
  BackendState state() const { return state_; }
  const config::HostPort& address() const { return address_; }
  const net::TlsSession* tls() const { return stream_.tls(); }  // null in plaintext
  std::int32_t server_pid() const { return key_.pid; }
  std::int32_t server_secret() const { return key_.secret; }
  wire::TxStatus tx_status() const { return tx_status_; }
  const std::vector<std::pair<std::string, std::string>>& server_params() const {
    return server_params_;
  }
  std::uint64_t created_ms() const { return created_ms_; }
  std::uint64_t last_used_ms() const { return last_used_ms_; }
  std::string_view close_reason() const { return close_reason_; }

  // Leasing: the pool attaches a client; release detaches it.
  void attach(BackendListener* listener, std::uint64_t now_ms);
  void detach(std::uint64_t now_ms);
  BackendListener* listener() const { return listener_; }
  // Idle -> Active, Active -> Idle / Draining. Only the pool calls this.
  void transition(BackendState to);

  // Sending. Bytes go out as given; `expect*` records the replies they will produce.
  void send(std::span<const std::byte> bytes) { stream_.write(bytes); }
  ExpectedReplies& expected() { return expected_; }
  // True while a message of the extended protocol was sent without its Sync.
  bool unsynced = false;
  // True between CopyInResponse and the client's CopyDone/CopyFail.
  bool copy_in = false;
  // Reset (rollback, DISCARD ALL) before reuse: its client was pinned or in session mode.
  bool needs_reset = false;
  void pause_reading() { stream_.pause_reading(); }
  void resume_reading() { stream_.resume_reading(); }
  std::size_t queued_bytes() const { return stream_.queued_bytes(); }
  // Nothing owed, not in a transaction, no unfinished extended-protocol sequence.
  bool is_releasable() const {
    return expected_.empty() && tx_status_ == wire::TxStatus::Idle && !unsynced && !copy_in &&
           cancels_in_flight == 0;
  }
  // CancelRequests sent for this backend that the server has not yet taken.
  int cancels_in_flight = 0;

  // Prepared statements this backend has, by pgmux's statement id (LRU order).
  bool has_statement(std::uint64_t id);  // also marks it most recently used
  // Records `id` as prepared; returns the id evicted to stay within `max`, or 0.
  std::uint64_t add_statement(std::uint64_t id, int max);
  void forget_statements() {
    prepared_.clear();
    lru_.clear();
  }
  std::size_t statement_count() const { return prepared_.size(); }

  // The settings this backend carries, as a hash of the client settings last applied
  // (0 = the server's defaults).
  std::uint64_t settings_hash = 0;

  // Ends the connection (Terminate when possible) and tells the pool, once.
  void close(std::string reason);

  // Bytes received and sent, for statistics.
  std::uint64_t queries = 0;
  // The client's requests being timed for per-shape statistics (see RequestTimer).
  RequestTimer timer;

 private:
  // StreamEvents
  void on_connected() override;
  void on_read(std::span<const std::byte> bytes) override;
  void on_eof() override;
  void on_error(const Error& error) override;
  void on_write_drained() override;
  void on_tls_ready() override;
  // ExpectedReplies::Sink
  void emit_synthetic(const std::string& bytes) override;
  void statement_failed(std::uint64_t statement) override;
  void statement_prepared(std::uint64_t statement) override;
  void client_parse_done(bool ok) override;

  void send_startup();
  void on_ssl_answer(std::span<const std::byte> bytes);
  void on_login_bytes(std::span<const std::byte> bytes);
  Result<bool> handle_login_frame(const wire::Frame& frame);  // true when logged in
  Result<void> handle_auth(const wire::Authentication& auth);
  void scan_replies(std::span<const std::byte> bytes);
  // Decides one frame whose body is complete; returns whether to forward it.
  bool on_reply_frame(char type, std::span<const std::byte> body);
  void record_parameter(std::string_view name, std::string_view value);
  static bool plan_changed(std::span<const std::byte> error_body);
  static bool has_sqlstate(std::span<const std::byte> error_body, std::string_view sqlstate);
  static std::string_view sqlstate_of(std::span<const std::byte> error_body);
  void retire_statement(std::uint64_t statement);
  void flush_forward(const std::byte* begin, const std::byte* end);
  bool after_frame(const std::byte* at);
  bool needs_body(char type) const;

  net::Loop& loop_;
  Pool& pool_;
  std::uint64_t id_;
  config::HostPort address_;
  net::TcpStream stream_;
  BackendState state_ = BackendState::Connecting;
  BackendListener* listener_ = nullptr;
  ExpectedReplies expected_;
  wire::TxStatus tx_status_ = wire::TxStatus::Idle;
  wire::BackendKeyData key_;
  std::vector<std::pair<std::string, std::string>> server_params_;
  std::uint64_t created_ms_ = 0;
  std::uint64_t last_used_ms_ = 0;
  std::uint32_t max_message_size_ = 0;
  std::string close_reason_;

  // Login
  ServerLogin login_;
  ServerTls tls_;
  bool awaiting_ssl_answer_ = false;  // SSLRequest sent; one byte, 'S' or 'N', comes next
  std::unique_ptr<wire::ScramClient> scram_;

  // Reply scanning: an incomplete frame that must be seen whole waits here; a long frame
  // that needs no inspection streams through with `stream_remaining_` bytes to go.
  std::vector<std::byte> pending_;
  std::size_t stream_remaining_ = 0;
  bool stream_forward_ = false;
  bool sync_completed_ = false;  // a ReadyForQuery just ended a Sync or Query
  bool sync_visible_ = false;    // ... the client's own
  bool probe_done_ = false;      // ... a probe, whose value is in probe_value_
  bool forwarded_in_group_ = false;  // replies reached the client since its last Sync
  std::string probe_value_;

  std::list<std::uint64_t> lru_;
  std::unordered_map<std::uint64_t, std::list<std::uint64_t>::iterator> prepared_;
};

}  // namespace pooler::backend
