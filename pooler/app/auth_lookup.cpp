#include "pooler/app/auth_lookup.h"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include "pooler/base/clock.h"
#include "pooler/base/log.h"

namespace pooler::app {

namespace {

constexpr std::size_t kMaxQueued = 1000;  // beyond: answered "no such user" at once

}  // namespace

AuthLookup::~AuthLookup() { stop(); }

void AuthLookup::set_config(std::shared_ptr<const config::Config> config) {
  std::lock_guard lock(mutex_);
  config_ = std::move(config);
  cache_.clear();
}

void AuthLookup::lookup(const std::string& database, const std::string& user, Done done) {
  std::unique_lock lock(mutex_);
  auto it = cache_.find({database, user});
  if (it != cache_.end() && it->second.expires_ms > steady_ms()) {
    auto found = it->second.user;
    lock.unlock();
    done(std::move(found));
    return;
  }
  if (stopping_ || queue_.size() >= kMaxQueued) {
    lock.unlock();
    done(nullptr);
    return;
  }
  queue_.push_back(Request{database, user, std::move(done)});
  if (!thread_.joinable()) {
    thread_ = std::thread([this] { run(); });
  }
  lock.unlock();
  wake_.notify_one();
}

void AuthLookup::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void AuthLookup::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    while (!stopping_ && !queue_.empty()) {
      Request r = std::move(queue_.front());
      queue_.pop_front();
      std::shared_ptr<const config::UserConfig> found;
      bool answered_from_cache = false;
      if (auto it = cache_.find({r.database, r.user});
          it != cache_.end() && it->second.expires_ms > steady_ms()) {
        found = it->second.user;  // asked again while the first answer was on its way
        answered_from_cache = true;
      }
      auto config = config_;
      lock.unlock();
      const config::DatabaseConfig* db = config ? config->find_database(r.database) : nullptr;
      if (!answered_from_cache && db != nullptr && db->auth_user) {
        found = query(*config, *db, r.user);
      }
      r.done(found);
      lock.lock();
      if (!answered_from_cache && config) {
        cache_[{r.database, r.user}] =
            Cached{found, steady_ms() +
                              static_cast<std::uint64_t>(config->general.auth_cache_ttl.count())};
      }
    }
  }
  for (auto& [db, conn] : conns_) {
    PQfinish(conn.second);
  }
  conns_.clear();
}

std::shared_ptr<const config::UserConfig> AuthLookup::query(const config::Config& config,
                                                            const config::DatabaseConfig& db,
                                                            const std::string& user) {
  const config::UserConfig* auth = config.find_user(*db.auth_user);
  if (auth == nullptr) {
    return nullptr;
  }
  const std::string signature = db.primary.to_string() + "/" + auth->name + "/" + db.dbname;
  auto& [sig, conn] = conns_[db.name];
  if (conn != nullptr && (sig != signature || PQstatus(conn) != CONNECTION_OK)) {
    PQfinish(conn);
    conn = nullptr;
  }
  if (conn == nullptr) {
    const std::string port = std::to_string(db.primary.port);
    const char* keys[] = {
        "host", "port", "user", "password", "dbname", "connect_timeout", "application_name",
        nullptr};
    const char* values[] = {
        db.primary.host.c_str(), port.c_str(), auth->name.c_str(), auth->password.c_str(),
        db.dbname.c_str(),       "5",          "pgmux-auth",       nullptr};
    conn = PQconnectdbParams(keys, values, 0);
    sig = signature;
    if (PQstatus(conn) != CONNECTION_OK) {
      spdlog::warn("auth_query: cannot connect to database {} as {}: {}", db.name, auth->name,
                   log::first_line(PQerrorMessage(conn)));
      PQfinish(conn);
      conn = nullptr;
      return nullptr;
    }
  }
  const char* params[] = {user.c_str()};
  PGresult* res =
      PQexecParams(conn, db.auth_query.c_str(), 1, nullptr, params, nullptr, nullptr, 0);
  std::shared_ptr<const config::UserConfig> found;
  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    spdlog::warn("auth_query failed in database {}: {}", db.name,
                 log::first_line(PQresultErrorMessage(res)));
  } else if (PQntuples(res) >= 1 && PQnfields(res) >= 2 && PQgetisnull(res, 0, 1) == 0) {
    const std::string stored = PQgetvalue(res, 0, 1);
    auto kind = config::classify_password(stored);
    if (kind && *kind != config::PasswordKind::Plain) {
      auto u = std::make_shared<config::UserConfig>();
      u->name = user;
      u->password = stored;
      u->password_kind = *kind;
      u->auth = *kind == config::PasswordKind::Md5 ? config::AuthMethod::Md5
                                                   : config::AuthMethod::ScramSha256;
      found = std::move(u);
    } else {
      spdlog::warn(
          "auth_query in database {}: the password of a user is neither a SCRAM verifier "
          "nor an md5 hash; the user cannot log in through pgmux",
          db.name);
    }
  }
  PQclear(res);
  return found;
}

}  // namespace pooler::app
