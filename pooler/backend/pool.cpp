#include "pooler/backend/pool.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "pooler/backend/cancel_request.h"
#include "pooler/base/check.h"
#include "pooler/net/timer.h"
#include "pooler/wire/messages.h"

namespace pooler::backend {
namespace {
// Waits are timed on the fresh monotonic clock, not the loop's cached ms: most last less
// than a millisecond, and SHOW STATS' total_wait_time is in microseconds.
std::uint64_t now_us() { return net::now_ns() / 1000; }

constexpr std::uint64_t kFirstBackoffMs = 100;
// Capped so that service resumes within about a second of the server coming back.
constexpr std::uint64_t kMaxBackoffMs = 1000;
}  // namespace

Pool::Pool(net::Loop& loop, PoolSettings settings, ServerLogin login)
    : loop_(loop), settings_(std::move(settings)), login_(std::move(login)) {}

Pool::~Pool() {
  auto backends = std::move(backends_);
  backends_.clear();
  idle_.clear();
  for (auto& b : backends) {
    b->close("pool removed");
  }
}

void Pool::update_settings(PoolSettings settings) {
  settings_ = std::move(settings);
  // A lowered pool_size (reload): idle backends above the new limit close now. Those in use
  // finish their transaction, come back idle and leave at server_idle_timeout like any other.
  int excess = live_count() - (settings_.size + settings_.reserve_size);
  auto idle = idle_;
  for (auto it = idle.begin(); excess > 0 && it != idle.end(); ++it, --excess) {
    (*it)->close("pool_size lowered by reload");
  }
}

void Pool::set_scram_keys(const std::array<std::uint8_t, 32>& client_key,
                          const std::array<std::uint8_t, 32>& server_key) {
  login_.has_scram_keys = true;
  login_.client_key = client_key;
  login_.server_key = server_key;
}

bool Pool::has_credentials() const { return !login_.password.empty() || login_.has_scram_keys; }

bool Pool::logs_in_with_scram_keys() const { return login_.password.empty(); }

int Pool::live_count() const {
  int n = 0;
  for (const auto& b : backends_) {
    n += b->state() != BackendState::Closed ? 1 : 0;
  }
  return n;
}

BackendConn* Pool::lease(PoolWaiter& waiter, std::uint64_t now_ms) {
  while (!paused_ && !idle_.empty()) {
    BackendConn* b = idle_.back();
    idle_.pop_back();
    if (expired(*b, now_ms)) {
      b->close("server_lifetime reached");
      continue;
    }
    b->transition(BackendState::Active);
    b->attach(nullptr, now_ms);
    ++leases_;
    return b;
  }
  waiter.waiting = true;
  waiters_.push(&waiter, now_us());
  if (!paused_) {
    spawn_if_needed(now_ms);
  }
  return nullptr;
}

void Pool::set_paused(bool paused) {
  paused_ = paused;
  if (paused) {
    return;
  }
  while (!idle_.empty() && !waiters_.empty()) {
    BackendConn* b = idle_.back();
    idle_.pop_back();
    hand_over(*b);
  }
  if (!waiters_.empty()) {
    spawn_if_needed(net::now_ms(loop_));
  }
}

void Pool::cancel_wait(PoolWaiter& waiter) {
  if (waiter.waiting) {
    waiters_.remove(&waiter);
    waiter.waiting = false;
  }
  if (waiter.waiting_for_params) {
    param_waiters_.remove(&waiter);
    waiter.waiting_for_params = false;
  }
}

void Pool::cancel_query(BackendConn& backend) {
  ++backend.cancels_in_flight;
  std::weak_ptr<Pool*> pool = self_;
  const std::uint64_t id = backend.id();
  send_cancel_request(loop_, backend.address(), backend.server_pid(), backend.server_secret(),
                      [pool, id] {
                        if (auto p = pool.lock()) {
                          (*p)->on_cancel_done(id);
                        }
                      });
}

void Pool::on_cancel_done(std::uint64_t id) {
  for (const auto& b : backends_) {
    if (b->id() != id || b->state() == BackendState::Closed) {
      continue;
    }
    --b->cancels_in_flight;
    if (b->state() == BackendState::Draining) {
      on_orphan_ready(*b);
    } else if (b->state() == BackendState::Active && b->listener() != nullptr) {
      b->listener()->on_backend_ready(false);  // the release may be due now
    }
    return;
  }
}

void Pool::wait_for_server_params(PoolWaiter& waiter) {
  if (have_params_) {
    waiter.on_server_params_ready();
    return;
  }
  waiter.waiting_for_params = true;
  param_waiters_.push_back(&waiter);
  spawn_if_needed(net::now_ms(loop_));
}

bool Pool::expired(const BackendConn& backend, std::uint64_t now_ms) const {
  const auto lifetime = static_cast<std::uint64_t>(settings_.timeouts.server_lifetime.count());
  return closing_all_ || backend.id() < retire_below_id_ ||
         (lifetime > 0 && now_ms - backend.created_ms() >= lifetime);
}

void Pool::spawn_if_needed(std::uint64_t now_ms) {
  int connecting = 0;
  int live = 0;
  for (const auto& b : backends_) {
    if (b->state() == BackendState::Closed) {
      continue;
    }
    ++live;
    if (b->state() == BackendState::Connecting || b->state() == BackendState::Authenticating) {
      ++connecting;
    }
  }
  int wanted = static_cast<int>(waiters_.size()) - connecting;
  if (!have_params_ && !param_waiters_.empty() && live == 0) {
    wanted = std::max(wanted, 1);
  }
  wanted = std::max(wanted, settings_.min_size - live);
  int limit = settings_.size;
  // The reserve opens once the first waiter has waited reserve_pool_timeout.
  if (settings_.reserve_size > 0 && !waiters_.empty() &&
      waiters_.longest_wait_ms(now_us()) >=
          static_cast<std::uint64_t>(settings_.reserve_timeout.count())) {
    limit += settings_.reserve_size;
  }
  while (wanted > 0 && live < limit && now_ms >= next_connect_ms_) {
    spawn(now_ms);
    ++live;
    --wanted;
  }
}

void Pool::spawn(std::uint64_t) {
  auto backend = std::make_unique<BackendConn>(loop_, *this, next_id_++, settings_.primary);
  BackendConn* raw = backend.get();
  backends_.push_back(std::move(backend));
  raw->start(login_, settings_.max_message_size, settings_.tls);
}

void Pool::on_backend_connected(BackendConn& backend) {
  backoff_ms_ = 0;
  next_connect_ms_ = 0;
  last_error_.clear();
  if (!have_params_) {
    server_params_ = backend.server_params();
    have_params_ = true;
    auto waiters = std::move(param_waiters_);
    param_waiters_.clear();
    for (PoolWaiter* w : waiters) {
      w->waiting_for_params = false;
      w->on_server_params_ready();
    }
  }
  SPDLOG_DEBUG("pool {}/{}: backend {} connected to {} (pid {})", settings_.database,
               settings_.user, backend.id(), backend.address().to_string(), backend.server_pid());
  hand_over(backend);
}

void Pool::hand_over(BackendConn& backend) {
  POOLER_DCHECK(backend.state() == BackendState::Idle, "hand over an idle backend");
  const std::uint64_t now = net::now_ms(loop_);
  if (expired(backend, now)) {
    backend.close(closing_all_ || backend.id() < retire_below_id_ ? "reconnect requested"
                                                                  : "server_lifetime reached");
    return;
  }
  if (!waiters_.empty() && !paused_) {
    const auto [w, since_us] = waiters_.pop_front();
    w->waiting = false;
    const std::uint64_t served_us = now_us();
    wait_time_us_ += served_us > since_us ? served_us - since_us : 0;
    backend.transition(BackendState::Active);
    backend.attach(nullptr, now);
    ++leases_;
    w->on_backend_leased(backend);
    return;
  }
  backend.detach(now);
  idle_.push_back(&backend);
}

void Pool::release(BackendConn& backend, bool reusable) {
  backend.detach(net::now_ms(loop_));
  if (!reusable || !backend.is_releasable()) {
    backend.close(reusable ? "released in an unknown state" : "released as unusable");
    return;
  }
  backend.transition(BackendState::Idle);
  hand_over(backend);
}

void Pool::release_orphan(BackendConn& backend) {
  backend.detach(net::now_ms(loop_));
  backend.transition(BackendState::Draining);
  on_orphan_ready(backend);
}

// A backend whose client left: finish what it owes, roll back, then reuse it.
void Pool::on_orphan_ready(BackendConn& backend) {
  if (backend.state() != BackendState::Draining) {
    return;
  }
  if (backend.copy_in && backend.cancels_in_flight == 0) {
    // The server waits for COPY data that will never come (a cancel does not interrupt
    // that wait): CopyFail ends the COPY with an error, which completes the COPY's own
    // Query or Execute entry; what follows is handled when the queue drains.
    wire::WriteBuffer out;
    out.begin_message('f').cstring("client disconnected during COPY");
    backend.copy_in = false;
    backend.send(out.data());
    return;
  }
  if (!backend.expected().empty() || backend.cancels_in_flight > 0) {
    return;  // more replies to come, or a cancel that must land before anything else runs
  }
  wire::WriteBuffer out;
  if (backend.unsynced) {
    wire::encode_sync(out);
    backend.unsynced = false;
    backend.expected().expect_hidden(Reply::Sync);
  } else if (backend.tx_status() != wire::TxStatus::Idle) {
    wire::encode(wire::Query{"ROLLBACK"}, out);
    backend.expected().expect_hidden(Reply::Query);
  } else if (backend.needs_reset) {
    // Session state a client left behind: advisory locks are not released by DISCARD ALL,
    // and DISCARD ALL cannot share an implicit transaction, hence two queries.
    wire::encode(wire::Query{"SELECT pg_advisory_unlock_all()"}, out);
    backend.expected().expect_hidden(Reply::Query);
    wire::encode(wire::Query{"DISCARD ALL"}, out);
    backend.expected().expect_hidden(Reply::Query);
    backend.needs_reset = false;
    backend.forget_statements();
    backend.settings_hash = 0;
  } else {
    backend.transition(BackendState::Idle);
    hand_over(backend);
    return;
  }
  backend.send(out.data());
}

void Pool::on_backend_closed(BackendConn& backend, BackendState was) {
  if (was == BackendState::Idle) {
    std::erase(idle_, &backend);
  }
  const bool failed_login = was == BackendState::Connecting || was == BackendState::Authenticating;
  if (failed_login) {
    ++connect_failures_;
    last_error_ = std::string(backend.close_reason());
    backoff_ms_ = backoff_ms_ == 0 ? kFirstBackoffMs : std::min(backoff_ms_ * 2, kMaxBackoffMs);
    next_connect_ms_ = net::now_ms(loop_) + backoff_ms_;
    spdlog::warn("pool {}/{}: {}", settings_.database, settings_.user, last_error_);
  } else {
    SPDLOG_DEBUG("pool {}/{}: backend {} closed: {}", settings_.database, settings_.user,
                 backend.id(), backend.close_reason());
  }
  if (BackendListener* l = backend.listener(); l != nullptr) {
    backend.detach(net::now_ms(loop_));
    l->on_backend_lost(Error{Errc::Io, "server connection lost: " + std::string(backend.close_reason())});
  }
  // Find and defer-delete: never delete inside the backend's own callback.
  auto it = std::find_if(backends_.begin(), backends_.end(),
                         [&](const auto& p) { return p.get() == &backend; });
  if (it != backends_.end()) {
    loop_.defer_delete(std::move(*it));
    backends_.erase(it);
  }
  // Fast fail: when the server cannot be reached at all, waiting clients hear it now
  // instead of at query_wait_timeout.
  if (failed_login && live_count() == 0) {
    fail_waiters(Error{Errc::Io, last_error_});
  }
}

void Pool::fail_waiters(const Error& error) {
  const std::vector<PoolWaiter*> waiters = waiters_.take_all();
  for (PoolWaiter* w : waiters) {
    w->waiting = false;
  }
  auto param_waiters = std::move(param_waiters_);
  param_waiters_.clear();
  for (PoolWaiter* w : param_waiters) {
    w->waiting_for_params = false;
  }
  for (PoolWaiter* w : waiters) {
    w->on_lease_failed(error);
  }
  for (PoolWaiter* w : param_waiters) {
    w->on_lease_failed(error);
  }
}

void Pool::tick(std::uint64_t now_ms) {
  const auto& t = settings_.timeouts;
  // Clients that waited too long for a backend.
  const auto wait_limit = static_cast<std::uint64_t>(t.query_wait_timeout.count());
  if (wait_limit > 0) {
    const std::uint64_t now = now_us();
    while (!waiters_.empty() && waiters_.longest_wait_ms(now) >= wait_limit) {
      PoolWaiter* w = waiters_.pop_front().waiter;
      w->waiting = false;
      w->on_lease_failed(Error{Errc::Timeout, "query_wait_timeout: no server connection was free within " +
                                                  std::to_string(wait_limit / 1000.0).substr(0, 5) + " s"});
    }
  }
  const auto connect_limit = static_cast<std::uint64_t>(t.server_connect_timeout.count());
  const auto idle_limit = static_cast<std::uint64_t>(t.server_idle_timeout.count());
  std::vector<BackendConn*> to_close;
  int live = 0;
  for (const auto& b : backends_) {
    switch (b->state()) {
      case BackendState::Connecting:
      case BackendState::Authenticating:
        if (connect_limit > 0 && now_ms - b->created_ms() >= connect_limit) {
          to_close.push_back(b.get());
        }
        break;
      case BackendState::Idle:
        ++live;
        if ((idle_limit > 0 && now_ms - b->last_used_ms() >= idle_limit &&
             live > settings_.min_size) ||
            expired(*b, now_ms)) {
          to_close.push_back(b.get());
        }
        break;
      default: break;
    }
  }
  for (BackendConn* b : to_close) {
    if (b->state() == BackendState::Idle) {
      b->close(expired(*b, now_ms) ? "server_lifetime reached" : "server_idle_timeout reached");
    } else {
      b->close("server_connect_timeout: no login within " + std::to_string(connect_limit) + " ms");
    }
  }
  spawn_if_needed(now_ms);
}

void Pool::close_idle() {
  retire_below_id_ = next_id_;  // the backends in use now close when released
  closing_all_ = true;
  auto idle = idle_;
  for (BackendConn* b : idle) {
    b->close("reconnect requested");
  }
  closing_all_ = false;
}

PoolStats Pool::stats() const {
  PoolStats s;
  for (const auto& b : backends_) {
    switch (b->state()) {
      case BackendState::Active: ++s.active; break;
      case BackendState::Idle: ++s.idle; break;
      case BackendState::Connecting:
      case BackendState::Authenticating: ++s.connecting; break;
      case BackendState::Draining: ++s.draining; break;
      case BackendState::Closed: break;
    }
  }
  s.waiting = static_cast<int>(waiters_.size());
  s.max_wait_ms = waiters_.longest_wait_ms(now_us());
  s.leases = leases_;
  s.connect_failures = connect_failures_;
  s.wait_time_us = wait_time_us_;
  return s;
}

}  // namespace pooler::backend
