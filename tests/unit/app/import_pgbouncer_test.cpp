// pgmux import-pgbouncer: PgBouncer configurations in, pgmux TOML that the real loader
// accepts out, with every setting left behind named.

#include "pooler/app/import_pgbouncer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "pooler/config/config_loader.h"

namespace {

using pooler::app::import_pgbouncer;
using pooler::config::AuthMethod;
using pooler::config::Millis;
using pooler::config::PasswordKind;
using pooler::config::PoolMode;

constexpr std::string_view kIni = R"(;; PgBouncer configuration of the orders service
[databases]
; the main database, forced pool mode and size
orders = host=10.0.0.5 port=5433 dbname=orders_prod pool_size=40 pool_mode=transaction
reports = host=10.0.0.6 dbname=reports reserve_pool=3 min_pool_size=2
legacy = host=/var/run/postgresql port=5432 user=legacy_app password='it''s secret' pool_mode=session
analytics = host=db-a.internal,db-b.internal dbname=analytics application_name=bi
* = host=10.0.0.5 port=5433

[users]
batch = pool_mode=session max_user_connections=5

[pgbouncer]
logfile = /var/log/postgresql/pgbouncer.log
pidfile = /var/run/postgresql/pgbouncer.pid
listen_addr = 0.0.0.0
listen_port = 6543
unix_socket_dir = /var/run/postgresql
auth_type = md5
auth_file = /etc/pgbouncer/userlist.txt
auth_hba_file = /etc/pgbouncer/pg_hba.conf
admin_users = postgres, ops
stats_users = stats
pool_mode = transaction
server_reset_query = DISCARD ALL
max_client_conn = 2000
default_pool_size = 25
min_pool_size = 1
reserve_pool_size = 5
reserve_pool_timeout = 3
max_prepared_statements = 100
server_lifetime = 1800
server_idle_timeout = 300
server_connect_timeout = 5
query_wait_timeout = 60
client_idle_timeout = 0
client_login_timeout = 30
idle_transaction_timeout = 0.5
stats_period = 30
%include /etc/pgbouncer/pgbouncer-other.ini
)";

constexpr std::string_view kUserlist = R"("app" "md5f5b8ab1dd8d63a4f0d7e5dfd3ea0d6c3"
"batch" "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB="
"dev" "plain ""quoted"" password"
;; a comment
"legacy_app" "it's secret"
)";

bool mentions(const std::vector<std::string>& notes, std::string_view text) {
  return std::ranges::any_of(notes, [&](const std::string& n) { return n.find(text) != std::string::npos; });
}

