#pragma once
// Plain configuration structs. A Config is loaded once, validated, and then shared
// read-only (shared_ptr<const Config>) by every worker; a reload swaps it whole.

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pooler/base/result.h"

namespace pooler::config {

using Millis = std::chrono::milliseconds;

struct HostPort {
  std::string host;        // "127.0.0.1", "::1", "db.internal" or a Unix socket directory ("/run/pg")
  std::uint16_t port = 5432;
  std::string to_string() const;  // "host:port"; an IPv6 host in brackets: "[::1]:5432"
  bool operator==(const HostPort&) const = default;
};

// "host:port", "[::1]:5432" (IPv6 needs the brackets) or "/unix/socket/dir:5432".
// The port is required and must be 1-65535. The error message says only what is wrong
// ("port must be 1-65535"); the caller adds where.
[[nodiscard]] Result<HostPort> parse_host_port(std::string_view text);

enum class PoolMode : std::uint8_t { Session, Transaction, Statement };
enum class AuthMethod : std::uint8_t { ScramSha256, Md5, Trust };
enum class LogFormat : std::uint8_t { Text, Json };
// libpq's sslmode words, used for both sides of pgmux.
enum class SslMode : std::uint8_t { Disable, Allow, Prefer, Require, VerifyCa, VerifyFull };

// How UserConfig::password is stored, told apart the way PostgreSQL does it.
enum class PasswordKind : std::uint8_t {
  Plain,        // the password itself
  Md5,          // "md5" + 32 lowercase hex digits: md5(password + username)
  ScramSha256,  // "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"
};

std::string_view to_string(PoolMode mode);
std::string_view to_string(AuthMethod method);
std::string_view to_string(LogFormat format);
std::string_view to_string(SslMode mode);
std::string_view to_string(PasswordKind kind);

// The kind of a stored password. A string that starts like an md5 hash or a SCRAM
// verifier but is malformed is an error, not a plaintext password: it is almost
// surely a copy-paste mistake that would otherwise surface as failed logins.
[[nodiscard]] Result<PasswordKind> classify_password(std::string_view password);

// The timeouts of [pgmux]; a database may override each one. Zero = disabled.
struct Timeouts {
  Millis query_wait_timeout{120'000};      // a client waiting for a backend
  Millis idle_transaction_timeout{0};      // a client idle inside a transaction
  Millis client_idle_timeout{0};           // a logged-in client with nothing to do
  Millis client_login_timeout{60'000};     // from accept to the end of authentication
  Millis server_connect_timeout{15'000};   // connect + authenticate to PostgreSQL
  Millis server_lifetime{3'600'000};       // close a backend older than this when released
  Millis server_idle_timeout{600'000};     // close a backend idle in the pool for this long
};

// TLS toward clients and toward PostgreSQL (issue 7; the names are PgBouncer's). Set in
// [pgmux]; a database may override each key except the client handshake's certificate,
// key, protocols and ciphers: the handshake happens before the client names its database.
struct TlsConfig {
  // Clients. allow/prefer: TLS when the client asks; require: plaintext refused;
  // verify-ca: also a client certificate signed by client_ca_file; verify-full: also its
  // CN equal to the user name.
  SslMode client_sslmode = SslMode::Disable;
  std::string client_cert_file;
  std::string client_key_file;
  std::string client_ca_file;
  std::uint16_t client_min_protocol = 0x0303;  // TLS 1.2, as on the wire
  std::uint16_t client_max_protocol = 0x0304;  // TLS 1.3
  std::string client_ciphers = "HIGH:!aNULL:!MD5:!3DES:!RC4";  // TLS 1.2 (OpenSSL syntax)
  // PostgreSQL, as libpq's sslmode: allow/prefer fall back to plaintext, require does not,
  // verify-ca checks the certificate against server_ca_file, verify-full also the host name.
  SslMode server_sslmode = SslMode::Disable;
  std::string server_ca_file;
  std::string server_cert_file;  // optional client certificate pgmux presents
  std::string server_key_file;
};

struct GeneralConfig {
  std::vector<HostPort> listen;            // at least one; "127.0.0.1:6432" by default
  int workers = 0;                         // 0 = half the cores, at least 1
  std::string log_level = "info";
  LogFormat log_format = LogFormat::Text;
  int max_client_conn = 10'000;
  // Limits against one noisy address or user (0 = none); see app/admission.h.
  int max_client_conn_per_address = 0;
  double max_connection_rate_per_address = 0;  // new connections per second
  int max_login_failures_per_address = 0;      // per minute; then its connections are refused
  int max_user_client_connections = 0;         // per user; [users.NAME] may override
  double max_user_query_rate = 0;              // requests per second per user; [users.NAME] too
  Millis query_rate_wait{1000};                // a throttled request waits this long at most
  // Users not in [users] are looked up in PostgreSQL (databases may override both).
  std::optional<std::string> auth_user;        // a [users] entry with a plaintext password
  std::string auth_query = "SELECT usename, passwd FROM pg_shadow WHERE usename = $1";
  Millis auth_cache_ttl{30'000};               // how long a looked-up user (or its absence) is kept
  std::uint32_t max_message_size = 64 * 1024 * 1024;  // regular-phase limit, bytes
  Millis shutdown_timeout{30'000};
  Millis stats_period{60'000};             // periodic stats line; 0 = off
  Timeouts timeouts;
  std::vector<std::string> admin_users;    // may use the admin console (database "pgmux")
  std::optional<HostPort> http_listen;     // /metrics, /healthz, /readyz, /pools; off when unset
  bool query_stats = true;                 // per-shape statistics (SHOW QUERIES, index advice)
  bool log_queries = false;                // one info line per finished request (needs query_stats)
  int max_query_shapes = 5000;             // shapes kept per worker; the least used are evicted
  // systemd Type=notify: READY=1 only once every database's configured primary answers
  // (false: as soon as the listeners are bound).
  bool wait_for_primary = false;
  TlsConfig tls;
};

// [index_advice]: queries that lack an index, judged off the query path (issue 5).
struct IndexAdviceConfig {
  enum class Target : std::uint8_t { Primary, Replica };
  bool enabled = false;
  std::string file;                        // JSON-lines records; "" = not written
  Target target = Target::Primary;         // where the EXPLAINs run
  std::optional<std::string> user;         // who runs them (default: as the health checks)
  std::optional<std::string> password;
  std::int64_t min_calls = 20;             // a shape is sampled once it ran this often...
  Millis min_duration{100};                // ...or once one call took this long (0 = never)
  Millis recheck_interval{600'000};        // a shape is judged at most once per interval
  int explain_rate = 20;                   // EXPLAINs per second, at most
  std::int64_t min_table_pages = 1000;     // smaller tables never get advice
  std::int64_t min_table_rows = 10'000;
  double max_selectivity = 0.05;           // the filter must keep at most this share of rows
  Millis statement_timeout{2000};          // on the advisor's connection
  int sample_queue = 256;                  // samples waiting for the advisor; more are dropped
};

// Read/write routing of one database (issue 4). Active when the database has replicas.
struct RoutingConfig {
  enum class PrimaryReads : std::uint8_t { Never, Fallback, Always };
  enum class Balance : std::uint8_t { LeastOutstanding, RoundRobin };
  enum class ReadYourWrites : std::uint8_t { Lsn, Window, Off };
  PrimaryReads primary_reads = PrimaryReads::Fallback;
  Balance load_balance = Balance::LeastOutstanding;
  std::vector<int> replica_weights;             // one per replica; empty = all 1
  std::int64_t max_replica_lag_bytes = 16 * 1024 * 1024;  // 0 = no bound
  std::int64_t max_replica_lag_ms = 0;                    // 0 = no bound
  std::vector<std::string> read_only_functions;  // volatile functions safe on a replica
  std::vector<std::string> write_functions;      // functions that must run on the primary
  Millis health_check_period{1000};
  ReadYourWrites read_your_writes = ReadYourWrites::Lsn;
  Millis read_your_writes_window{5000};
  std::optional<std::string> health_check_user;  // default: server_user, else a user with a
  std::optional<std::string> health_check_password;  // plaintext password
};

struct DatabaseConfig {
  std::string name;                        // the key: what clients put in their connection string
  std::string dbname;                      // the name on the server
  HostPort primary;
  std::vector<HostPort> replicas;
  PoolMode pool_mode = PoolMode::Transaction;
  int pool_size = 20;
  int min_pool_size = 0;
  int reserve_pool_size = 0;
  Millis reserve_pool_timeout{5'000};
  int max_prepared_statements = 200;
  std::optional<std::string> server_user;  // log in to PostgreSQL as this user instead
  std::optional<std::string> server_password;
  Timeouts timeouts;                        // [pgmux] values unless overridden here
  RoutingConfig routing;
  std::optional<std::string> auth_user;     // [pgmux]'s unless set here
  std::string auth_query;                   // [pgmux]'s unless set here
  TlsConfig tls;                            // [pgmux] values unless overridden here
};

struct UserConfig {
  std::string name;
  std::string password;                    // plaintext, "md5<hex>" or a SCRAM-SHA-256 verifier
  PasswordKind password_kind = PasswordKind::Plain;  // set by the loader from `password`
  AuthMethod auth = AuthMethod::ScramSha256;
  std::optional<PoolMode> pool_mode;       // overrides the database's
  std::optional<int> max_user_client_connections;  // overrides [pgmux]'s
  std::optional<double> max_query_rate;             // overrides [pgmux] max_user_query_rate
};

// One [[hba]] rule, like a line of pg_hba.conf: the first rule whose database, user and
// address match a login decides how it authenticates.
struct HbaRule {
  enum class Method : std::uint8_t { ScramSha256, Md5, Trust, Reject, Cert };
  struct Network {
    std::array<std::uint8_t, 16> address{};  // IPv4 as ::ffff:a.b.c.d
    int prefix = 0;                          // bits, of the 128
  };
  std::vector<std::string> databases;  // empty = all
  std::vector<std::string> users;      // empty = all
  std::vector<Network> networks;       // empty = all addresses (TCP and Unix sockets)
  Method method = Method::Reject;
  int index = 0;                       // 1-based position in the file, for messages
};
std::string_view to_string(HbaRule::Method method);

// "10.0.0.0/8", "192.168.1.7", "::1/128", "fe80::/10"; nullopt when malformed.
std::optional<HbaRule::Network> parse_network(std::string_view text);
// The first rule that matches; nullptr when none does. `address` is the client's IP as text
// ("" for a Unix socket, which only address-less rules match).
const HbaRule* match_hba(const std::vector<HbaRule>& rules, std::string_view database,
                         std::string_view user, std::string_view address);

struct Config {
  std::string source_path;                 // the file it came from, for logs
  GeneralConfig general;
  std::map<std::string, DatabaseConfig, std::less<>> databases;  // by client-visible name
  std::map<std::string, UserConfig, std::less<>> users;
  IndexAdviceConfig index_advice;
  std::vector<HbaRule> hba;                // empty: each user's own `auth` decides

  const DatabaseConfig* find_database(std::string_view name) const;
  const UserConfig* find_user(std::string_view name) const;
};

}  // namespace pooler::config
