#include "pooler/config/config_loader.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <string_view>

namespace pooler::config {
namespace {

using namespace std::chrono_literals;

// The smallest valid tail: appended after the lines under test so their positions hold.
constexpr std::string_view kDatabase = "[databases.app]\nprimary = \"127.0.0.1:5432\"\n";

// A real verifier for the password "secret" (4096 iterations).
constexpr std::string_view kScramVerifier =
    "SCRAM-SHA-256$4096:cGdtdXgtZXhhbXBsZS1zYWx0$phNtWGFXJY0qnyTeV30fjV8Ga6BDEtDooGRcbzdQgVw=:"
    "AtapxyJqGVQeLD+iQ/2Q6K8elrUJa9yV0iCdEQfsxps=";
constexpr std::string_view kMd5Hash = "md56a422f785c9e20873908ce25d1736ae2";  // "secret" + "app"

Result<Config> load(std::string_view text) { return load_config_string(text, "pgmux.toml"); }

// `text` with the first `token` replaced by `value`.
std::string substitute(std::string_view text, std::string_view token, std::string_view value) {
  std::string result(text);
  result.replace(result.find(token), token.size(), value);
  return result;
}

// The error message, or a marker that makes a failed EXPECT_EQ readable.
std::string error_of(std::string_view text) {
  auto config = load(text);
  return config ? std::string("(loaded without error)") : config.error().message;
}

std::string with_database(std::string_view head) {
  return std::string(head) + std::string(kDatabase);
}

// Every key of every section, read into the right field.
TEST(ConfigLoaderTest, FullConfig) {
  constexpr std::string_view kText = R"([pgmux]
listen = ["0.0.0.0:7432", "[::1]:7432"]
workers = 4
log_level = "debug"
log_format = "json"
max_client_conn = 500
max_message_size = 1048576
shutdown_timeout = 5
stats_period = 0
wait_for_primary = true
query_wait_timeout = 10
idle_transaction_timeout = 1.5
client_idle_timeout = 300
client_login_timeout = 20
server_connect_timeout = 3
server_lifetime = 1800
server_idle_timeout = 60

[databases.app]
dbname = "app_prod"
primary = "db1.internal:5433"
replicas = ["db2.internal:5433", "/var/run/postgresql:5432"]
pool_mode = "session"
pool_size = 50
min_pool_size = 5
reserve_pool_size = 3
reserve_pool_timeout = 0.25
max_prepared_statements = 0
server_user = "pooler"
server_password = "hunter2"
server_lifetime = 60

[users.app]
password = "@scram@"
auth = "scram-sha-256"
pool_mode = "statement"

[users.legacy]
password = "@md5@"
auth = "md5"

[users.local]
auth = "trust"
)";
  const std::string text =
      substitute(substitute(kText, "@scram@", kScramVerifier), "@md5@", kMd5Hash);
  auto config = load(text);
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->source_path, "pgmux.toml");

  const GeneralConfig& g = config->general;
  ASSERT_EQ(g.listen.size(), 2u);
  EXPECT_EQ(g.listen[0].to_string(), "0.0.0.0:7432");
  EXPECT_EQ(g.listen[1].host, "::1");
  EXPECT_EQ(g.listen[1].port, 7432);
  EXPECT_EQ(g.workers, 4);
  EXPECT_EQ(g.log_level, "debug");
  EXPECT_EQ(g.log_format, LogFormat::Json);
  EXPECT_EQ(g.max_client_conn, 500);
  EXPECT_EQ(g.max_message_size, 1048576u);
  EXPECT_EQ(g.shutdown_timeout, 5s);
  EXPECT_EQ(g.stats_period, 0ms);
  EXPECT_TRUE(g.wait_for_primary);
  EXPECT_EQ(g.timeouts.query_wait_timeout, 10s);
  EXPECT_EQ(g.timeouts.idle_transaction_timeout, 1500ms);
  EXPECT_EQ(g.timeouts.client_idle_timeout, 300s);
  EXPECT_EQ(g.timeouts.client_login_timeout, 20s);
  EXPECT_EQ(g.timeouts.server_connect_timeout, 3s);
  EXPECT_EQ(g.timeouts.server_lifetime, 1800s);
  EXPECT_EQ(g.timeouts.server_idle_timeout, 60s);

  const DatabaseConfig* db = config->find_database("app");
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->name, "app");
  EXPECT_EQ(db->dbname, "app_prod");
  EXPECT_EQ(db->primary.to_string(), "db1.internal:5433");
  ASSERT_EQ(db->replicas.size(), 2u);
  EXPECT_EQ(db->replicas[1].host, "/var/run/postgresql");
  EXPECT_EQ(db->replicas[1].port, 5432);
  EXPECT_EQ(db->pool_mode, PoolMode::Session);
  EXPECT_EQ(db->pool_size, 50);
  EXPECT_EQ(db->min_pool_size, 5);
  EXPECT_EQ(db->reserve_pool_size, 3);
  EXPECT_EQ(db->reserve_pool_timeout, 250ms);
  EXPECT_EQ(db->max_prepared_statements, 0);
  EXPECT_EQ(db->server_user, "pooler");
  EXPECT_EQ(db->server_password, "hunter2");
  EXPECT_EQ(db->timeouts.server_lifetime, 60s);
  EXPECT_EQ(db->timeouts.query_wait_timeout, 10s);  // inherited

  const UserConfig* app = config->find_user("app");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->name, "app");
  EXPECT_EQ(app->password, kScramVerifier);
  EXPECT_EQ(app->password_kind, PasswordKind::ScramSha256);
  EXPECT_EQ(app->auth, AuthMethod::ScramSha256);
  EXPECT_EQ(app->pool_mode, PoolMode::Statement);
  const UserConfig* legacy = config->find_user("legacy");
  ASSERT_NE(legacy, nullptr);
  EXPECT_EQ(legacy->password_kind, PasswordKind::Md5);
  EXPECT_EQ(legacy->auth, AuthMethod::Md5);
  EXPECT_EQ(legacy->pool_mode, std::nullopt);
  const UserConfig* local = config->find_user("local");
  ASSERT_NE(local, nullptr);
  EXPECT_EQ(local->auth, AuthMethod::Trust);
  EXPECT_EQ(local->password, "");
  EXPECT_EQ(config->find_user("nobody"), nullptr);
  EXPECT_EQ(config->find_database("nothing"), nullptr);
}