TEST(ImportPgbouncer, RealisticIniLoadsWithTheValues) {
  auto imported = import_pgbouncer(kIni, kUserlist);
  ASSERT_TRUE(imported) << imported.error().message;
  auto config = pooler::config::load_config_string(imported->toml, "imported.toml");
  ASSERT_TRUE(config) << config.error().message << "\n" << imported->toml;

  const auto& g = config->general;
  ASSERT_EQ(g.listen.size(), 1u);
  EXPECT_EQ(g.listen[0].to_string(), "0.0.0.0:6543");
  EXPECT_EQ(g.max_client_conn, 2000);
  EXPECT_EQ(g.stats_period, Millis(30'000));
  EXPECT_EQ(g.timeouts.server_lifetime, Millis(1'800'000));
  EXPECT_EQ(g.timeouts.server_idle_timeout, Millis(300'000));
  EXPECT_EQ(g.timeouts.server_connect_timeout, Millis(5'000));
  EXPECT_EQ(g.timeouts.query_wait_timeout, Millis(60'000));
  EXPECT_EQ(g.timeouts.client_login_timeout, Millis(30'000));
  EXPECT_EQ(g.timeouts.client_idle_timeout, Millis(0));
  EXPECT_EQ(g.timeouts.idle_transaction_timeout, Millis(500));

  ASSERT_EQ(config->databases.size(), 4u);
  const auto* orders = config->find_database("orders");
  ASSERT_NE(orders, nullptr);
  EXPECT_EQ(orders->dbname, "orders_prod");
  EXPECT_EQ(orders->primary.to_string(), "10.0.0.5:5433");
  EXPECT_EQ(orders->pool_mode, PoolMode::Transaction);
  EXPECT_EQ(orders->pool_size, 40);
  EXPECT_EQ(orders->min_pool_size, 1);
  EXPECT_EQ(orders->reserve_pool_size, 5);
  EXPECT_EQ(orders->reserve_pool_timeout, Millis(3'000));
  EXPECT_EQ(orders->max_prepared_statements, 100);
  EXPECT_EQ(orders->timeouts.server_lifetime, Millis(1'800'000));

  const auto* reports = config->find_database("reports");
  ASSERT_NE(reports, nullptr);
  EXPECT_EQ(reports->primary.to_string(), "10.0.0.6:5432");
  EXPECT_EQ(reports->pool_size, 25);  // default_pool_size
  EXPECT_EQ(reports->min_pool_size, 2);
  EXPECT_EQ(reports->reserve_pool_size, 3);

  const auto* legacy = config->find_database("legacy");
  ASSERT_NE(legacy, nullptr);
  EXPECT_EQ(legacy->dbname, "legacy");
  EXPECT_EQ(legacy->primary.to_string(), "/var/run/postgresql:5432");
  EXPECT_EQ(legacy->pool_mode, PoolMode::Session);
  EXPECT_EQ(legacy->server_user, "legacy_app");
  EXPECT_EQ(legacy->server_password, "it's secret");

  const auto* analytics = config->find_database("analytics");
  ASSERT_NE(analytics, nullptr);
  EXPECT_EQ(analytics->primary.to_string(), "db-a.internal:5432");

  ASSERT_EQ(config->users.size(), 4u);
  const auto* app = config->find_user("app");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->password, "md5f5b8ab1dd8d63a4f0d7e5dfd3ea0d6c3");
  EXPECT_EQ(app->password_kind, PasswordKind::Md5);
  EXPECT_EQ(app->auth, AuthMethod::Md5);
  const auto* batch = config->find_user("batch");
  ASSERT_NE(batch, nullptr);
  EXPECT_EQ(batch->password_kind, PasswordKind::ScramSha256);
  EXPECT_EQ(batch->auth, AuthMethod::ScramSha256);  // md5 users with a verifier get SCRAM
  EXPECT_EQ(batch->pool_mode, PoolMode::Session);
  const auto* dev = config->find_user("dev");
  ASSERT_NE(dev, nullptr);
  EXPECT_EQ(dev->password, "plain \"quoted\" password");
  EXPECT_EQ(dev->password_kind, PasswordKind::Plain);
  EXPECT_EQ(dev->auth, AuthMethod::Md5);

  const auto& notes = imported->not_carried_over;
  for (const char* key : {"logfile", "pidfile", "unix_socket_dir", "auth_hba_file", "stats_users",
                          "server_reset_query", "%include", "databases.*", "application_name",
                          "max_user_connections", "db-b.internal"}) {
    EXPECT_TRUE(mentions(notes, key)) << key << " not reported";
  }
  EXPECT_FALSE(mentions(notes, "default_pool_size"));
  EXPECT_FALSE(mentions(notes, "server_lifetime"));
  // The notes are in the file as comments too.
  EXPECT_NE(imported->toml.find("# Not carried over from PgBouncer:"), std::string::npos);
  EXPECT_NE(imported->toml.find("auth_hba_file"), std::string::npos);
  // admin_users is written, live when this pgmux has the admin console, commented out before.
  EXPECT_NE(imported->toml.find("admin_users = [\"postgres\", \"ops\"]"), std::string::npos);
}

TEST(ImportPgbouncer, DefaultsArePgbouncersNotPgmuxs) {
  auto imported = import_pgbouncer("[databases]\nappdb = host=127.0.0.1\n", std::nullopt);
  ASSERT_TRUE(imported) << imported.error().message;
  auto config = pooler::config::load_config_string(imported->toml, "imported.toml");
  ASSERT_TRUE(config) << config.error().message << "\n" << imported->toml;
  EXPECT_EQ(config->general.listen.at(0).to_string(), "127.0.0.1:6432");
  const auto* db = config->find_database("appdb");
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->pool_mode, PoolMode::Session);  // PgBouncer's default pool_mode
  EXPECT_EQ(db->pool_size, 20);
  EXPECT_TRUE(config->users.empty());
  EXPECT_TRUE(mentions(imported->not_carried_over, "no userlist.txt"));
}

// The TLS keys have the same names in pgmux and are carried over; PgBouncer's default
// toward servers (prefer) is written out, since pgmux's is disable.
TEST(ImportPgbouncer, TlsKeysCarriedOver) {
  auto imported = import_pgbouncer(
      "[pgbouncer]\nclient_tls_sslmode = require\nclient_tls_cert_file = /etc/pgb/server.crt\n"
      "client_tls_key_file = /etc/pgb/server.key\nclient_tls_ca_file = /etc/pgb/ca.crt\n"
      "client_tls_protocols = tlsv1.2,tlsv1.3\nclient_tls_ciphers = fast\n"
      "[databases]\nappdb = host=127.0.0.1\n",
      std::nullopt);
  ASSERT_TRUE(imported) << imported.error().message;
  auto config = pooler::config::load_config_string(imported->toml, "imported.toml");
  ASSERT_TRUE(config) << config.error().message << "\n" << imported->toml;
  const auto& tls = config->general.tls;
  EXPECT_EQ(tls.client_sslmode, pooler::config::SslMode::Require);
  EXPECT_EQ(tls.client_cert_file, "/etc/pgb/server.crt");
  EXPECT_EQ(tls.client_key_file, "/etc/pgb/server.key");
  EXPECT_EQ(tls.client_ca_file, "/etc/pgb/ca.crt");
  EXPECT_EQ(tls.client_min_protocol, 0x0303);
  EXPECT_EQ(tls.server_sslmode, pooler::config::SslMode::Prefer);
  EXPECT_TRUE(mentions(imported->not_carried_over, "client_tls_ciphers"));

  auto explicit_off = import_pgbouncer(
      "[pgbouncer]\nserver_tls_sslmode = disable\n[databases]\nappdb = host=127.0.0.1\n",
      std::nullopt);
  ASSERT_TRUE(explicit_off);
  auto off = pooler::config::load_config_string(explicit_off->toml, "imported.toml");
  ASSERT_TRUE(off) << off.error().message;
  EXPECT_EQ(off->general.tls.server_sslmode, pooler::config::SslMode::Disable);
}

TEST(ImportPgbouncer, TrustAndSeveralListenAddresses) {
  constexpr std::string_view ini = R"([pgbouncer]
listen_addr = 127.0.0.1, ::1
auth_type = trust
[databases]
"my-db" = host=::1 dbname=my_db
[users]
alice = pool_mode=statement
)";
  auto imported = import_pgbouncer(ini, std::nullopt);
  ASSERT_TRUE(imported) << imported.error().message;
  auto config = pooler::config::load_config_string(imported->toml, "imported.toml");
  ASSERT_TRUE(config) << config.error().message << "\n" << imported->toml;
  ASSERT_EQ(config->general.listen.size(), 2u);
  EXPECT_EQ(config->general.listen[1].to_string(), "[::1]:6432");
  const auto* alice = config->find_user("alice");
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(alice->auth, AuthMethod::Trust);
  EXPECT_EQ(alice->pool_mode, PoolMode::Statement);
}

TEST(ImportPgbouncer, ScramAuthWithPlaintextAndMd5Users) {
  constexpr std::string_view ini = "[pgbouncer]\nauth_type = scram-sha-256\nlisten_addr = *\n"
                                   "[databases]\napp = host=db\n";
  auto imported = import_pgbouncer(ini, R"("a" "secret"
"b" "md5f5b8ab1dd8d63a4f0d7e5dfd3ea0d6c3"
)");
  ASSERT_TRUE(imported) << imported.error().message;
  auto config = pooler::config::load_config_string(imported->toml, "imported.toml");
  ASSERT_TRUE(config) << config.error().message << "\n" << imported->toml;
  EXPECT_EQ(config->general.listen.at(0).to_string(), "0.0.0.0:6432");
  EXPECT_EQ(config->find_user("a")->auth, AuthMethod::ScramSha256);
  EXPECT_EQ(config->find_user("b")->auth, AuthMethod::Md5);
  EXPECT_TRUE(mentions(imported->not_carried_over, "users.b"));
  EXPECT_TRUE(mentions(imported->not_carried_over, "listen_addr = *"));
}

TEST(ImportPgbouncer, ErrorsNameTheLine) {
  auto no_eq = import_pgbouncer("[databases]\napp = host=db\n\n[pgbouncer]\nthis is not ini\n", std::nullopt);
  ASSERT_FALSE(no_eq);
  EXPECT_NE(no_eq.error().message.find("pgbouncer.ini:5:"), std::string::npos) << no_eq.error().message;
  auto quote = import_pgbouncer("[databases]\napp = host=db password='open\n", std::nullopt);
  ASSERT_FALSE(quote);
  EXPECT_NE(quote.error().message.find("pgbouncer.ini:2:"), std::string::npos) << quote.error().message;
  auto only_star = import_pgbouncer("[databases]\n* = host=db\n", std::nullopt);
  ASSERT_FALSE(only_star);
}

}  // namespace
