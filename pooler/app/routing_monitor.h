#pragma once
// Keeps every worker's routing state current: one HealthMonitor per database with replicas
// (on the app's housekeeping loop), and the volatile functions read from the primary's
// pg_proc (on a thread of its own: that read uses blocking libpq and must not stall the
// health checks). Results are handed to `publish_*`, which post them to the workers.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pooler/backend/health_monitor.h"
#include "pooler/config/config.h"
#include "pooler/net/loop.h"
#include "router/function_policy.h"

namespace pooler::app {

class RoutingMonitor {
 public:
  using PublishHealth =
      std::function<void(const std::string& db, std::shared_ptr<const backend::HealthSnapshot>)>;
  using PublishPolicy =
      std::function<void(const std::string& db, std::shared_ptr<const router::FunctionPolicy>)>;

  RoutingMonitor(net::Loop& loop, std::shared_ptr<const config::Config> config,
                 PublishHealth publish_health, PublishPolicy publish_policy);
  ~RoutingMonitor();  // stop() if still running
  RoutingMonitor(const RoutingMonitor&) = delete;
  RoutingMonitor& operator=(const RoutingMonitor&) = delete;

  void start();
  void stop();  // loop thread; the loop must run afterwards to free handles

  // How pgmux logs in for health checks and the pg_proc read of `db`: health_check_user,
  // else server_user, else the first configured user with a plaintext password.
  static std::optional<std::pair<std::string, std::string>> credentials(
      const config::Config& config, const config::DatabaseConfig& db);

 private:
  void policy_thread_main();

  net::Loop& loop_;
  std::shared_ptr<const config::Config> config_;
  PublishHealth publish_health_;
  PublishPolicy publish_policy_;
  std::vector<std::unique_ptr<backend::HealthMonitor>> monitors_;
  std::thread policy_thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
};

}  // namespace pooler::app