// With only the required keys, every other setting takes the default from config.h.
TEST(ConfigLoaderTest, Defaults) {
  auto config = load(kDatabase);
  ASSERT_TRUE(config) << config.error().message;
  const GeneralConfig defaults;
  const GeneralConfig& g = config->general;
  ASSERT_EQ(g.listen.size(), 1u);
  EXPECT_EQ(g.listen[0].to_string(), "127.0.0.1:6432");
  EXPECT_EQ(g.workers, defaults.workers);
  EXPECT_EQ(g.log_level, "info");
  EXPECT_EQ(g.log_format, LogFormat::Text);
  EXPECT_EQ(g.max_client_conn, defaults.max_client_conn);
  EXPECT_EQ(g.max_message_size, defaults.max_message_size);
  EXPECT_EQ(g.shutdown_timeout, defaults.shutdown_timeout);
  EXPECT_EQ(g.stats_period, defaults.stats_period);
  EXPECT_FALSE(g.wait_for_primary);
  EXPECT_EQ(g.timeouts.query_wait_timeout, 120s);
  EXPECT_EQ(g.timeouts.server_idle_timeout, 600s);

  const DatabaseConfig defaults_db;
  const DatabaseConfig& db = config->databases.at("app");
  EXPECT_EQ(db.dbname, "app");  // the key
  EXPECT_EQ(db.primary.to_string(), "127.0.0.1:5432");
  EXPECT_TRUE(db.replicas.empty());
  EXPECT_EQ(db.pool_mode, PoolMode::Transaction);
  EXPECT_EQ(db.pool_size, defaults_db.pool_size);
  EXPECT_EQ(db.min_pool_size, defaults_db.min_pool_size);
  EXPECT_EQ(db.reserve_pool_size, defaults_db.reserve_pool_size);
  EXPECT_EQ(db.reserve_pool_timeout, defaults_db.reserve_pool_timeout);
  EXPECT_EQ(db.max_prepared_statements, defaults_db.max_prepared_statements);
  EXPECT_EQ(db.server_user, std::nullopt);
  EXPECT_EQ(db.server_password, std::nullopt);
  EXPECT_EQ(db.timeouts.client_login_timeout, 60s);
  EXPECT_TRUE(config->users.empty());
}

void expect_same_timeouts(const Timeouts& a, const Timeouts& b) {
  for (auto member : {&Timeouts::query_wait_timeout, &Timeouts::idle_transaction_timeout,
                      &Timeouts::client_idle_timeout, &Timeouts::client_login_timeout,
                      &Timeouts::server_connect_timeout, &Timeouts::server_lifetime,
                      &Timeouts::server_idle_timeout}) {
    EXPECT_EQ((a.*member).count(), (b.*member).count());
  }
}

// The shipped example names every key with its default, so it must load and match them.
TEST(ConfigLoaderTest, ExampleFileLoads) {
  auto example = load_config_file(PGMUX_SOURCE_DIR "/etc/pgmux.toml");
  ASSERT_TRUE(example) << example.error().message;
  auto defaults = load(kDatabase);
  ASSERT_TRUE(defaults);

  const GeneralConfig& g = example->general;
  const GeneralConfig& d = defaults->general;
  ASSERT_EQ(g.listen.size(), 1u);
  EXPECT_EQ(g.listen[0].to_string(), d.listen[0].to_string());
  EXPECT_EQ(g.workers, d.workers);
  EXPECT_EQ(g.log_level, d.log_level);
  EXPECT_EQ(g.log_format, d.log_format);
  EXPECT_EQ(g.max_client_conn, d.max_client_conn);
  EXPECT_EQ(g.max_message_size, d.max_message_size);
  EXPECT_EQ(g.shutdown_timeout, d.shutdown_timeout);
  EXPECT_EQ(g.stats_period, d.stats_period);
  EXPECT_EQ(g.wait_for_primary, d.wait_for_primary);
  expect_same_timeouts(g.timeouts, d.timeouts);
  EXPECT_EQ(g.tls.client_sslmode, d.tls.client_sslmode);
  EXPECT_EQ(g.tls.client_min_protocol, d.tls.client_min_protocol);
  EXPECT_EQ(g.tls.client_max_protocol, d.tls.client_max_protocol);
  EXPECT_EQ(g.tls.client_ciphers, d.tls.client_ciphers);
  EXPECT_EQ(g.tls.server_sslmode, d.tls.server_sslmode);

  const DatabaseConfig& db = example->databases.at("app");
  const DatabaseConfig& dd = defaults->databases.at("app");
  EXPECT_EQ(db.dbname, dd.dbname);
  EXPECT_EQ(db.primary.to_string(), dd.primary.to_string());
  EXPECT_EQ(db.replicas.size(), dd.replicas.size());
  EXPECT_EQ(db.pool_mode, dd.pool_mode);
  EXPECT_EQ(db.pool_size, dd.pool_size);
  EXPECT_EQ(db.min_pool_size, dd.min_pool_size);
  EXPECT_EQ(db.reserve_pool_size, dd.reserve_pool_size);
  EXPECT_EQ(db.reserve_pool_timeout, dd.reserve_pool_timeout);
  EXPECT_EQ(db.max_prepared_statements, dd.max_prepared_statements);
  expect_same_timeouts(db.timeouts, dd.timeouts);

  const UserConfig* user = example->find_user("app");
  ASSERT_NE(user, nullptr);
  EXPECT_EQ(user->auth, AuthMethod::ScramSha256);
  EXPECT_EQ(user->password_kind, PasswordKind::Plain);
}

