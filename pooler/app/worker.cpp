#include "pooler/app/worker.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "pooler/admin/admin_session.h"
#include "pooler/app/app.h"
#include "pooler/app/tls_setup.h"
#include "pooler/http/http_server.h"
#include "pooler/wire/scram.h"
#include "pooler/wire/sqlstate.h"

namespace pooler::app {
namespace {

// This worker's share of a pool-wide size: the shares add up to the total, each at least
// one when the total is positive.
int share(int total, int count, int index) {
  if (total <= 0) {
    return 0;
  }
  const int s = total / count + (index < total % count ? 1 : 0);
  return std::max(s, 1);
}

// SHOW CLIENTS / SHOW SERVERS: protocol and cipher of a TLS connection.
std::string tls_text(const net::TlsSession* tls) {
  if (tls == nullptr || !tls->handshake_done()) {
    return {};
  }
  return std::string(tls->version()) + "/" + std::string(tls->cipher());
}

}  // namespace

Worker::Worker(App& app, int index, int worker_count, std::shared_ptr<const config::Config> config)
    : app_(app),
      index_(index),
      worker_count_(worker_count),
      config_(std::move(config)),
      throttle_([](client::ClientSession& s, bool granted) { s.on_throttle_end(granted); }) {
  apply_stats_config();
  load_tls();
}

// Per-shape statistics follow [pgmux] query_stats and [index_advice] (sampling).
void Worker::apply_stats_config() {
  if (!config_->general.query_stats) {
    shape_stats_.reset();
    return;
  }
  const auto& advice = config_->index_advice;
  advice::ShapeStats::Options o;
  o.capacity = static_cast<std::size_t>(config_->general.max_query_shapes);
  o.sampling = advice.enabled;
  // Each worker counts only its own calls of a shape: its share of min_calls makes a shape
  // that ran min_calls times in all get sampled (on its busiest worker) by then. The advisor
  // judges a shape once per interval however many workers sample it.
  const auto workers = static_cast<std::uint64_t>(std::max(1, worker_count_));
  o.min_calls = (static_cast<std::uint64_t>(advice.min_calls) + workers - 1) / workers;
  o.min_duration_ns = static_cast<std::uint64_t>(advice.min_duration.count()) * 1'000'000;
  o.recheck_ms = static_cast<std::uint64_t>(advice.recheck_interval.count());
  if (shape_stats_) {
    shape_stats_->set_options(o);
  } else {
    shape_stats_ = std::make_unique<advice::ShapeStats>(o);
  }
}

void Worker::submit_sample(advice::Sample&& sample) { app_.submit_sample(std::move(sample)); }

std::vector<advice::ShapeRow> Worker::shapes() {
  if (!shape_stats_) {
    return {};
  }
  return shape_stats_->snapshot(net::wall_offset_ms(loop_));
}

// Each worker loads its own contexts: nothing TLS is shared between threads. main() and
// App::reload_now() checked the files already, so a failure here means they changed since:
// the worker keeps the contexts it had (none at startup, and then TLS connections fail
// rather than fall back to plaintext).
void Worker::load_tls() {
  auto tls = build_tls(*config_);
  if (!tls) {
    spdlog::error("worker {}: TLS: {}; keeping the previous certificates", index_,
                  tls.error().message);
    if (tls_ == nullptr) {
      tls_ = std::make_shared<const net::TlsSetup>();
    }
    return;
  }
  tls_ = std::move(*tls);
}

Worker::~Worker() { join(); }

Result<std::uint16_t> Worker::listen(std::uint16_t port_override) {
  std::uint16_t bound = 0;
  for (const auto& addr : config_->general.listen) {
    auto listener = std::make_unique<net::TcpListener>(
        loop_, [this](uv_stream_s* server) { on_connection(server); });
    const std::uint16_t port = port_override != 0 ? port_override : addr.port;
    if (auto ok = listener->listen(addr.host, port); !ok) {
      return std::unexpected(ok.error());
    }
    if (bound == 0) {
      bound = listener->port();
    }
    listeners_.push_back(std::move(listener));
  }
  return bound;
}

void Worker::start() {
  pool_timer_ = std::make_unique<net::Timer>(loop_, [this] {
    const std::uint64_t now = net::now_ms(loop_);
    for (auto& [key, pool] : pools_) {
      pool->tick(now);
    }
  });
  pool_timer_->start(std::chrono::milliseconds(100), std::chrono::milliseconds(100));
  client_timer_ = std::make_unique<net::Timer>(loop_, [this] { janitor(); });
  client_timer_->start(std::chrono::milliseconds(1000), std::chrono::milliseconds(1000));
  if (config_->general.stats_period.count() > 0) {
    stats_timer_ = std::make_unique<net::Timer>(loop_, [this] { stats_line(); });
    stats_timer_->start(config_->general.stats_period, config_->general.stats_period);
  }
  thread_ = std::thread([this] {
    loop_.run();
    // Everything is closed: let the close callbacks run.
    loop_.run();
  });
}

void Worker::join() {
  if (thread_.joinable()) {
    thread_.join();
  }
}

void Worker::on_connection(uv_stream_s* server) {
  const std::uint64_t id = (static_cast<std::uint64_t>(index_) << 48) | next_client_id_++;
  auto session = std::make_unique<client::ClientSession>(*this, id, clients_.next_slot());
  if (auto ok = session->accept(server); !ok) {
    spdlog::warn("accept failed: {}", ok.error().message);
    loop_.defer_delete(std::move(session));
    return;
  }
  ++counters_.clients_accepted;
  const int max_clients = config_->general.max_client_conn;
  const int count = app_.client_count().fetch_add(1, std::memory_order_relaxed) + 1;
  auto* raw = clients_.insert(std::move(session));
  if (draining_) {
    raw->close_with_error(wire::sqlstate::kCannotConnectNow, "pgmux is shutting down");
    return;
  }
  if (max_clients > 0 && count > max_clients) {
    ++counters_.refused[static_cast<std::size_t>(Refusal::MaxClientConn)];
    raw->close_with_error(wire::sqlstate::kTooManyConnections,
                          "no more connections allowed (max_client_conn = " +
                              std::to_string(max_clients) + ")");
    return;
  }
  const AdmissionLimits limits = admission_limits();
  if (limits.max_per_address == 0 && limits.max_rate_per_address == 0 &&
      limits.max_login_failures == 0) {
    return;
  }
  const std::string peer = raw->peer();
  const std::string address(net::peer_address(peer));
  if (auto refused = app_.admission().admit_address(address, limits, net::now_ms(loop_))) {
    ++counters_.refused[static_cast<std::size_t>(*refused)];
    const auto& g = config_->general;
    const std::string why =
        *refused == Refusal::AddressConns
            ? "too many connections from " + address + " (max_client_conn_per_address = " +
                  std::to_string(g.max_client_conn_per_address) + ")"
        : *refused == Refusal::AddressRate
            ? "connecting too fast from " + address + " (max_connection_rate_per_address = " +
                  fmt::format("{}", g.max_connection_rate_per_address) + " per second)"
            : "too many failed logins from " + address +
                  " in the last minute (max_login_failures_per_address = " +
                  std::to_string(g.max_login_failures_per_address) + ")";
    spdlog::info("client {} {}: refused: {}", raw->id(), peer, why);
    raw->close_with_error(wire::sqlstate::kTooManyConnections, why);
    return;
  }
  admitted_address_.emplace(raw->slot(), address);
}

AdmissionLimits Worker::admission_limits() const {
  const auto& g = config_->general;
  return AdmissionLimits{g.max_client_conn_per_address, g.max_connection_rate_per_address,
                         g.max_login_failures_per_address};
}

bool Worker::admit_user(const config::UserConfig& user, bool& counted) {
  const int limit =
      user.max_user_client_connections.value_or(config_->general.max_user_client_connections);
  counted = false;
  if (limit <= 0) {
    return true;
  }
  counted = app_.admission().admit_user(user.name, limit);
  return counted;
}

void Worker::release_user(std::string_view user) { app_.admission().release_user(user); }

void Worker::lookup_user(client::ClientSession& session, const config::DatabaseConfig& db,
                         const std::string& user) {
  const std::uint32_t slot = session.slot();
  const std::uint64_t id = session.id();
  app_.auth_lookup().lookup(db.name, user, [this, slot, id](std::shared_ptr<const config::UserConfig> found) {
    // The answer comes from the lookup thread (or at once from its cache): back to this loop,
    // where the session may have gone meanwhile.
    loop_.post([this, slot, id, found = std::move(found)]() mutable {
      client::ClientSession* s = clients_.get(slot);
      if (s != nullptr && s->id() == id) {
        s->on_user_looked_up(std::move(found));
      }
    });
  });
}

void Worker::note_login_failure(const client::ClientSession& session) {
  if (config_->general.max_login_failures_per_address > 0) {
    app_.admission().note_login_failure(net::peer_address(session.peer()), net::now_ms(loop_));
  }
}

// max_user_query_rate: this worker's share of the rate, like pool_size.
bool Worker::admit_request(client::ClientSession& session, const config::UserConfig& user) {
  const double rate = user.max_query_rate.value_or(config_->general.max_user_query_rate);
  if (rate <= 0) {
    return true;
  }
  if (throttle_.admit(session, user.name, rate / worker_count_, net::now_ms(loop_))) {
    return true;
  }
  if (!throttle_timer_) {
    throttle_timer_ = std::make_unique<net::Timer>(loop_, [this] {
      throttle_.tick(net::now_ms(loop_), config_->general.query_rate_wait);
      if (!throttle_.has_waiters()) {
        throttle_timer_->stop();
      }
    });
  }
  throttle_timer_->start(std::chrono::milliseconds(5), std::chrono::milliseconds(5));
  return false;
}

void Worker::on_client_closed(client::ClientSession& session) {
  throttle_.forget(session);
  if (auto it = admitted_address_.find(session.slot()); it != admitted_address_.end()) {
    app_.admission().release_address(it->second);
    admitted_address_.erase(it);
  }
  if (auto owned = clients_.take(session.slot())) {
    app_.client_count().fetch_sub(1, std::memory_order_relaxed);
    loop_.defer_delete(std::move(owned));
  }
  if (draining_) {
    finish_if_drained();
  }
}

backend::PoolSettings Worker::pool_settings(const config::DatabaseConfig& db,
                                            const config::UserConfig& user, int host) const {
  backend::PoolSettings s;
  s.database = db.name;
  s.user = user.name;
  s.mode = user.pool_mode.value_or(db.pool_mode);
  s.size = share(db.pool_size, worker_count_, index_);
  s.min_size = db.min_pool_size == 0 ? 0 : share(db.min_pool_size, worker_count_, index_);
  s.reserve_size = db.reserve_pool_size == 0 ? 0 : share(db.reserve_pool_size, worker_count_, index_);
  s.reserve_timeout = db.reserve_pool_timeout;
  s.max_prepared_statements = db.max_prepared_statements;
  s.timeouts = db.timeouts;
  s.max_message_size = config_->general.max_message_size;
  s.primary = host <= 0 || static_cast<std::size_t>(host) > db.replicas.size()
                  ? db.primary
                  : db.replicas[static_cast<std::size_t>(host) - 1];
  s.host_index = host;
  s.tls.mode = db.tls.server_sslmode;
  if (auto it = tls_->for_servers.find(db.name); it != tls_->for_servers.end()) {
    s.tls.context = it->second;
  }
  return s;
}

backend::Pool* Worker::pool_for(const config::DatabaseConfig& db, const config::UserConfig& user,
                                int host) {
  std::string key = db.name + '\0' + user.name + '\0' + std::to_string(host);
  auto it = pools_.find(key);
  if (it != pools_.end()) {
    return it->second.get();
  }
  backend::ServerLogin login;
  login.database = db.dbname;
  if (db.server_user) {
    login.user = *db.server_user;
    login.password = db.server_password.value_or("");
  } else {
    login.user = user.name;
    if (user.password_kind != config::PasswordKind::ScramSha256) {
      login.password = user.password;  // plaintext or md5 hash
    }
  }
  // Sessions route by the config they logged in with, but a pool is sized and addressed by
  // the running one (after a reload, an older session may be the first to use a host).
  const auto* current = config_->find_database(db.name);
  const auto& sized_by = current != nullptr ? *current : db;
  auto pool = std::make_unique<backend::Pool>(loop_, pool_settings(sized_by, user, host),
                                              std::move(login));
  backend::Pool* raw = pool.get();
  if (paused_all_ || paused_.contains(db.name)) {
    raw->set_paused(true);
  }
  pools_.emplace(std::move(key), std::move(pool));
  return raw;
}

const wire::ScramVerifier& Worker::scram_verifier(const config::UserConfig& user) {
  auto it = verifiers_.find(user.name);
  if (it != verifiers_.end() && it->second.first == user.password) {
    return it->second.second;
  }
  wire::ScramVerifier v;
  if (user.password_kind == config::PasswordKind::ScramSha256) {
    if (auto parsed = wire::parse_scram_verifier(user.password)) {
      v = *parsed;
    } else {
      spdlog::error("user \"{}\": unusable SCRAM verifier: {}", user.name, parsed.error().message);
      v = wire::scram_verifier_for_plaintext(std::to_string(next_client_id_) + "-unusable");
    }
  } else {
    v = wire::scram_verifier_for_plaintext(user.password);
  }
  auto& entry = verifiers_[user.name];
  entry = {user.password, std::move(v)};
  return entry.second;
}

// Cancel keys: the pid is the worker index in bits 24..30 and the client's slot + 1 below,
// so a CancelRequest that lands on any worker finds the right worker and client directly.
std::int32_t Worker::cancel_pid_for(const client::ClientSession& session) const {
  return static_cast<std::int32_t>((static_cast<std::uint32_t>(index_) << 24) |
                                   ((session.slot() + 1) & 0xFFFFFF));
}

std::shared_ptr<const client::SessionSettings> Worker::intern_settings(client::SessionSettings s) {
  // Keyed by items and reported values together; bounded so that clients sending unique
  // parameters (application_name with a random suffix) cannot grow it without limit.
  constexpr std::size_t kMaxShared = 1024;
  auto key = s.items;
  key.insert(key.end(), s.reported.begin(), s.reported.end());
  if (auto it = settings_cache_.find(key); it != settings_cache_.end()) {
    return it->second;
  }
  auto shared = std::make_shared<const client::SessionSettings>(std::move(s));
  if (settings_cache_.size() < kMaxShared) {
    settings_cache_.emplace(std::move(key), shared);
  }
  return shared;
}

void Worker::route_cancel(std::int32_t pid, std::int32_t secret) { app_.route_cancel(pid, secret); }

void Worker::post_cancel(std::int32_t pid, std::int32_t secret) {
  loop_.post([this, pid, secret] { handle_cancel(pid, secret); });
}

void Worker::handle_cancel(std::int32_t pid, std::int32_t secret) {
  const auto low = static_cast<std::uint32_t>(pid) & 0xFFFFFF;
  client::ClientSession* s = low == 0 ? nullptr : clients_.get(low - 1);
  if (s == nullptr || s->cancel_pid() != pid || s->cancel_secret() != secret) {
    return;  // as PostgreSQL: a wrong key is silently ignored
  }
  s->cancel_running_query();
}

void Worker::janitor() {
  const std::uint64_t now = net::now_ms(loop_);
  // tick() may close a session, which removes it from clients_: iterate a snapshot.
  for (auto* s : clients_.snapshot()) {
    if (clients_.get(s->slot()) == s) {
      s->tick(now);
    }
  }
}

void Worker::stats_line() {
  const auto& c = counters_;
  const auto& l = last_stats_;
  const double secs = static_cast<double>(config_->general.stats_period.count()) / 1000.0;
  int active = 0, idle = 0, waiting = 0;
  for (const auto& [key, pool] : pools_) {
    const auto s = pool->stats();
    active += s.active;
    idle += s.idle;
    waiting += s.waiting;
  }
  spdlog::info(
      "stats worker {}: clients {}, server connections {} active {} idle, {} waiting; "
      "{:.0f} queries/s, {:.0f} transactions/s, in {:.0f} B/s, out {:.0f} B/s",
      index_, clients_.size(), active, idle, waiting, (c.queries - l.queries) / secs,
      (c.transactions - l.transactions) / secs, (c.bytes_in - l.bytes_in) / secs,
      (c.bytes_out - l.bytes_out) / secs);
  last_stats_ = counters_;
}

std::shared_ptr<const backend::HealthSnapshot> Worker::health(std::string_view db) const {
  auto it = health_.find(db);
  return it == health_.end() ? nullptr : it->second;
}

const router::FunctionPolicy& Worker::function_policy(std::string_view db) const {
  auto it = policies_.find(db);
  return it == policies_.end() ? default_policy_ : *it->second;
}

void Worker::post_health(std::string db, std::shared_ptr<const backend::HealthSnapshot> snapshot) {
  loop_.post([this, db = std::move(db), snapshot = std::move(snapshot)]() mutable {
    health_[std::move(db)] = std::move(snapshot);
  });
}

void Worker::post_function_policy(std::string db,
                                  std::shared_ptr<const router::FunctionPolicy> policy) {
  loop_.post([this, db = std::move(db), policy = std::move(policy)]() mutable {
    policies_[std::move(db)] = std::move(policy);
  });
}

void Worker::post_reload(std::shared_ptr<const config::Config> config) {
  loop_.post([this, config = std::move(config)] {
    config_ = config;
    load_tls();
    verifiers_.clear();
    apply_stats_config();
    for (auto& [key, pool] : pools_) {
      const auto& s = pool->settings();
      const auto* db = config_->find_database(s.database);
      const auto* user = config_->find_user(s.user);
      if (db == nullptr || user == nullptr) {
        continue;  // removed: its clients keep their snapshot; the pool idles out
      }
      auto next = pool_settings(*db, *user, s.host_index);
      // A host index that now names another server (replicas reordered): the backends
      // connected to the old one must not serve it; those in use close when released.
      const bool moved = !(next.primary == s.primary);
      pool->update_settings(std::move(next));
      if (moved) {
        pool->close_idle();
      }
    }
  });
}

void Worker::post_shutdown(bool fast, std::chrono::milliseconds timeout) {
  loop_.post([this, fast, timeout] { begin_shutdown(fast, timeout); });
}

// How long a client must have been idle between transactions before a drain closes it. A
// client that just logged in (a connection per transaction, the usual shape of a rolling
// restart's load) sends its request well within this, and gets it served.
constexpr std::uint64_t kDrainIdleMs = 500;

// SIGTERM. The listeners close at once (a new pgmux on the same port gets the new
// connections). Then, for the first half of shutdown_timeout, connected clients are served
// as before, and each is closed once it has been idle between transactions for
// kDrainIdleMs: busy clients keep working, idle ones leave. In the second half, every client
// leaves at its next transaction boundary. At shutdown_timeout the rest are closed.
void Worker::begin_shutdown(bool fast, std::chrono::milliseconds timeout) {
  if (!draining_) {
    draining_ = true;
    for (auto& l : listeners_) {
      l->close();
    }
    shutdown_timer_ = std::make_unique<net::Timer>(loop_, [this] { stop_now(); });
    shutdown_timer_->start(timeout);
    boundary_timer_ = std::make_unique<net::Timer>(loop_, [this] {
      close_at_boundaries_ = true;
      for (auto* s : clients_.snapshot()) {
        if (clients_.get(s->slot()) == s && s->is_idle_between_transactions()) {
          s->close_with_error(wire::sqlstate::kAdminShutdown, "pgmux is shutting down");
        }
      }
      finish_if_drained();
    });
    boundary_timer_->start(timeout / 2);
    drain_timer_ = std::make_unique<net::Timer>(loop_, [this] { drain_tick(); });
    drain_timer_->start(std::chrono::milliseconds(100), std::chrono::milliseconds(100));
  }
  if (fast) {
    stop_now();
    return;
  }
  drain_tick();
}

void Worker::drain_tick() {
  const std::uint64_t now = net::now_ms(loop_);
  for (auto* s : clients_.snapshot()) {
    if (clients_.get(s->slot()) == s && s->is_idle_between_transactions() &&
        now - s->last_activity_ms() >= kDrainIdleMs) {
      s->close_with_error(wire::sqlstate::kAdminShutdown, "pgmux is shutting down");
    }
  }
  finish_if_drained();
}

// Done when no client is left: closed by the drain, or gone on its own.
void Worker::finish_if_drained() {
  if (stopped_ || clients_.size() != 0) {
    return;
  }
  // Not from inside a session's own callback: on the next turn of the loop.
  loop_.post([this] { stop_now(); });
}

void Worker::stop_now() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  for (auto* s : clients_.snapshot()) {
    if (clients_.get(s->slot()) == s) {
      s->close_with_error(wire::sqlstate::kAdminShutdown, "pgmux is shutting down");
    }
  }
  for (auto& l : listeners_) {
    l->close();
  }
  http_.reset();
  pools_.clear();
  pool_timer_.reset();
  throttle_timer_.reset();
  client_timer_.reset();
  stats_timer_.reset();
  shutdown_timer_.reset();
  boundary_timer_.reset();
  drain_timer_.reset();
  loop_.close_internal_handles();
}

