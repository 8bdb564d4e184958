// The index advisor's lifecycle: it follows [index_advice] at start and on every reload.
#include <spdlog/spdlog.h>

#include "pooler/app/app.h"
#include "pooler/app/routing_monitor.h"

namespace pooler::app {

void App::apply_advice_config() {
  const config::IndexAdviceConfig& cfg = config_->index_advice;
  advice_store_.set_file(cfg.file);
  sample_queue_.set_capacity(static_cast<std::size_t>(cfg.sample_queue));
  if (!cfg.enabled) {
    return;  // a running advisor sees enabled = false and ignores samples; none are taken
  }
  if (!config_->general.query_stats) {
    spdlog::warn("[index_advice] needs query_stats = true in [pgmux]: no samples are taken");
  }
  if (!advisor_) {
    advisor_ = std::make_unique<advice::IndexAdvisor>(sample_queue_, advice_store_,
                                                      &RoutingMonitor::credentials);
    advisor_->start(config_);
    spdlog::info("index advisor: on (records in {})", cfg.file.empty() ? "memory only" : cfg.file);
  } else {
    advisor_->set_config(config_);
  }
}

void App::stop_advisor() {
  if (advisor_) {
    advisor_->stop();
    advisor_.reset();
  }
}

}  // namespace pooler::app