// The optional keys shown commented out in the example are valid once uncommented.
TEST(ConfigLoaderTest, ExampleFileCommentedKeysLoad) {
  std::ifstream file(PGMUX_SOURCE_DIR "/etc/pgmux.toml");
  ASSERT_TRUE(file);
  std::string text;
  int uncommented = 0;
  for (std::string line; std::getline(file, line);) {
    // "# key = value  # comment" -> "key = value  # comment"
    const auto equals = line.find(" = ");
    const bool is_key = line.starts_with("# ") && equals != std::string::npos && equals > 2 &&
                        line.find_first_not_of("abcdefghijklmnopqrstuvwxyz_", 2) == equals;
    if (is_key) {
      line.erase(0, 2);
      ++uncommented;
    }
    text += line + "\n";
  }
  EXPECT_GE(uncommented, 4);
  auto config = load(text);
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->databases.at("app").server_user, "pgmux");
  EXPECT_EQ(config->users.at("app").pool_mode, PoolMode::Session);
}

TEST(ConfigLoaderTest, IndexAdvice) {
  auto defaults = load(kDatabase);
  ASSERT_TRUE(defaults);
  EXPECT_FALSE(defaults->index_advice.enabled);
  EXPECT_EQ(defaults->index_advice.min_calls, 20);
  EXPECT_TRUE(defaults->general.query_stats);

  auto config = load(with_database(
      "[pgmux]\nquery_stats = true\nmax_query_shapes = 100\n"
      "[index_advice]\nenabled = true\nfile = \"/tmp/a.jsonl\"\ntarget = \"replica\"\n"
      "user = \"adv\"\npassword = \"pw\"\nmin_calls = 5\nmin_duration = 0.25\n"
      "recheck_interval = 30\nexplain_rate = 5\nmin_table_pages = 10\nmin_table_rows = 100\n"
      "max_selectivity = 0.1\nstatement_timeout = 1\nsample_queue = 8\n"));
  ASSERT_TRUE(config) << config.error().message;
  const IndexAdviceConfig& a = config->index_advice;
  EXPECT_TRUE(a.enabled);
  EXPECT_EQ(a.file, "/tmp/a.jsonl");
  EXPECT_EQ(a.target, IndexAdviceConfig::Target::Replica);
  EXPECT_EQ(a.user, "adv");
  EXPECT_EQ(a.min_calls, 5);
  EXPECT_EQ(a.min_duration, Millis{250});
  EXPECT_EQ(a.recheck_interval, Millis{30'000});
  EXPECT_EQ(a.explain_rate, 5);
  EXPECT_DOUBLE_EQ(a.max_selectivity, 0.1);
  EXPECT_EQ(a.sample_queue, 8);
  EXPECT_EQ(config->general.max_query_shapes, 100);

  EXPECT_EQ(error_of(with_database("[index_advice]\nmax_selectivity = 2\n")),
            "pgmux.toml:2:19: 'max_selectivity' must be 0-1, got 2");
  EXPECT_EQ(error_of(with_database("[index_advice]\nenabled = \"yes\"\n")),
            "pgmux.toml:2:11: 'enabled' must be true or false, got string");
  EXPECT_EQ(error_of(with_database("[index_advice]\nmin_cals = 3\n")),
            "pgmux.toml:2:1: unknown key 'min_cals' in [index_advice]");
}

// A missing file names the file and the system's reason.
TEST(ConfigLoaderTest, UnreadableFile) {
  auto config = load_config_file("/nonexistent/pgmux.toml");
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().code, Errc::Config);
  EXPECT_EQ(config.error().message,
            "/nonexistent/pgmux.toml: cannot read: No such file or directory");
}

// A directory opens but cannot be read.
TEST(ConfigLoaderTest, DirectoryIsUnreadable) {
  auto config = load_config_file("/");
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().message, "/: cannot read: Is a directory");
}

// A TOML syntax error becomes an Errc::Config with the parser's position.
TEST(ConfigLoaderTest, SyntaxError) {
  auto config = load("[pgmux]\nworkers = \n");
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().code, Errc::Config);
  EXPECT_TRUE(config.error().message.starts_with("pgmux.toml:2:11: ")) << config.error().message;
}

// A key TOML itself rejects (defined twice) is also a positioned error.
TEST(ConfigLoaderTest, DuplicateKeyIsSyntaxError) {
  EXPECT_TRUE(error_of("[pgmux]\nworkers = 1\nworkers = 2\n").starts_with("pgmux.toml:3:"));
}

// A misspelled key in a database is reported at the key.
TEST(ConfigLoaderTest, UnknownKeyInDatabase) {
  EXPECT_EQ(
      error_of("[pgmux]\nworkers = 1\n\n[databases.app]\nprimary = \"h:5432\"\npool_size = 3\n"
               "pool_sise = 5\n"),
      "pgmux.toml:7:1: unknown key 'pool_sise' in [databases.app]");
}

// Typos are caught in [pgmux], [users.X] and at the top level too.
TEST(ConfigLoaderTest, UnknownKeyElsewhere) {
  EXPECT_EQ(error_of(with_database("[pgmux]\nlisten_addr = \"h:1\"\n")),
            "pgmux.toml:2:1: unknown key 'listen_addr' in [pgmux]");
  EXPECT_EQ(error_of(with_database("[users.bob]\nauth = \"trust\"\npasword = \"x\"\n")),
            "pgmux.toml:3:1: unknown key 'pasword' in [users.bob]");
  EXPECT_EQ(error_of(with_database("[pgmuxx]\nworkers = 1\n")),
            "pgmux.toml:1:2: unknown key 'pgmuxx' at top level "
            "(expected [pgmux], [databases.NAME], [users.NAME], [index_advice] or [[hba]])");
  EXPECT_EQ(error_of(with_database("[databases.\"my db\"]\nprimary = \"h:1\"\nx = 1\n")),
            "pgmux.toml:3:1: unknown key 'x' in [databases.\"my db\"]");
}

