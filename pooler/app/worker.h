#pragma once
// One event-loop thread: its listeners (SO_REUSEPORT), its clients, its share of every
// pool. Nothing here is shared with other workers except through Loop::post().

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "pooler/admin/control.h"
#include "pooler/app/admission.h"
#include "pooler/app/client_table.h"
#include "pooler/app/query_throttle.h"
#include "pooler/backend/pool.h"
#include "pooler/client/client_session.h"
#include "pooler/client/session_host.h"
#include "pooler/config/config.h"
#include "pooler/net/loop.h"
#include "pooler/net/tcp_listener.h"
#include "pooler/net/timer.h"

namespace pooler::http {
class HttpServer;
}

namespace pooler::app {

class App;

class Worker final : public client::SessionHost,
                     public client::AdminFactory,
                     public admin::WorkerControl {
 public:
  Worker(App& app, int index, int worker_count, std::shared_ptr<const config::Config> config);
  ~Worker();

  // Binds every listen address on `port` (0 = the configured port). Before start().
  [[nodiscard]] Result<std::uint16_t> listen(std::uint16_t port_override);
  void start();  // runs the loop on a new thread
  void join();

  // Thread-safe: each posts to the worker's loop.
  void post_shutdown(bool fast, std::chrono::milliseconds timeout);
  void post_reload(std::shared_ptr<const config::Config> config);
  void post_cancel(std::int32_t pid, std::int32_t secret);
  void post_admin(std::function<void(admin::WorkerControl&)> task);
  // Starts the HTTP endpoint on this worker's loop. Before start().
  [[nodiscard]] Result<void> listen_http(const config::HostPort& address);

  // client::AdminFactory
  client::AdminFactory* admin_factory() override { return this; }
  std::unique_ptr<client::AdminHandler> make_admin_handler(client::ClientSession& session) override;
  // admin::WorkerControl
  admin::WorkerSnapshot snapshot() override;
  void set_paused(std::string_view database, bool paused) override;
  void kill(std::string_view database) override;
  void set_suspended(bool suspended) override;
  std::size_t unflushed_bytes() override;
  bool suspended() const override { return suspended_; }
  void reconnect(std::string_view database) override;

  // SessionHost
  net::Loop& loop() override { return loop_; }
  const config::Config& config() const override { return *config_; }
  std::shared_ptr<const config::Config> config_snapshot() const override { return config_; }
  int worker_index() const override { return index_; }
  backend::Pool* pool_for(const config::DatabaseConfig& db, const config::UserConfig& user,
                          int host) override;
  std::shared_ptr<const backend::HealthSnapshot> health(std::string_view db) const override;
  const router::FunctionPolicy& function_policy(std::string_view db) const override;
  parser::AnalysisCache& analysis_cache() override { return analysis_cache_; }
  advice::ShapeStats* shape_stats() override { return shape_stats_.get(); }
  void submit_sample(advice::Sample&& sample) override;
  std::vector<advice::ShapeRow> shapes() override;
  std::uint64_t& round_robin_counter() override { return round_robin_; }
  // Thread-safe: routing state published by the app's housekeeping loop.
  void post_health(std::string db, std::shared_ptr<const backend::HealthSnapshot> snapshot);
  void post_function_policy(std::string db, std::shared_ptr<const router::FunctionPolicy> policy);
  client::PreparedRegistry& prepared() override { return registry_; }
  const wire::ScramVerifier& scram_verifier(const config::UserConfig& user) override;
  void route_cancel(std::int32_t pid, std::int32_t secret) override;
  std::int32_t cancel_pid_for(const client::ClientSession& session) const override;
  const net::TlsSetup& tls() const override { return *tls_; }
  void on_client_closed(client::ClientSession& session) override;
  wire::WriteBuffer& scratch() override { return scratch_; }
  client::WorkerCounters& counters() override { return counters_; }
  // What sessions ask at each transaction boundary: "leave now?". Only in the second half
  // of a drain (see begin_shutdown).
  bool draining() const override { return close_at_boundaries_; }
  bool admit_user(const config::UserConfig& user, bool& counted) override;
  void release_user(std::string_view user) override;
  void note_login_failure(const client::ClientSession& session) override;
  bool admit_request(client::ClientSession& session, const config::UserConfig& user) override;
  void forget_throttled(client::ClientSession& session) override { throttle_.forget(session); }
  void lookup_user(client::ClientSession& session, const config::DatabaseConfig& db,
                   const std::string& user) override;
  std::shared_ptr<const client::SessionSettings> intern_settings(client::SessionSettings s) override;

 private:
  void on_connection(uv_stream_s* server);
  void janitor();
  void stats_line();
  void handle_cancel(std::int32_t pid, std::int32_t secret);
  void begin_shutdown(bool fast, std::chrono::milliseconds timeout);
  void drain_tick();
  void finish_if_drained();
  void stop_now();
  void load_tls();
  backend::PoolSettings pool_settings(const config::DatabaseConfig& db,
                                      const config::UserConfig& user, int host) const;

  App& app_;
  int index_;
  int worker_count_;
  std::shared_ptr<const config::Config> config_;
  std::shared_ptr<const net::TlsSetup> tls_;  // from config_
  net::Loop loop_;
  std::vector<std::unique_ptr<net::TcpListener>> listeners_;
  ClientTable clients_;
  std::map<std::string, std::unique_ptr<backend::Pool>> pools_;  // "database\0user"
  // By user: the stored password it was made from (a user found by auth_query may change
  // it), and the verifier.
  std::map<std::string, std::pair<std::string, wire::ScramVerifier>, std::less<>> verifiers_;
  client::PreparedRegistry registry_;
  parser::AnalysisCache analysis_cache_;
  std::unique_ptr<advice::ShapeStats> shape_stats_;  // null when query_stats is off
  // Limits: the address each client was admitted from (only while a per-address limit is
  // on), and the per-user query rate buckets with their waiting sessions.
  std::unordered_map<std::uint32_t, std::string> admitted_address_;
  QueryThrottle throttle_;
  std::unique_ptr<net::Timer> throttle_timer_;
  AdmissionLimits admission_limits() const;
  void apply_stats_config();
  std::uint64_t round_robin_ = 0;
  std::map<std::string, std::shared_ptr<const backend::HealthSnapshot>, std::less<>> health_;
  std::map<std::string, std::shared_ptr<const router::FunctionPolicy>, std::less<>> policies_;
  router::FunctionPolicy default_policy_;
  // Startup settings shared by clients that sent the same ones (usually all of an app's).
  std::map<std::vector<std::pair<std::string, std::string>>,
           std::shared_ptr<const client::SessionSettings>>
      settings_cache_;
  wire::WriteBuffer scratch_;
  client::WorkerCounters counters_;
  client::WorkerCounters last_stats_;
  std::unique_ptr<net::Timer> pool_timer_;
  std::unique_ptr<net::Timer> client_timer_;
  std::unique_ptr<net::Timer> stats_timer_;
  std::unique_ptr<net::Timer> shutdown_timer_;
  std::unique_ptr<net::Timer> boundary_timer_;  // halfway through a drain
  std::unique_ptr<net::Timer> drain_timer_;     // closes clients gone idle while draining
  std::uint64_t next_client_id_ = 1;
  std::set<std::string, std::less<>> paused_;  // databases paused by the admin console
  bool paused_all_ = false;
  bool suspended_ = false;  // SUSPEND from the admin console
  std::unique_ptr<http::HttpServer> http_;
  bool draining_ = false;             // SIGTERM: listeners closed, new connections refused
  bool close_at_boundaries_ = false;  // later in the drain: clients leave as a transaction ends
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace pooler::app
