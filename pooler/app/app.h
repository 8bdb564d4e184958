#pragma once
// The process: config, workers, signals. SIGHUP reloads, SIGTERM drains (a second one
// escalates), SIGINT stops at once. Tells systemd (Type=notify) READY=1 once serving,
// RELOADING=1/READY=1 around reloads and STOPPING=1. Main thread.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "pooler/admin/control.h"
#include "pooler/app/admission.h"
#include "pooler/app/auth_lookup.h"
#include "pooler/advice/advice_store.h"
#include "pooler/advice/index_advisor.h"
#include "pooler/advice/sample.h"
#include "pooler/base/result.h"
#include "pooler/config/config.h"

namespace pooler::app {

class Worker;
class RoutingMonitor;

class App final : public admin::Control {
 public:
  App(std::shared_ptr<const config::Config> config, std::string config_path);
  ~App();

  // Binds listeners (errors here are startup errors), runs until shutdown. Returns the
  // process exit status.
  [[nodiscard]] Result<void> bind();
  int run();

  // From any worker: a CancelRequest whose key names worker `pid >> 24`.
  void route_cancel(std::int32_t pid, std::int32_t secret);
  std::uint16_t port() const { return port_; }
  // Client connections across all workers, for max_client_conn. One atomic add per
  // accepted connection; nothing on the query path.
  std::atomic<int>& client_count() { return client_count_; }

  // admin::Control (any thread). RELOAD and SHUTDOWN raise SIGHUP and SIGTERM, so they
  // take exactly the signals' path on the main thread.
  int worker_count() const override { return static_cast<int>(workers_.size()); }
  void on_worker(int index, std::function<void(admin::WorkerControl&)> task) override;
  void reload() override;
  void shutdown() override;
  bool stopping() const override { return stopping_.load(std::memory_order_relaxed); }
  const advice::AdviceStore& advice_store() const override { return advice_store_; }
  std::uint64_t samples_dropped() const override { return sample_queue_.dropped(); }

  // Connection and login limits shared by every worker.
  Admission& admission() { return admission_; }
  AuthLookup& auth_lookup() { return auth_lookup_; }

  // From any worker: a sample for the index advisor (dropped when its queue is full).
  void submit_sample(advice::Sample&& sample) { sample_queue_.try_push(std::move(sample)); }

 private:
  void reload_now();
  // The index advisor follows [index_advice] (app_advice.cpp): started when enabled.
  void apply_advice_config();
  void stop_advisor();
  // Restart-only settings of `next` get the running values back; their names are logged.
  void keep_restart_only(config::Config& next) const;
  void notify(std::string_view state);
  void mark_ready();
  void begin_stop(bool fast);

  std::shared_ptr<const config::Config> config_;
  std::string config_path_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::uint16_t port_ = 0;
  int term_signals_ = 0;
  std::atomic<int> client_count_{0};
  Admission admission_;
  AuthLookup auth_lookup_;
  advice::SampleQueue sample_queue_{256};
  advice::AdviceStore advice_store_;
  std::unique_ptr<advice::IndexAdvisor> advisor_;
  RoutingMonitor* routing_ = nullptr;  // while run() runs; main thread
  bool ready_sent_ = false;            // READY=1 went out (main thread)
  std::atomic<bool> stopping_{false};  // written on the main thread, read by /readyz
  std::atomic<bool> stop_waiting_{false};  // ends the wait_for_primary thread
  std::thread primary_waiter_;
};

}  // namespace pooler::app