// A value of the wrong TOML type names the key, the expected and the actual type.
TEST(ConfigLoaderTest, WrongType) {
  EXPECT_EQ(error_of(with_database("[pgmux]\n\nworkers = \"4\"\n")),
            "pgmux.toml:3:11: 'workers' must be an integer, got string");
  EXPECT_EQ(error_of(with_database("[pgmux]\nlog_level = 3\n")),
            "pgmux.toml:2:13: 'log_level' must be a string, got integer");
  EXPECT_EQ(error_of(with_database("[pgmux]\nquery_wait_timeout = \"10s\"\n")),
            "pgmux.toml:2:22: 'query_wait_timeout' must be a number of seconds, got string");
  EXPECT_EQ(error_of(with_database("[pgmux]\nwait_for_primary = \"yes\"\n")),
            "pgmux.toml:2:20: 'wait_for_primary' must be true or false, got string");
  EXPECT_EQ(error_of(with_database("[pgmux]\nlisten = 6432\n")),
            "pgmux.toml:2:10: 'listen' must be a \"host:port\" string or an array of them, got "
            "integer");
  EXPECT_EQ(error_of(with_database("[pgmux]\nlisten = [\"h:1\", 2]\n")),
            "pgmux.toml:2:18: 'listen' entries must be \"host:port\" strings, got integer");
  EXPECT_EQ(error_of("pgmux = 1\n" + std::string(kDatabase)),
            "pgmux.toml:1:9: 'pgmux' must be a table, got integer");
  EXPECT_EQ(error_of("[databases]\napp = \"h:5432\"\n"),
            "pgmux.toml:2:7: [databases.app] must be a table, got string");
  EXPECT_EQ(error_of("[databases.app]\nprimary = [\"h:5432\"]\n"),
            "pgmux.toml:2:11: 'primary' must be a \"host:port\" string, got array");
}

// A missing required key is reported at the table header.
TEST(ConfigLoaderTest, MissingRequiredKey) {
  EXPECT_EQ(error_of("[pgmux]\nworkers = 2\n\n[databases.app]\npool_size = 3\n"),
            "pgmux.toml:4:1: [databases.app] is missing required key 'primary'");
  EXPECT_EQ(error_of(with_database("[users.bob]\nauth = \"md5\"\n")),
            "pgmux.toml:1:1: [users.bob] is missing required key 'password' (needed unless "
            "auth = \"trust\")");
}

// Without any database there is nothing to pool.
TEST(ConfigLoaderTest, NoDatabases) {
  EXPECT_EQ(error_of("[pgmux]\nworkers = 1\n"),
            "pgmux.toml:1:1: no databases: add at least one [databases.NAME] table");
  EXPECT_EQ(error_of("[pgmux]\nworkers = 1\n[databases]\n"),
            "pgmux.toml:3:1: no databases: add at least one [databases.NAME] table");
  EXPECT_EQ(error_of(""), "pgmux.toml:1:1: no databases: add at least one [databases.NAME] table");
}

// An address with an impossible port names the address, the key and the reason.
TEST(ConfigLoaderTest, BadListenAddress) {
  EXPECT_EQ(error_of(with_database("[pgmux]\nlisten = \"127.0.0.1:99999\"\n")),
            "pgmux.toml:2:10: bad address '127.0.0.1:99999' in 'listen': port must be 1-65535");
  EXPECT_EQ(error_of(with_database("[pgmux]\nlisten = [\"h:1\", \"::1:6432\"]\n")),
            "pgmux.toml:2:18: bad address '::1:6432' in 'listen': an IPv6 address must be in "
            "brackets, e.g. '[::1]:5432'");
  EXPECT_EQ(error_of(with_database("[pgmux]\nlisten = []\n")),
            "pgmux.toml:2:10: 'listen' must name at least one address");
  EXPECT_EQ(error_of(with_database("[pgmux]\nlisten = [\"h:1\", \"h:1\"]\n")),
            "pgmux.toml:2:18: duplicate address 'h:1' in 'listen'");
  EXPECT_EQ(error_of("[databases.app]\nprimary = \"db\"\n"),
            "pgmux.toml:2:11: bad address 'db' in 'primary': missing ':port'");
  EXPECT_EQ(error_of("[databases.app]\nprimary = \"h:1\"\nreplicas = [\"h:0\"]\n"),
            "pgmux.toml:3:13: bad address 'h:0' in 'replicas': port must be 1-65535");
}

// Numbers outside their range are rejected with the allowed range.
TEST(ConfigLoaderTest, OutOfRange) {
  EXPECT_EQ(error_of(with_database("[pgmux]\nworkers = 257\n")),
            "pgmux.toml:2:11: 'workers' must be 0-256, got 257");
  EXPECT_EQ(error_of(with_database("[pgmux]\nworkers = -1\n")),
            "pgmux.toml:2:11: 'workers' must be 0-256, got -1");
  EXPECT_EQ(error_of(with_database("[pgmux]\nmax_client_conn = 0\n")),
            "pgmux.toml:2:19: 'max_client_conn' must be at least 1, got 0");
  EXPECT_EQ(error_of(with_database("[pgmux]\nmax_message_size = 100\n")),
            "pgmux.toml:2:20: 'max_message_size' must be 1024-1073741824, got 100");
  EXPECT_EQ(error_of("[databases.app]\nprimary = \"h:1\"\npool_size = 0\n"),
            "pgmux.toml:3:13: 'pool_size' must be at least 1, got 0");
  EXPECT_EQ(error_of("[databases.app]\nprimary = \"h:1\"\npool_size = 99999999999\n"),
            "pgmux.toml:3:13: 'pool_size' must be at most 2147483647, got 99999999999");
  EXPECT_EQ(error_of("[databases.app]\nprimary = \"h:1\"\nreserve_pool_size = -2\n"),
            "pgmux.toml:3:21: 'reserve_pool_size' must be at least 0, got -2");
}

// A max_replica_lag size beyond 64 bits is an error, not a wrapped-around (negative) bound.
// Regression input of fuzz_config_loader (signed overflow in parse_lag under UBSan).
TEST(ConfigLoaderTest, ReplicaLagSizeOverflow) {
  EXPECT_EQ(error_of("[databases.app]\nprimary = \"h:1\"\nmax_replica_lag = \"10000000000GB\"\n"),
            "pgmux.toml:3:19: 'max_replica_lag' must be a size (\"16MB\") or a duration "
            "(\"500ms\", \"2s\"), or a list of both");
  auto config = load("[databases.app]\nprimary = \"h:1\"\nmax_replica_lag = \"1048576GB\"\n");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->find_database("app")->routing.max_replica_lag_bytes, std::int64_t{1} << 50);
}

