#include "pooler/app/app.h"

#include <libpq-fe.h>
#include <uv.h>

#include <spdlog/spdlog.h>

#include <csignal>
#include <set>
#include <thread>

#include "pooler/app/routing_monitor.h"
#include "pooler/app/systemd_notify.h"
#include "pooler/app/tls_setup.h"
#include "pooler/app/worker.h"
#include "pooler/base/log.h"
#include "pooler/config/config_loader.h"

namespace pooler::app {
namespace {

// wait_for_primary: returns true once the configured primary of every database accepts
// connections (PQping: no login needed, so a wrong password does not hold READY back), or
// false when `stop` is set first. Blocking libpq, hence its own thread.
bool wait_for_primaries(const config::Config& config, const std::atomic<bool>& stop) {
  std::set<std::string> pending;
  for (const auto& [name, db] : config.databases) {
    pending.insert(name);
  }
  bool logged = false;
  while (!stop.load()) {
    for (auto it = pending.begin(); it != pending.end();) {
      const auto& db = config.databases.at(*it);
      const std::string port = std::to_string(db.primary.port);
      const char* keys[] = {"host", "port", "dbname", "connect_timeout", nullptr};
      const char* values[] = {db.primary.host.c_str(), port.c_str(), db.dbname.c_str(), "2",
                              nullptr};
      it = PQpingParams(keys, values, 0) == PQPING_OK ? pending.erase(it) : std::next(it);
    }
    if (pending.empty()) {
      return true;
    }
    if (!logged) {
      spdlog::info("wait_for_primary: waiting for the primary of database {} before READY=1",
                   *pending.begin());
      logged = true;
    }
    for (int i = 0; i < 5 && !stop.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  return false;
}

}  // namespace

App::App(std::shared_ptr<const config::Config> config, std::string config_path)
    : config_(std::move(config)), config_path_(std::move(config_path)) {
  int n = config_->general.workers;
  if (n <= 0) {
    // Half the cores: pgmux shares its machine with PostgreSQL or the application, and on
    // 2 cores one loop spent 20-25 % less CPU per transaction than two at the same TPS
    // (fewer wake-ups and context switches; see bench/RESULTS.md).
    n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency() / 2));
  }
  for (int i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<Worker>(*this, i, n, config_));
  }
  auth_lookup_.set_config(config_);
}

App::~App() = default;

Result<void> App::bind() {
  // The first worker binds the configured port; the others join it with SO_REUSEPORT.
  for (auto& w : workers_) {
    auto port = w->listen(port_);
    if (!port) {
      return std::unexpected(port.error());
    }
    if (port_ == 0) {
      port_ = *port;
    }
  }
  if (const auto& http = config_->general.http_listen) {
    if (auto ok = workers_.front()->listen_http(*http); !ok) {
      Error e = ok.error();
      e.message = "http_listen " + http->to_string() + ": " + e.message;
      return std::unexpected(std::move(e));
    }
  }
  return {};
}

void App::route_cancel(std::int32_t pid, std::int32_t secret) {
  const auto index = static_cast<std::size_t>(static_cast<std::uint32_t>(pid) >> 24);
  if (index < workers_.size()) {
    workers_[index]->post_cancel(pid, secret);
  }
}

void App::on_worker(int index, std::function<void(admin::WorkerControl&)> task) {
  if (index >= 0 && static_cast<std::size_t>(index) < workers_.size()) {
    workers_[static_cast<std::size_t>(index)]->post_admin(std::move(task));
  }
}

void App::reload() { std::raise(SIGHUP); }

void App::shutdown() { std::raise(SIGTERM); }

void App::notify(std::string_view state) {
  if (auto ok = notify_systemd(state); !ok) {
    spdlog::warn("systemd notification failed: {}", ok.error().message);
  }
}

void App::mark_ready() {
  if (ready_sent_ || stopping_) {
    return;
  }
  ready_sent_ = true;
  notify("READY=1");
  spdlog::info("ready");
}

void App::begin_stop(bool fast) {
  if (!stopping_) {
    stopping_ = true;
    stop_waiting_ = true;
    notify("STOPPING=1");
  }
  for (auto& w : workers_) {
    w->post_shutdown(fast, config_->general.shutdown_timeout);
  }
  // auth_query lookups end here: their answers are posted to workers, which may stop now.
  // A client still logging in through auth_query when the stop begins is refused.
  auth_lookup_.stop();
}

void App::keep_restart_only(config::Config& next) const {
  const auto& old = config_->general;
  auto& now = next.general;
  std::string names;
  auto keep = [&names](std::string_view name, auto& value, const auto& running) {
    if (!(value == running)) {
      value = running;
      names += (names.empty() ? "" : ", ") + std::string(name);
    }
  };
  keep("listen", now.listen, old.listen);
  keep("workers", now.workers, old.workers);
  keep("http_listen", now.http_listen, old.http_listen);
  keep("log_format", now.log_format, old.log_format);
  keep("stats_period", now.stats_period, old.stats_period);
  keep("wait_for_primary", now.wait_for_primary, old.wait_for_primary);
  if (!names.empty()) {
    spdlog::warn("reload: these settings change only on restart and keep their running values: {}",
                 names);
  }
}