// ---- Admin console and HTTP endpoint ----

void Worker::post_admin(std::function<void(admin::WorkerControl&)> task) {
  loop_.post([this, task = std::move(task)] { task(*this); });
}

Result<void> Worker::listen_http(const config::HostPort& address) {
  http_ = std::make_unique<http::HttpServer>(*this, app_);
  return http_->listen(address);
}

std::unique_ptr<client::AdminHandler> Worker::make_admin_handler(client::ClientSession& session) {
  return std::make_unique<admin::AdminSession>(session, *this, app_);
}

admin::WorkerSnapshot Worker::snapshot() {
  admin::WorkerSnapshot snap;
  snap.worker = index_;
  snap.now_ms = net::now_ms(loop_);
  snap.counters = counters_;
  snap.prepared_statements = registry_.size();
  snap.query_shapes = shape_stats_ ? shape_stats_->size() : 0;
  snap.parse_cache_hits = analysis_cache_.hits();
  snap.parse_cache_misses = analysis_cache_.misses();
  for (const auto& [db, health] : health_) {
    if (health) {
      snap.health.emplace(db, health);
    }
  }
  // A client's counts go to the first pool of its database and user (its primary's).
  std::map<std::pair<std::string, std::string>, std::size_t> pool_rows;
  std::map<const backend::BackendConn*, std::uint64_t> linked;
  for (const auto& [key, pool] : pools_) {
    admin::PoolRow row;
    row.database = pool->settings().database;
    row.user = pool->settings().user;
    row.mode = pool->settings().mode;
    row.size = pool->settings().size;
    row.paused = pool->paused();
    row.stats = pool->stats();
    row.traffic = pool->traffic;
    row.last_error = pool->last_error();
    pool_rows.try_emplace({row.database, row.user}, snap.pools.size());
    snap.pools.push_back(std::move(row));
  }
  for (auto* s : clients_.snapshot()) {
    admin::ClientRow c;
    c.id = s->id();
    c.user = std::string(s->user());
    c.database = std::string(s->database());
    c.state = std::string(client::to_string(s->state()));
    c.peer = s->peer();
    c.connected_ms = s->connected_ms();
    c.pins = s->pins();
    c.admin = s->is_admin();
    c.tls = tls_text(s->tls());
    if (const auto* b = s->backend()) {
      c.backend_id = b->id();
      c.backend_pid = b->server_pid();
      linked[b] = c.id;
    }
    // Per-pool client counts, as PgBouncer's cl_active/cl_waiting.
    if (!c.admin) {
      auto it = pool_rows.find({c.database, c.user});
      if (it != pool_rows.end()) {
        auto& row = snap.pools[it->second];
        const auto st = s->state();
        if (st == client::ClientState::WaitingForBackend ||
            st == client::ClientState::WaitingForParams) {
          ++row.cl_waiting;
        } else if (st == client::ClientState::Idle || st == client::ClientState::Linked) {
          ++row.cl_active;
        }
        row.pinned += c.pins != 0 ? 1 : 0;
      }
    }
    snap.clients.push_back(std::move(c));
  }
  for (const auto& [key, pool] : pools_) {
    for (const auto& b : pool->backends()) {
      if (b->state() == backend::BackendState::Closed) {
        continue;
      }
      admin::ServerRow r;
      r.id = b->id();
      r.user = pool->settings().user;
      r.database = pool->settings().database;
      r.state = std::string(backend::to_string(b->state()));
      r.address = b->address();
      r.created_ms = b->created_ms();
      r.last_used_ms = b->last_used_ms();
      r.pid = b->server_pid();
      if (auto it = linked.find(b.get()); it != linked.end()) {
        r.client_id = it->second;
      }
      r.prepared = b->statement_count();
      r.tls = tls_text(b->tls());
      snap.servers.push_back(std::move(r));
    }
  }
  return snap;
}