// min_pool_size may not exceed pool_size, whichever default or value applies.
TEST(ConfigLoaderTest, MinPoolSizeAbovePoolSize) {
  EXPECT_EQ(error_of("[databases.app]\nprimary = \"h:1\"\npool_size = 5\nmin_pool_size = 6\n"),
            "pgmux.toml:4:17: 'min_pool_size' must not exceed 'pool_size' (5), got 6");
  EXPECT_EQ(error_of("[databases.app]\nprimary = \"h:1\"\nmin_pool_size = 21\n"),
            "pgmux.toml:3:17: 'min_pool_size' must not exceed 'pool_size' (20), got 21");
  // A bad pool_size gives one error, not a second one about min_pool_size.
  EXPECT_EQ(error_of("[databases.app]\nprimary = \"h:1\"\npool_size = 0\nmin_pool_size = 6\n"),
            "pgmux.toml:3:13: 'pool_size' must be at least 1, got 0");
  EXPECT_TRUE(load("[databases.app]\nprimary = \"h:1\"\npool_size = 5\nmin_pool_size = 5\n"));
}

// Keys with a fixed set of values list the choices.
TEST(ConfigLoaderTest, BadChoice) {
  EXPECT_EQ(error_of(with_database("[pgmux]\nlog_level = \"verbose\"\n")),
            "pgmux.toml:2:13: 'log_level' must be one of trace, debug, info, warning, error, "
            "critical, off; got 'verbose'");
  EXPECT_EQ(error_of(with_database("[pgmux]\nlog_format = \"xml\"\n")),
            "pgmux.toml:2:14: 'log_format' must be one of text, json; got 'xml'");
  EXPECT_EQ(error_of("[databases.app]\nprimary = \"h:1\"\npool_mode = \"transactions\"\n"),
            "pgmux.toml:3:13: 'pool_mode' must be one of session, transaction, statement; "
            "got 'transactions'");
  EXPECT_EQ(error_of(with_database("[users.u]\npassword = \"x\"\nauth = \"scram\"\n")),
            "pgmux.toml:3:8: 'auth' must be one of scram-sha-256, md5, trust; got 'scram'");
  EXPECT_EQ(error_of(with_database("[users.u]\npassword = \"x\"\npool_mode = \"tx\"\n")),
            "pgmux.toml:3:13: 'pool_mode' must be one of session, transaction, statement; "
            "got 'tx'");
}

// Timeouts must be non-negative numbers of seconds within reason.
TEST(ConfigLoaderTest, BadTimeout) {
  EXPECT_EQ(error_of(with_database("[pgmux]\nserver_lifetime = -1\n")),
            "pgmux.toml:2:19: 'server_lifetime' must be a non-negative number of seconds, got -1");
  EXPECT_EQ(error_of(with_database("[pgmux]\nserver_lifetime = nan\n")),
            "pgmux.toml:2:19: 'server_lifetime' must be a non-negative number of seconds, got nan");
  EXPECT_EQ(error_of(with_database("[pgmux]\nserver_lifetime = inf\n")),
            "pgmux.toml:2:19: 'server_lifetime' must be at most 1000000000 seconds, got inf");
  EXPECT_EQ(error_of("[databases.app]\nprimary = \"h:1\"\nreserve_pool_timeout = true\n"),
            "pgmux.toml:3:24: 'reserve_pool_timeout' must be a number of seconds, got boolean");
}

// Fractions of a second are kept to the millisecond; a tiny positive value stays enabled.
TEST(ConfigLoaderTest, FractionalSeconds) {
  auto config = load(with_database(
      "[pgmux]\nquery_wait_timeout = 0.3\nclient_idle_timeout = 0.0001\nstats_period = 2.5\n"));
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->general.timeouts.query_wait_timeout, 300ms);
  EXPECT_EQ(config->general.timeouts.client_idle_timeout, 1ms);
  EXPECT_EQ(config->general.stats_period, 2500ms);
}

// A database starts from [pgmux]'s timeouts and overrides them key by key, wherever
// [pgmux] appears in the file.
TEST(ConfigLoaderTest, TimeoutsOverride) {
  auto config = load(R"([databases.fast]
primary = "h:1"
query_wait_timeout = 0.5
server_lifetime = 0

[databases.plain]
primary = "h:2"

[pgmux]
query_wait_timeout = 30
server_lifetime = 100
client_login_timeout = 7
)");
  ASSERT_TRUE(config) << config.error().message;
  const Timeouts& fast = config->databases.at("fast").timeouts;
  EXPECT_EQ(fast.query_wait_timeout, 500ms);
  EXPECT_EQ(fast.server_lifetime, 0ms);
  EXPECT_EQ(fast.client_login_timeout, 7s);   // from [pgmux]
  EXPECT_EQ(fast.server_idle_timeout, 600s);  // default
  const Timeouts& plain = config->databases.at("plain").timeouts;
  EXPECT_EQ(plain.query_wait_timeout, 30s);
  EXPECT_EQ(plain.server_lifetime, 100s);
  EXPECT_EQ(plain.client_login_timeout, 7s);
}

// 'listen' takes one address as a string or several as a list.
TEST(ConfigLoaderTest, ListenStringOrList) {
  auto one = load(with_database("[pgmux]\nlisten = \"0.0.0.0:5000\"\n"));
  ASSERT_TRUE(one) << one.error().message;
  ASSERT_EQ(one->general.listen.size(), 1u);
  EXPECT_EQ(one->general.listen[0].host, "0.0.0.0");
  EXPECT_EQ(one->general.listen[0].port, 5000);

  auto many = load(
      with_database("[pgmux]\nlisten = [\"127.0.0.1:6432\", \"[::1]:6432\", \"/tmp:6432\"]\n"));
  ASSERT_TRUE(many) << many.error().message;
  ASSERT_EQ(many->general.listen.size(), 3u);
  EXPECT_EQ(many->general.listen[0].to_string(), "127.0.0.1:6432");
  EXPECT_EQ(many->general.listen[1].to_string(), "[::1]:6432");
  EXPECT_EQ(many->general.listen[2].host, "/tmp");
}

