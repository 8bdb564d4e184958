#include "pooler/app/query_throttle.h"

#include <algorithm>

namespace pooler::app {

// Burst: one second's worth of tokens, at least one.
void QueryThrottle::Bucket::refill(std::uint64_t now_ms) {
  tokens =
      std::min(std::max(rate, 1.0), tokens + static_cast<double>(now_ms - at_ms) * rate / 1000.0);
  at_ms = now_ms;
}

bool QueryThrottle::admit(client::ClientSession& session, std::string_view user, double rate,
                          std::uint64_t now_ms) {
  auto [it, fresh] = buckets_.try_emplace(std::string(user));
  Bucket& b = it->second;
  if (fresh) {
    b.tokens = std::max(rate, 1.0);
    b.at_ms = now_ms;
  }
  b.rate = rate;
  b.refill(now_ms);
  if (b.waiters.empty() && b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return true;
  }
  b.waiters.push_back({&session, now_ms});
  ++waiting_;
  return false;
}

void QueryThrottle::tick(std::uint64_t now_ms, std::chrono::milliseconds max_wait) {
  const auto limit = static_cast<std::uint64_t>(max_wait.count());
  for (auto& [user, b] : buckets_) {
    b.refill(now_ms);
    while (!b.waiters.empty()) {
      const Waiter w = b.waiters.front();
      const bool granted = b.tokens >= 1.0;
      if (!granted && now_ms - w.since_ms < limit) {
        break;
      }
      b.waiters.pop_front();
      --waiting_;
      if (granted) {
        b.tokens -= 1.0;
      }
      release_(*w.session, granted);  // may close the session: it is off the queue already
    }
  }
}

void QueryThrottle::forget(client::ClientSession& session) {
  if (waiting_ == 0) {
    return;
  }
  for (auto& [user, b] : buckets_) {
    const auto before = b.waiters.size();
    std::erase_if(b.waiters, [&](const Waiter& w) { return w.session == &session; });
    waiting_ -= before - b.waiters.size();
  }
}

}  // namespace pooler::app