void Worker::set_paused(std::string_view database, bool paused) {
  if (database.empty()) {
    paused_all_ = paused;
    if (!paused) {
      paused_.clear();
    }
  } else if (paused) {
    paused_.emplace(database);
  } else {
    paused_.erase(std::string(database));
  }
  for (auto& [key, pool] : pools_) {
    const bool now = paused_all_ || paused_.contains(pool->settings().database);
    if (pool->paused() != now) {
      pool->set_paused(now);
    }
  }
}

void Worker::set_suspended(bool suspended) {
  suspended_ = suspended;
  for (auto* s : clients_.snapshot()) {
    s->set_suspended(suspended);
  }
}

std::size_t Worker::unflushed_bytes() {
  std::size_t n = 0;
  for (const auto* s : clients_.snapshot()) {
    n += s->unflushed_bytes();
  }
  return n;
}

void Worker::kill(std::string_view database) {
  for (auto* s : clients_.snapshot()) {
    if (clients_.get(s->slot()) == s && !s->is_admin() &&
        (database.empty() || s->database() == database)) {
      s->close_with_error(wire::sqlstate::kAdminShutdown, "database killed by the admin console");
    }
  }
  reconnect(database);
}

void Worker::reconnect(std::string_view database) {
  for (auto& [key, pool] : pools_) {
    if (database.empty() || pool->settings().database == database) {
      pool->close_idle();
    }
  }
}

}  // namespace pooler::app
