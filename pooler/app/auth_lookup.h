#pragma once
// auth_user + auth_query: users that are not in [users] are looked up in PostgreSQL, so
// passwords live in one place. A thread of its own runs the queries (blocking libpq, one
// connection per database as auth_user, kept open); workers ask and get the answer posted
// back to their loop. Answers, also "no such user", are cached for auth_cache_ttl.
//
// The answer is the stored password as PostgreSQL keeps it: a SCRAM verifier (the client
// then authenticates with SCRAM, and pgmux logs in to PostgreSQL with the keys from the
// client's proof: no plaintext anywhere) or an md5 hash.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "pooler/config/config.h"

struct pg_conn;

namespace pooler::app {

class AuthLookup {
 public:
  // The user, or nullptr when PostgreSQL has no such user (or it could not be asked).
  using Done = std::function<void(std::shared_ptr<const config::UserConfig>)>;

  AuthLookup() = default;
  ~AuthLookup();  // stop()
  AuthLookup(const AuthLookup&) = delete;
  AuthLookup& operator=(const AuthLookup&) = delete;

  void set_config(std::shared_ptr<const config::Config> config);
  // Any thread. `done` runs on the lookup thread (or at once, from the cache): post it on.
  void lookup(const std::string& database, const std::string& user, Done done);
  void stop();

 private:
  struct Request {
    std::string database;
    std::string user;
    Done done;
  };
  struct Cached {
    std::shared_ptr<const config::UserConfig> user;
    std::uint64_t expires_ms = 0;
  };
  void run();
  std::shared_ptr<const config::UserConfig> query(const config::Config& config,
                                                  const config::DatabaseConfig& db,
                                                  const std::string& user);

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Request> queue_;
  std::map<std::pair<std::string, std::string>, Cached> cache_;
  std::shared_ptr<const config::Config> config_;
  std::thread thread_;
  bool stopping_ = false;
  // Lookup thread only: one connection per database (signature: host, user, dbname).
  std::map<std::string, std::pair<std::string, pg_conn*>> conns_;
};

}  // namespace pooler::app
