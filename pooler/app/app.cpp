#include "pooler/app/app.h"

#include <uv.h>

#include <spdlog/spdlog.h>

#include <csignal>
#include <thread>

#include "pooler/app/routing_monitor.h"
#include "pooler/app/worker.h"
#include "pooler/base/log.h"
#include "pooler/config/config_loader.h"

namespace pooler::app {

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

void App::reload_now() {
  auto loaded = config::load_config_file(config_path_);
  if (!loaded) {
    spdlog::error("reload: keeping the running configuration: {}", loaded.error().message);
    return;
  }
  auto next = std::make_shared<const config::Config>(std::move(*loaded));
  const auto& old = config_->general;
  const auto& now = next->general;
  if (old.workers != now.workers) {
    spdlog::warn("reload: 'workers' changes only on restart");
  }
  if (old.listen.size() != now.listen.size()) {
    spdlog::warn("reload: 'listen' changes only on restart");
  }
  spdlog::level::level_enum level;
  if (log::parse_level(now.log_level, level)) {
    log::set_level(level);
  }
  config_ = next;
  for (auto& w : workers_) {
    w->post_reload(next);
  }
  apply_advice_config();
  auth_lookup_.set_config(next);
  spdlog::info("reload: configuration reloaded from {}", config_path_);
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
  uv_signal_t sigterm, sigint, sighup;
  uv_signal_init(&loop, &sigterm);
  uv_signal_init(&loop, &sigint);
  uv_signal_init(&loop, &sighup);
  sigterm.data = sigint.data = sighup.data = this;
  uv_signal_start(&sigterm, [](uv_signal_t* h, int) {
    auto* self = static_cast<App*>(h->data);
    const bool escalate = ++self->term_signals_ > 1;
    spdlog::info(escalate ? "SIGTERM again: stopping now" : "SIGTERM: draining, then exiting");
    for (auto& w : self->workers_) {
      w->post_shutdown(escalate, self->config_->general.shutdown_timeout);
    }
    self->auth_lookup_.stop();  // no new logins while draining: nothing more to post to workers
  }, SIGTERM);
  uv_signal_start(&sigint, [](uv_signal_t* h, int) {
    auto* self = static_cast<App*>(h->data);
    spdlog::info("SIGINT: stopping now");
    for (auto& w : self->workers_) {
      w->post_shutdown(true, self->config_->general.shutdown_timeout);
    }
    self->auth_lookup_.stop();
  }, SIGINT);
  uv_signal_start(&sighup, [](uv_signal_t* h, int) {
    static_cast<App*>(h->data)->reload_now();
  }, SIGHUP);

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
  routing.stop();
  stop_advisor();
  uv_close(reinterpret_cast<uv_handle_t*>(&sigterm), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigint), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sighup), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&done), nullptr);
  housekeeping.close_internal_handles();
  uv_run(&loop, UV_RUN_DEFAULT);
  spdlog::info("pgmux stopped");
  return 0;
}

}  // namespace pooler::app