// Password formats are recognized, malformed hashes rejected, and each auth method gets a
// password it can use.
TEST(ConfigLoaderTest, Passwords) {
  auto user = [](std::string_view lines) {
    return with_database("[users.u]\n" + std::string(lines));
  };
  EXPECT_EQ(error_of(user("password = \"md5abc123\"\nauth = \"md5\"\n")),
            "pgmux.toml:2:12: bad 'password': malformed md5 hash: expected 'md5' followed by 32 "
            "lowercase hex digits");
  EXPECT_EQ(error_of(user("password = \"SCRAM-SHA-256$4096:c2FsdA==$abc:def\"\n")),
            "pgmux.toml:2:12: bad 'password': malformed SCRAM-SHA-256 verifier: StoredKey and "
            "ServerKey must be 32 bytes in base64");
  EXPECT_EQ(error_of(user("password = \"SCRAM-SHA-256$x:c2FsdA==$abc:def\"\n")),
            "pgmux.toml:2:12: bad 'password': malformed SCRAM-SHA-256 verifier: iteration count "
            "'x' is not a positive integer");
  EXPECT_EQ(error_of(user("password = \"SCRAM-SHA-256$20000000:c2FsdA==$abc:def\"\n")),
            "pgmux.toml:2:12: bad 'password': SCRAM-SHA-256 verifier: iteration count 20000000 "
            "is above 10000000");
  EXPECT_EQ(error_of(user("auth = \"md5\"\npassword = \"" + std::string(kScramVerifier) + "\"\n")),
            "pgmux.toml:3:12: 'password' is a SCRAM-SHA-256 verifier, which cannot serve auth = "
            "\"md5\"; give the plaintext password or an md5 hash");
  EXPECT_EQ(error_of(user("password = \"" + std::string(kMd5Hash) + "\"\n")),
            "pgmux.toml:2:12: 'password' is an md5 hash, which cannot serve auth = "
            "\"scram-sha-256\"; give the plaintext password or a SCRAM-SHA-256 verifier");
  EXPECT_EQ(error_of(user("password = \"\"\n")), "pgmux.toml:2:12: 'password' must not be empty");
  // Plaintext serves every method; trust needs no password at all.
  EXPECT_TRUE(load(user("password = \"md5 is not a hash here\"\nauth = \"md5\"\n")));
  EXPECT_TRUE(load(user("auth = \"trust\"\n")));
}

// server_password alone has no user to go with.
TEST(ConfigLoaderTest, ServerPasswordNeedsServerUser) {
  EXPECT_EQ(error_of("[databases.app]\nprimary = \"h:1\"\nserver_password = \"x\"\n"),
            "pgmux.toml:3:19: 'server_password' needs 'server_user'");
  EXPECT_EQ(error_of("[databases.app]\nprimary = \"h:1\"\nserver_user = \"\"\n"),
            "pgmux.toml:3:15: 'server_user' must not be empty");
}

// All problems come back at once, one line each, in file order.
TEST(ConfigLoaderTest, SeveralErrorsInFileOrder) {
  EXPECT_EQ(error_of("[users.u]\nauth = \"trust\"\ntypo = 1\n[pgmux]\nworkers = 999\n"),
            "pgmux.toml:1:1: no databases: add at least one [databases.NAME] table\n"
            "pgmux.toml:3:1: unknown key 'typo' in [users.u]\n"
            "pgmux.toml:5:11: 'workers' must be 0-256, got 999");
}

// Host and port forms: IPv4, names, bracketed IPv6, Unix socket directories.
TEST(ParseHostPortTest, ValidForms) {
  struct Case {
    std::string_view text;
    std::string_view host;
    std::uint16_t port;
  };
  for (const Case& c :
       {Case{"127.0.0.1:5432", "127.0.0.1", 5432}, Case{"db.internal:1", "db.internal", 1},
        Case{"[::1]:65535", "::1", 65535}, Case{"[fe80::1%eth0]:6432", "fe80::1%eth0", 6432},
        Case{"[::ffff:10.0.0.1]:5432", "::ffff:10.0.0.1", 5432},
        Case{"/var/run/postgresql:5432", "/var/run/postgresql", 5432},
        Case{"/odd:dir:5433", "/odd:dir", 5433}}) {
    auto parsed = parse_host_port(c.text);
    ASSERT_TRUE(parsed) << c.text << ": " << parsed.error().message;
    EXPECT_EQ(parsed->host, c.host) << c.text;
    EXPECT_EQ(parsed->port, c.port) << c.text;
    EXPECT_EQ(parsed->to_string(), c.text);  // round trip
  }
}

// Malformed addresses say what is wrong.
TEST(ParseHostPortTest, Errors) {
  auto error = [](std::string_view text) {
    auto parsed = parse_host_port(text);
    return parsed ? std::string("(parsed)") : parsed.error().message;
  };
  EXPECT_EQ(error("h:0"), "port must be 1-65535");
  EXPECT_EQ(error("h:65536"), "port must be 1-65535");
  EXPECT_EQ(error("h:99999999999999999999999"), "port must be 1-65535");
  EXPECT_EQ(error("[::1]:0"), "port must be 1-65535");
  EXPECT_EQ(error("h:http"), "port 'http' is not a number");
  EXPECT_EQ(error("h:-1"), "port '-1' is not a number");
  EXPECT_EQ(error("h:"), "missing port after ':'");
  EXPECT_EQ(error("h"), "missing ':port'");
  EXPECT_EQ(error(""), "missing ':port'");
  EXPECT_EQ(error(":5432"), "missing host before ':'");
  EXPECT_EQ(error("::1:5432"), "an IPv6 address must be in brackets, e.g. '[::1]:5432'");
  EXPECT_EQ(error("[::1]"), "missing ':port' after the IPv6 address");
  EXPECT_EQ(error("[::1:5432"), "missing ']' after the IPv6 address");
  EXPECT_EQ(error("[db]:5432"), "'db' is not an IPv6 address");
  EXPECT_EQ(error("my host:5432"),
            "'my host' is not a host name, an IP address or an absolute Unix socket directory");
}

