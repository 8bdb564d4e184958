#pragma once
// max_user_query_rate: a token bucket per user on each worker (each worker gets its share
// of the rate, as with pool_size, so nothing is shared on the query path). A request that
// finds the bucket empty waits, in order, until a token comes or query_rate_wait passes;
// then it gets an error (SQLSTATE 53400). Counted per request that starts from idle: each
// autocommit query, each transaction. Loop thread only.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace pooler::client {
class ClientSession;
}

namespace pooler::app {

class QueryThrottle {
 public:
  // What happens to a waiting session: released (a token is its own) or timed out.
  using Release = std::function<void(client::ClientSession&, bool granted)>;
  explicit QueryThrottle(Release release) : release_(std::move(release)) {}

  // True if `session` may start a request now; else it is queued (the caller stops it).
  bool admit(client::ClientSession& session, std::string_view user, double rate,
             std::uint64_t now_ms);
  // Gives tokens to waiters in order; times out those that waited `max_wait`.
  void tick(std::uint64_t now_ms, std::chrono::milliseconds max_wait);
  void forget(client::ClientSession& session);
  bool has_waiters() const { return waiting_ > 0; }

 private:
  struct Waiter {
    client::ClientSession* session;
    std::uint64_t since_ms;
  };
  struct Bucket {
    double rate = 0;
    double tokens = 0;
    std::uint64_t at_ms = 0;
    std::deque<Waiter> waiters;
    void refill(std::uint64_t now_ms);
  };
  std::unordered_map<std::string, Bucket> buckets_;
  std::size_t waiting_ = 0;
  Release release_;
};

}  // namespace pooler::app