// SIGHUP and RELOAD. The new file is loaded and validated whole before anything changes: a
// broken file leaves the running configuration as it was.
void App::reload_now() {
  if (ready_sent_) {
    notify(reloading_state());
  }
  auto loaded = config::load_config_file(config_path_);
  if (!loaded) {
    spdlog::error("reload: keeping the running configuration: {}", loaded.error().message);
    if (ready_sent_) {
      notify("READY=1");
    }
    return;
  }
  if (auto tls = build_tls(*loaded); !tls) {
    spdlog::error("reload: keeping the running configuration: {}: {}", config_path_,
                  tls.error().message);
    if (ready_sent_) {
      notify("READY=1");
    }
    return;
  }
  keep_restart_only(*loaded);
  for (const auto& [name, db] : loaded->databases) {
    const auto* old = config_->find_database(name);
    if (old == nullptr) {
      spdlog::info("reload: database {} added", name);
    } else if (old->pool_size != db.pool_size || old->replicas.size() != db.replicas.size()) {
      spdlog::info("reload: database {}: pool_size {} -> {}, replicas {} -> {}", name,
                   old->pool_size, db.pool_size, old->replicas.size(), db.replicas.size());
    }
  }
  auto next = std::make_shared<const config::Config>(std::move(*loaded));
  spdlog::level::level_enum level;
  if (log::parse_level(next->general.log_level, level)) {
    log::set_level(level);
  }
  config_ = next;
  if (routing_ != nullptr) {
    routing_->reload(next);
  }
  for (auto& w : workers_) {
    w->post_reload(next);
  }
  apply_advice_config();
  auth_lookup_.set_config(next);
  spdlog::info("reload: configuration reloaded from {}", config_path_);
  if (ready_sent_) {
    notify("READY=1");
  }
}

int App::run() {
  for (auto& w : workers_) {
    w->start();
  }
  spdlog::info("pgmux {} listening on port {} with {} worker(s)", PGMUX_VERSION, port_,
               workers_.size());

  // Signals arrive on the main thread's own loop, then go to the workers by post(). The same
  // loop runs the health checks that routing needs.
  net::Loop housekeeping;
  uv_loop_t& loop = *housekeeping.raw();
  RoutingMonitor routing(
      housekeeping, config_,
      [this](const std::string& db, std::shared_ptr<const backend::HealthSnapshot> snapshot) {
        for (auto& w : workers_) {
          w->post_health(db, snapshot);
        }
      },
      [this](const std::string& db, std::shared_ptr<const router::FunctionPolicy> policy) {
        for (auto& w : workers_) {
          w->post_function_policy(db, policy);
        }
      });
  routing.start();
  apply_advice_config();
  routing_ = &routing;
  uv_signal_t sigterm, sigint, sighup;
  uv_signal_init(&loop, &sigterm);
  uv_signal_init(&loop, &sigint);
  uv_signal_init(&loop, &sighup);
  sigterm.data = sigint.data = sighup.data = this;
  uv_signal_start(&sigterm, [](uv_signal_t* h, int) {
    auto* self = static_cast<App*>(h->data);
    const bool escalate = ++self->term_signals_ > 1;
    spdlog::info(escalate ? "SIGTERM again: stopping now" : "SIGTERM: draining, then exiting");
    self->begin_stop(escalate);
  }, SIGTERM);
  uv_signal_start(&sigint, [](uv_signal_t* h, int) {
    spdlog::info("SIGINT: stopping now");
    static_cast<App*>(h->data)->begin_stop(true);
  }, SIGINT);
  uv_signal_start(&sighup, [](uv_signal_t* h, int) {
    static_cast<App*>(h->data)->reload_now();
  }, SIGHUP);

  // READY=1: the listeners are bound (bind()) and the workers run; with wait_for_primary,
  // once a thread of its own has reached every primary.
  uv_async_t primaries_up;
  uv_async_init(&loop, &primaries_up, [](uv_async_t* h) { static_cast<App*>(h->data)->mark_ready(); });
  primaries_up.data = this;
  if (config_->general.wait_for_primary) {
    primary_waiter_ = std::thread([this, &primaries_up, config = config_] {
      if (wait_for_primaries(*config, stop_waiting_)) {
        uv_async_send(&primaries_up);
      }
    });
  } else {
    mark_ready();
  }

  // The workers end on their own once drained; a watcher thread wakes this loop then.
  uv_async_t done;
  uv_async_init(&loop, &done, [](uv_async_t* h) { uv_stop(h->loop); });
  std::thread watcher([this, &done] {
    for (auto& w : workers_) {
      w->join();
    }
    uv_async_send(&done);
  });
  uv_run(&loop, UV_RUN_DEFAULT);
  watcher.join();
  stop_waiting_ = true;
  if (primary_waiter_.joinable()) {
    primary_waiter_.join();
  }
  routing_ = nullptr;
  routing.stop();
  stop_advisor();
  uv_close(reinterpret_cast<uv_handle_t*>(&sigterm), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigint), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sighup), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&done), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&primaries_up), nullptr);
  housekeeping.close_internal_handles();
  uv_run(&loop, UV_RUN_DEFAULT);
  spdlog::info("pgmux stopped");
  return 0;
}

}  // namespace pooler::app