// Stored password kinds, told apart as PostgreSQL does.
TEST(ClassifyPasswordTest, Kinds) {
  EXPECT_EQ(classify_password("secret"), PasswordKind::Plain);
  EXPECT_EQ(classify_password(""), PasswordKind::Plain);
  EXPECT_EQ(classify_password("md5-not-hex"), PasswordKind::Plain);
  EXPECT_EQ(classify_password(kMd5Hash), PasswordKind::Md5);
  EXPECT_EQ(classify_password(kScramVerifier), PasswordKind::ScramSha256);
  EXPECT_FALSE(classify_password("md56A422F785C9E20873908CE25D1736AE2"));  // upper case
  EXPECT_FALSE(classify_password("SCRAM-SHA-256$"));
  EXPECT_FALSE(classify_password("SCRAM-SHA-256$0:c2FsdA==$" + std::string(44, 'A') + ":" +
                                 std::string(44, 'A')));
  EXPECT_FALSE(classify_password("SCRAM-SHA-256$4096:c2Fsd$" + std::string(43, 'A') +
                                 "=:" + std::string(43, 'A') + "="));  // salt not base64
  EXPECT_TRUE(classify_password("SCRAM-SHA-256$4096:c2FsdA==$" + std::string(43, 'A') +
                                "=:" + std::string(43, 'A') + "="));
}

// Enum names match the TOML spelling.
TEST(ConfigTest, EnumNames) {
  EXPECT_EQ(to_string(PoolMode::Session), "session");
  EXPECT_EQ(to_string(PoolMode::Transaction), "transaction");
  EXPECT_EQ(to_string(PoolMode::Statement), "statement");
  EXPECT_EQ(to_string(AuthMethod::ScramSha256), "scram-sha-256");
  EXPECT_EQ(to_string(AuthMethod::Md5), "md5");
  EXPECT_EQ(to_string(AuthMethod::Trust), "trust");
  EXPECT_EQ(to_string(LogFormat::Json), "json");
  EXPECT_EQ(to_string(PasswordKind::Md5), "md5");
}

// ---- TLS (issue 7) ----

// Off by default on both sides, TLS 1.2+ for clients.
TEST(ConfigLoaderTlsTest, Defaults) {
  auto config = load(kDatabase);
  ASSERT_TRUE(config) << config.error().message;
  const TlsConfig& tls = config->general.tls;
  EXPECT_EQ(tls.client_sslmode, SslMode::Disable);
  EXPECT_EQ(tls.server_sslmode, SslMode::Disable);
  EXPECT_EQ(tls.client_min_protocol, 0x0303);
  EXPECT_EQ(tls.client_max_protocol, 0x0304);
  EXPECT_FALSE(tls.client_ciphers.empty());
  EXPECT_EQ(config->databases.at("app").tls.client_sslmode, SslMode::Disable);
}

// Every key read; a database inherits [pgmux]'s and overrides what it names.
TEST(ConfigLoaderTlsTest, KeysAndPerDatabaseOverride) {
  constexpr std::string_view kText = R"([pgmux]
client_tls_sslmode = "prefer"
client_tls_cert_file = "/etc/pgmux/server.crt"
client_tls_key_file = "/etc/pgmux/server.key"
client_tls_ca_file = "/etc/pgmux/clients-ca.crt"
client_tls_protocols = "tlsv1.3"
client_tls_ciphers = "HIGH"
server_tls_sslmode = "verify-full"
server_tls_ca_file = "/etc/pgmux/pg-ca.crt"
server_tls_cert_file = "/etc/pgmux/pgmux.crt"
server_tls_key_file = "/etc/pgmux/pgmux.key"

[databases.app]
primary = "127.0.0.1:5432"

[databases.secure]
primary = "127.0.0.1:5432"
client_tls_sslmode = "verify-ca"
client_tls_ca_file = "/etc/pgmux/other-ca.crt"
server_tls_mode = "require"
)";
  auto config = load(kText);
  ASSERT_TRUE(config) << config.error().message;
  const TlsConfig& g = config->general.tls;
  EXPECT_EQ(g.client_sslmode, SslMode::Prefer);
  EXPECT_EQ(g.client_cert_file, "/etc/pgmux/server.crt");
  EXPECT_EQ(g.client_key_file, "/etc/pgmux/server.key");
  EXPECT_EQ(g.client_ca_file, "/etc/pgmux/clients-ca.crt");
  EXPECT_EQ(g.client_min_protocol, 0x0304);
  EXPECT_EQ(g.client_max_protocol, 0x0304);
  EXPECT_EQ(g.client_ciphers, "HIGH");
  EXPECT_EQ(g.server_sslmode, SslMode::VerifyFull);
  EXPECT_EQ(g.server_ca_file, "/etc/pgmux/pg-ca.crt");
  EXPECT_EQ(g.server_cert_file, "/etc/pgmux/pgmux.crt");
  EXPECT_EQ(g.server_key_file, "/etc/pgmux/pgmux.key");
  const TlsConfig& app = config->databases.at("app").tls;
  EXPECT_EQ(app.client_sslmode, SslMode::Prefer);
  EXPECT_EQ(app.server_sslmode, SslMode::VerifyFull);
  const TlsConfig& secure = config->databases.at("secure").tls;
  EXPECT_EQ(secure.client_sslmode, SslMode::VerifyCa);
  EXPECT_EQ(secure.client_ca_file, "/etc/pgmux/other-ca.crt");
  EXPECT_EQ(secure.server_sslmode, SslMode::Require);  // through the alias
  EXPECT_EQ(secure.server_ca_file, "/etc/pgmux/pg-ca.crt");
}

