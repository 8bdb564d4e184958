#pragma once
// Keeps every worker's routing state current: one HealthMonitor per database with replicas
// (on the app's housekeeping loop), and the volatile functions read from the primary's
// pg_proc (on a thread of its own: that read uses blocking libpq and must not stall the
// health checks). Results are handed to `publish_*`, which post them to the workers.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
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
  // Loop thread. Monitors follow `config`; the function lists are read again at once.
  void reload(std::shared_ptr<const config::Config> config);

  // How pgmux logs in for health checks and the pg_proc read of `db`: health_check_user,
  // else server_user, else the first configured user with a plaintext password.
  static std::optional<std::pair<std::string, std::string>> credentials(
      const config::Config& config, const config::DatabaseConfig& db);

 private:
  // One database's monitor and the options it was started with, to tell whether a reload
  // changed them.
  struct Monitored {
    backend::HealthMonitorOptions options;
    std::unique_ptr<backend::HealthMonitor> monitor;
  };

  void sync_monitors();
  void policy_thread_main();

  net::Loop& loop_;
  std::shared_ptr<const config::Config> config_;
  PublishHealth publish_health_;
  PublishPolicy publish_policy_;
  std::map<std::string, Monitored> monitors_;  // by database name; loop thread only
  std::thread policy_thread_;
  std::mutex mutex_;  // guards config_ (read by the policy thread), refresh_, stopping_
  std::condition_variable wake_;
  bool refresh_ = false;  // a reload asks the policy thread for a new round now
  bool stopping_ = false;
};

}  // namespace pooler::app
