#include "pooler/app/routing_monitor.h"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include "pooler/config/config.h"

namespace pooler::app {
namespace {

// How often the volatile-function list is read again (new functions, ALTER FUNCTION).
constexpr std::chrono::seconds kPolicyRefresh{300};
// A failed read is retried sooner.
constexpr std::chrono::seconds kPolicyRetry{5};

std::vector<config::HostPort> hosts_of(const config::DatabaseConfig& db) {
  std::vector<config::HostPort> hosts{db.primary};
  hosts.insert(hosts.end(), db.replicas.begin(), db.replicas.end());
  return hosts;
}

// The volatile functions of `db`, read on the host that is primary (tried in order: the one
// that is not in recovery answers the query as well as any).
// The libpq keywords that make these side connections follow server_tls_* as pgmux's own
// backends do (the words of server_tls_sslmode are libpq's).
std::vector<std::pair<std::string, std::string>> libpq_tls_params(const config::TlsConfig& tls) {
  std::vector<std::pair<std::string, std::string>> params = {
      {"sslmode", std::string(config::to_string(tls.server_sslmode))}};
  const std::pair<const char*, const std::string*> files[] = {{"sslrootcert", &tls.server_ca_file},
                                                              {"sslcert", &tls.server_cert_file},
                                                              {"sslkey", &tls.server_key_file}};
  for (const auto& [key, value] : files) {
    if (!value->empty()) {
      params.emplace_back(key, *value);
    }
  }
  return params;
}

std::optional<std::vector<std::string>> read_volatile_functions(
    const config::DatabaseConfig& db, const std::pair<std::string, std::string>& login,
    std::string& error) {
  for (const auto& host : hosts_of(db)) {
    const std::string port = std::to_string(host.port);
    std::vector<const char*> keys = {"host", "port", "user", "password", "dbname",
                                     "connect_timeout", "application_name"};
    std::vector<const char*> values = {host.host.c_str(),   port.c_str(),
                                       login.first.c_str(), login.second.c_str(),
                                       db.dbname.c_str(),   "5",
                                       "pgmux-routing"};
    const auto tls = libpq_tls_params(db.tls);
    for (const auto& [key, value] : tls) {
      keys.push_back(key.c_str());
      values.push_back(value.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    PGconn* conn = PQconnectdbParams(keys.data(), values.data(), 0);
    if (PQstatus(conn) != CONNECTION_OK) {
      error = PQerrorMessage(conn);
      PQfinish(conn);
      continue;
    }
    PGresult* res = PQexec(conn, router::FunctionPolicy::volatile_functions_query());
    std::optional<std::vector<std::string>> names;
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
      names.emplace();
      for (int i = 0; i < PQntuples(res); ++i) {
        names->emplace_back(PQgetvalue(res, i, 0));
      }
    } else {
      error = PQresultErrorMessage(res);
    }
    PQclear(res);
    PQfinish(conn);
    if (names) {
      return names;
    }
  }
  return std::nullopt;
}

}  // namespace

RoutingMonitor::RoutingMonitor(net::Loop& loop, std::shared_ptr<const config::Config> config,
                               PublishHealth publish_health, PublishPolicy publish_policy)
    : loop_(loop),
      config_(std::move(config)),
      publish_health_(std::move(publish_health)),
      publish_policy_(std::move(publish_policy)) {}

RoutingMonitor::~RoutingMonitor() { stop(); }

std::optional<std::pair<std::string, std::string>> RoutingMonitor::credentials(
    const config::Config& config, const config::DatabaseConfig& db) {
  if (db.routing.health_check_user) {
    return std::pair{*db.routing.health_check_user, db.routing.health_check_password.value_or("")};
  }
  if (db.server_user) {
    return std::pair{*db.server_user, db.server_password.value_or("")};
  }
  for (const auto& [name, user] : config.users) {
    if (user.password_kind == config::PasswordKind::Plain && !user.password.empty()) {
      return std::pair{name, user.password};
    }
  }
  return std::nullopt;
}

void RoutingMonitor::start() { sync_monitors(); }

void RoutingMonitor::reload(std::shared_ptr<const config::Config> config) {
  {
    std::lock_guard lock(mutex_);
    config_ = std::move(config);
    refresh_ = true;
  }
  sync_monitors();
  wake_.notify_all();
}

// Brings monitors_ in line with config_: a monitor per database with replicas and a login
// for the checks. An unchanged database keeps its monitor (and its connections and bans).
void RoutingMonitor::sync_monitors() {
  std::shared_ptr<const config::Config> config;
  {
    std::lock_guard lock(mutex_);
    config = config_;
  }
  std::map<std::string, Monitored> next;
  for (const auto& [name, db] : config->databases) {
    if (db.replicas.empty()) {
      continue;
    }
    auto login = credentials(*config, db);
    if (!login) {
      spdlog::warn("database {}: no user with a plaintext password for health checks "
                   "(set health_check_user and health_check_password): reads stay on the primary",
                   name);
      continue;
    }
    backend::HealthMonitorOptions options;
    options.hosts = hosts_of(db);
    options.user = login->first;
    options.password = login->second;
    options.dbname = db.dbname;
    options.period = db.routing.health_check_period;
    options.tls_params = libpq_tls_params(db.tls);
    auto old = monitors_.find(name);
    if (old != monitors_.end() && old->second.options.hosts == options.hosts &&
        old->second.options.user == options.user &&
        old->second.options.password == options.password &&
        old->second.options.dbname == options.dbname &&
        old->second.options.period == options.period &&
        old->second.options.tls_params == options.tls_params) {
      next.emplace(name, std::move(old->second));
      continue;
    }
    if (old == monitors_.end()) {
      // Until pg_proc is read: the configured lists, every other function on the primary.
      publish_policy_(name, std::make_shared<const router::FunctionPolicy>(
                                router::FunctionPolicy::unloaded(db.routing.read_only_functions,
                                                                 db.routing.write_functions)));
    } else {
      spdlog::info("database {}: hosts or health-check settings changed, checks restart", name);
    }
    const std::string db_name = name;
    Monitored m;
    m.options = options;
    m.monitor = std::make_unique<backend::HealthMonitor>(
        loop_, std::move(options),
        [this, db_name](std::shared_ptr<const backend::HealthSnapshot> snapshot) {
          publish_health_(db_name, std::move(snapshot));
        });
    m.monitor->start();
    next.emplace(name, std::move(m));
  }
  for (auto& [name, m] : monitors_) {
    if (m.monitor && !next.contains(name)) {
      // No snapshot at all: sessions still routing by an older config see every replica
      // as unchecked and read from the primary, rather than trusting a frozen snapshot.
      publish_health_(name, nullptr);
      spdlog::info("database {}: health checks stopped", name);
    }
  }
  monitors_ = std::move(next);
  if (!monitors_.empty() && !policy_thread_.joinable()) {
    policy_thread_ = std::thread([this] { policy_thread_main(); });
  }
}

void RoutingMonitor::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (policy_thread_.joinable()) {
    policy_thread_.join();
  }
  monitors_.clear();
}

void RoutingMonitor::policy_thread_main() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    refresh_ = false;
    // This round's config: a reload may replace config_ while the lock is released.
    const std::shared_ptr<const config::Config> config = config_;
    bool all_loaded = true;
    for (const auto& [name, db] : config->databases) {
      if (db.replicas.empty()) {
        continue;
      }
      auto login = credentials(*config, db);
      if (!login) {
        continue;
      }
      lock.unlock();
      std::string error;
      auto names = read_volatile_functions(db, *login, error);
      if (names) {
        publish_policy_(name, std::make_shared<const router::FunctionPolicy>(
                                  *names, db.routing.read_only_functions, db.routing.write_functions));
        spdlog::debug("database {}: {} volatile functions read from pg_proc", name, names->size());
      } else {
        all_loaded = false;
        spdlog::warn("database {}: cannot read volatile functions: {}", name, error);
      }
      lock.lock();
      if (stopping_) {
        return;
      }
    }
    wake_.wait_for(lock, all_loaded ? kPolicyRefresh : kPolicyRetry,
                   [this] { return stopping_ || refresh_; });
  }
}

}  // namespace pooler::app