// Mistakes that would otherwise surface only as failed connections.
TEST(ConfigLoaderTlsTest, Errors) {
  EXPECT_EQ(error_of(with_database("[pgmux]\nclient_tls_sslmode = \"required\"\n")),
            "pgmux.toml:2:22: 'client_tls_sslmode' must be one of disable, allow, prefer, "
            "require, verify-ca, verify-full; got 'required'");
  EXPECT_EQ(error_of(with_database("[pgmux]\nclient_tls_sslmode = \"require\"\n")),
            "pgmux.toml:2:22: client_tls_sslmode = \"require\" needs 'client_tls_cert_file' and "
            "'client_tls_key_file' in [pgmux]");
  EXPECT_EQ(error_of(with_database("[pgmux]\nclient_tls_cert_file = \"/c\"\nclient_tls_key_file = "
                                   "\"/k\"\nclient_tls_sslmode = \"verify-ca\"\n")),
            "pgmux.toml:4:22: client_tls_sslmode = \"verify-ca\" needs 'client_tls_ca_file'");
  EXPECT_EQ(error_of(with_database("[pgmux]\nserver_tls_sslmode = \"verify-full\"\n")),
            "pgmux.toml:2:22: server_tls_sslmode = \"verify-full\" needs 'server_tls_ca_file'");
  EXPECT_EQ(error_of(with_database("[pgmux]\nserver_tls_cert_file = \"/c\"\n")),
            "pgmux.toml:2:24: 'server_tls_cert_file' and 'server_tls_key_file' go together");
  EXPECT_EQ(error_of(with_database("[pgmux]\nclient_tls_protocols = \"sslv3\"\n")),
            "pgmux.toml:2:24: 'client_tls_protocols' must be \"secure\", \"all\" or a list of "
            "tlsv1.0, tlsv1.1, tlsv1.2, tlsv1.3; got 'sslv3'");
  EXPECT_EQ(error_of(with_database(
                "[pgmux]\nserver_tls_sslmode = \"disable\"\nserver_tls_mode = \"require\"\n")),
            "pgmux.toml:3:19: give 'server_tls_sslmode' or 'server_tls_mode', not both");
  EXPECT_EQ(error_of(std::string(kDatabase) + "client_tls_cert_file = \"/c\"\n"),
            "pgmux.toml:3:24: 'client_tls_cert_file' can be set only in [pgmux]: the TLS "
            "handshake happens before the client names its database");
}

// The protocol list takes the range from the lowest to the highest version named.
TEST(ConfigLoaderTlsTest, ProtocolRanges) {
  auto range = [](std::string_view text) {
    auto config = load(with_database("[pgmux]\nclient_tls_protocols = \"" + std::string(text) + "\"\n"));
    EXPECT_TRUE(config) << config.error().message;
    return config ? std::pair{config->general.tls.client_min_protocol,
                              config->general.tls.client_max_protocol}
                  : std::pair<std::uint16_t, std::uint16_t>{};
  };
  EXPECT_EQ(range("secure"), (std::pair<std::uint16_t, std::uint16_t>{0x0303, 0x0304}));
  EXPECT_EQ(range("all"), (std::pair<std::uint16_t, std::uint16_t>{0x0301, 0x0304}));
  EXPECT_EQ(range("tlsv1.2"), (std::pair<std::uint16_t, std::uint16_t>{0x0303, 0x0303}));
  EXPECT_EQ(range("tlsv1.3, tlsv1.2"), (std::pair<std::uint16_t, std::uint16_t>{0x0303, 0x0304}));
}

}  // namespace
}  // namespace pooler::config

namespace pooler::config {
namespace {

TEST(HbaTest, NetworksAndFirstMatch) {
  ASSERT_TRUE(parse_network("10.0.0.0/8"));
  ASSERT_TRUE(parse_network("::1/128"));
  ASSERT_TRUE(parse_network("192.168.1.7"));
  EXPECT_FALSE(parse_network("10.0.0.0/33"));
  EXPECT_FALSE(parse_network("10.0.0/8"));
  EXPECT_FALSE(parse_network("::1/129"));
  EXPECT_FALSE(parse_network("host.example"));

  auto config = load(with_database(
      "[[hba]]\ndatabase = \"app\"\nuser = [\"bob\", \"eve\"]\nmethod = \"reject\"\n"
      "[[hba]]\naddress = [\"10.1.0.0/16\", \"fd00::/8\"]\nmethod = \"trust\"\n"
      "[[hba]]\nmethod = \"md5\"\n"));
  ASSERT_TRUE(config) << config.error().message;
  const auto& rules = config->hba;
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_EQ(match_hba(rules, "app", "bob", "10.1.2.3")->index, 1);
  EXPECT_EQ(match_hba(rules, "other", "bob", "10.1.2.3")->index, 2);
  EXPECT_EQ(match_hba(rules, "other", "bob", "fd12::1")->index, 2);
  EXPECT_EQ(match_hba(rules, "other", "bob", "10.2.0.1")->index, 3);
  EXPECT_EQ(match_hba(rules, "other", "bob", "")->index, 3) << "a Unix socket matches only address-less rules";
  EXPECT_EQ(match_hba(rules, "app", "bob", "::ffff:10.1.0.9")->method, HbaRule::Method::Reject);

  auto only_net = load(with_database("[[hba]]\naddress = \"10.0.0.0/8\"\nmethod = \"trust\"\n"));
  ASSERT_TRUE(only_net);
  EXPECT_EQ(match_hba(only_net->hba, "app", "bob", "127.0.0.1"), nullptr);
  EXPECT_EQ(match_hba(only_net->hba, "app", "bob", ""), nullptr);

  EXPECT_EQ(error_of(with_database("[[hba]]\nmethod = \"password\"\n")),
            "pgmux.toml:2:10: 'method' must be one of scram-sha-256, md5, trust, reject, cert; got 'password'");
  const std::string not_array = error_of(with_database("[hba]\nmethod = \"trust\"\n"));
  EXPECT_NE(not_array.find("hba must be an array of tables: [[hba]]"), std::string::npos) << not_array;
}

}  // namespace
}  // namespace pooler::config
